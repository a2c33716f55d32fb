/* `attncheck verify`: the report of `replay` for dumped calls, and the
 * diagnosis of a failure (tools/ac_verify.h). Per file: the case line, the
 * declared conventions, the verdict with the worst element's coordinates and
 * the text error map (fuzz/ac_fuzz_check.c's printers), what the empty rows
 * hold, and the diagnosis; then optional JSON and JUnit reports. */
#include "ac_verify.h"

#include <cjson/cJSON.h>

#include "ac_args.h"
#include "ac_report.h"
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ac_diagnose.h"
#include "ac_dump.h"
#include "ac_errpic.h"
#include "ac_file.h"
#include "ac_fuzz.h"

#ifndef PATH_MAX
#define PATH_MAX 4096
#endif

typedef struct verify_opts {
    const char *json, *junit, *png;
    int quiet, diagnose;
    int64_t rows;
    uint64_t max_bytes;
} verify_opts;

/* One file's outcome, kept for the JSON and JUnit reports. */
typedef struct verify_item {
    char *path;
    char line[512];
    int status;             /* 0 pass, 1 fail, 2 error */
    ac_status code;
    char error[330];
    ac_verdict verdict;
    int have_verdict;
    ac_empty_report empty;
    int have_diag;
    ac_diagnosis diag;
} verify_item;

static void usage(FILE *f)
{
    fprintf(f, "usage: attncheck verify [--json FILE] [--junit FILE] [--png DIR] [--quiet] [--diagnose]\n"
               "                        [--rows N] [--max-size BYTES] FILE|DIR...\n"
               "  judges dumped attention calls (.safetensors, docs/DUMP.md) against the oracle;\n"
               "  a DIR is searched for *.safetensors. Exit 0 pass, 1 a call fails, 2 bad input.\n");
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static int ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && !strcmp(s + a - b, suffix);
}

/* The files to check: each FILE, and each DIR's *.safetensors in name order. */
static int collect(char **args, int n, char ***out, int *count)
{
    char **list = NULL;
    int len = 0, cap = 0, bad = 0;
    for (int i = 0; i < n; i++) {
        struct stat sb;
        int is_dir = stat(args[i], &sb) == 0 && S_ISDIR(sb.st_mode);
        char **names = NULL;
        int nn = 0;
        if (is_dir) {
            DIR *d = opendir(args[i]);
            if (!d) {
                fprintf(stderr, "verify: %s: %s\n", args[i], strerror(errno));
                bad = 1;
                continue;
            }
            struct dirent *e;
            int ncap = 0;
            while ((e = readdir(d))) {
                if (e->d_name[0] == '.' || !ends_with(e->d_name, ".safetensors")) continue;
                if (nn == ncap) {
                    ncap = ncap ? 2 * ncap : 16;
                    char **g = realloc(names, sizeof *names * (size_t)ncap);
                    if (!g) break;
                    names = g;
                }
                size_t pl = strlen(args[i]) + strlen(e->d_name) + 2;
                names[nn] = malloc(pl);
                if (!names[nn]) break;
                snprintf(names[nn], pl, "%s/%s", args[i], e->d_name);
                nn++;
            }
            closedir(d);
            qsort(names, (size_t)nn, sizeof *names, cmp_str);
            if (!nn) {
                fprintf(stderr, "verify: %s: no .safetensors file in this folder\n", args[i]);
                bad = 1;
            }
        } else {
            names = malloc(sizeof *names);
            if (names && (names[0] = strdup(args[i]))) nn = 1;
        }
        for (int k = 0; k < nn; k++) {
            if (len == cap) {
                cap = cap ? 2 * cap : 16;
                char **g = realloc(list, sizeof *list * (size_t)cap);
                if (!g) {
                    free(names[k]);
                    continue;
                }
                list = g;
            }
            list[len++] = names[k];
        }
        free(names);
    }
    *out = list;
    *count = len;
    return bad;
}

/* The case line without the generator's fields (a dump has no dist or seed). */
static void dump_line(const ac_case *c, char *buf, size_t n)
{
    ac_case_line(c, buf, n);
    char *cut = strstr(buf, " dist=");
    if (cut) *cut = '\0';
}

static void print_hypotheses(const ac_diagnosis *dg, FILE *f)
{
    if (!dg->n) return;
    fprintf(f, "  hypotheses (worst r and LSE r of the dumped outputs under each; a match passes where the call, "
               "as declared, fails):\n");
    for (int i = 0; i < dg->n; i++) {
        const ac_hypothesis *h = &dg->h[i];
        if (!h->applicable) {
            fprintf(f, "    %-22s n/a: %s\n", h->name, h->why_not);
            continue;
        }
        char r[24], l[24];
        snprintf(r, sizeof r, isinf(h->r) ? "inf" : "%.3g", h->r);
        snprintf(l, sizeof l, isinf(h->lse_r) ? "inf" : "%.3g", h->lse_r);
        fprintf(f, "    %-22s r=%-9s lse_r=%-9s %s%s\n", h->name, r, l, h->pass ? "PASS  " : "", h->about);
    }
}

static void verify_file(const char *path, const verify_opts *o, verify_item *it)
{
    memset(it, 0, sizeof *it);
    it->path = strdup(path);
    ac_dump d;
    ac_error err;
    if (!o->quiet) printf("== %s\n", path);
    ac_status st = ac_dump_load(path, o->max_bytes, &d, &err);
    if (st) {
        it->status = 2;
        it->code = st;
        snprintf(it->error, sizeof it->error, "%s", err.msg);
        if (o->quiet) printf("%-8s %s  %s: %s\n", "ERROR", path, ac_status_name(st), err.msg);
        else printf("result: ERROR %s: %s\n\n", ac_status_name(st), err.msg);
        return;
    }
    dump_line(&d.c, it->line, sizeof it->line);
    const ac_dump_conv *cv = &d.conv;
    if (!o->quiet) {
        printf("case: %s\n", it->line);
        if (cv->library[0] || cv->library_version[0])
            printf("library: %s%s%s\n", cv->library, cv->library_version[0] ? " " : "", cv->library_version);
        if (cv->note[0]) printf("note: %s\n", cv->note);
        if (d.c.op == AC_OP_STORE)
            printf("conventions: kv_layout %s\n", cv->kv_layout_hnd ? "HND" : "NHD");
        else
            printf("conventions: lse %s (base %s, layout %s), empty rows %s, out %s%s%s\n",
                   cv->has_lse ? "given" : "absent", cv->lse_base2 ? "2" : "e", cv->lse_ht ? "HT" : "TH",
                   d.c.op == AC_OP_COMBINE ? ac_combine_empty_name(cv->combine_empty)
                                           : ac_empty_rule_name(cv->empty_row),
                   cv->out_f32 ? "fp32" : ac_dtype_name(d.c.dtype),
                   d.c.op == AC_OP_COMBINE ? "" : cv->layout_hnd ? ", layout HND" : ", layout NHD",
                   d.c.paged ? (cv->kv_layout_hnd ? ", kv_layout HND" : ", kv_layout NHD") : "");
    }
    ac_dump_check_opts co = {o->rows, 0x9e3779b97f4a7c15ull, 0};
    ac_check_result r;
    st = ac_dump_check(&d, &co, &r);
    if (st) {
        it->status = 2;
        it->code = st;
        snprintf(it->error, sizeof it->error, "%.40s: %s", r.stage ? r.stage : "?", r.error.msg);
        if (o->quiet) printf("%-8s %s  %s\n         %s: %s\n", "ERROR", path, it->line, ac_status_name(st), it->error);
        else printf("result: ERROR %s: %s\n\n", ac_status_name(st), it->error);
        ac_dump_check_free(&r);
        ac_dump_free(&d);
        return;
    }
    it->verdict = r.verdict;
    it->have_verdict = 1;
    it->status = r.verdict.pass ? 0 : 1;
    ac_dump_empty_report(&d, &r.oracle, &it->empty);
    if (!o->quiet) {
        ac_fuzz_print_diagnosis(&d.c, &r, 8, stdout);
        if (d.c.op != AC_OP_STORE) printf("%s\n", it->empty.text);
    }
    if (o->png && d.c.op != AC_OP_STORE) {
        ac_fuzz_env env;
        ac_fuzz_env_default(&env);
        char stem[2 * PATH_MAX + 2], name[PATH_MAX];
        const char *slash = strrchr(path, '/');
        snprintf(name, sizeof name, "%s", slash ? slash + 1 : path);
        char *dot = strrchr(name, '.');
        if (dot && dot != name) *dot = '\0';
        snprintf(stem, sizeof stem, "%s/%s", o->png, name);
        env.png_stem = stem;
        for (int k = 0; k < 2; k++) { /* only this run's pictures are reported */
            char pic[sizeof stem + 16];
            snprintf(pic, sizeof pic, "%s-%s.png", stem, k ? "rows" : "heat");
            unlink(pic);
        }
        ac_fuzz_write_pictures(&d.c, &r, &env, stdout); /* says why when it cannot */
        for (int k = 0; k < 2; k++) {
            char pic[sizeof stem + 16];
            struct stat sb;
            snprintf(pic, sizeof pic, "%s-%s.png", stem, k ? "rows" : "heat");
            if (stat(pic, &sb) == 0) printf("%spicture: %s\n", o->quiet ? "         " : "", pic);
        }
    }
    if (!r.verdict.pass || o->diagnose) {
        ac_error de;
        if (ac_dump_diagnose(&d, &r.verdict, &co, &it->diag, &de) == AC_OK) {
            it->have_diag = 1;
            if (!o->quiet) print_hypotheses(&it->diag, stdout);
        } else {
            snprintf(it->diag.summary, sizeof it->diag.summary, "diagnosis: stopped: %s", de.msg);
            it->have_diag = 1;
            it->diag.match = -1;
        }
    }
    const char *verdict = it->status ? "FAIL" : "PASS";
    if (o->quiet) {
        printf("%-8s %s  %s\n", verdict, path, it->line);
        if (it->status) printf("         %s\n", r.verdict.summary);
        if (it->have_diag) printf("         %s\n", it->diag.summary);
    } else {
        if (it->have_diag) printf("%s\n", it->diag.summary);
        printf("result: %s\n\n", verdict);
    }
    fflush(stdout);
    ac_dump_check_free(&r);
    ac_dump_free(&d);
}

/* ---- reports --------------------------------------------------------------------- */

static int write_json(const char *file, const verify_item *items, int n)
{
    cJSON *arr = cJSON_CreateArray();
    for (int i = 0; i < n; i++) {
        const verify_item *it = &items[i];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "file", it->path ? it->path : "");
        cJSON_AddStringToObject(o, "status", it->status == 0 ? "pass" : it->status == 1 ? "fail" : "error");
        if (it->line[0]) cJSON_AddStringToObject(o, "case", it->line);
        if (it->status == 2) {
            cJSON *e = cJSON_CreateObject();
            cJSON_AddStringToObject(e, "code", ac_status_name(it->code));
            cJSON_AddStringToObject(e, "message", it->error);
            cJSON_AddItemToObject(o, "error", e);
        }
        if (it->have_verdict) {
            const ac_verdict *v = &it->verdict;
            ac_report_json_num(o, "r", v->r_max);
            ac_report_json_num(o, "lse_r", v->r_lse_max);
            cJSON_AddItemToObject(o, "worst", ac_report_json_coord(&v->r_where));
            cJSON_AddItemToObject(o, "worst_lse", ac_report_json_coord(&v->lse_where));
            cJSON_AddStringToObject(o, "verdict", v->summary);
            cJSON *e = cJSON_CreateObject();
            cJSON_AddNumberToObject(e, "rows", (double)it->empty.rows);
            cJSON_AddNumberToObject(e, "rows_checked", (double)it->empty.rows_checked);
            cJSON_AddStringToObject(e, "convention", it->empty.convention >= 0 && it->empty.convention < AC_EMPTY_COUNT
                                                         ? ac_empty_rule_name((ac_empty_rule)it->empty.convention)
                                                     : it->empty.convention == AC_EMPTY_COUNT ? "zero_no_lse"
                                                                                              : "none");
            cJSON_AddBoolToObject(e, "as_declared", it->empty.as_declared);
            cJSON_AddStringToObject(e, "text", it->empty.text);
            cJSON_AddItemToObject(o, "empty_rows", e);
        }
        if (it->have_diag) {
            const ac_diagnosis *dg = &it->diag;
            cJSON *g = cJSON_CreateObject();
            cJSON_AddStringToObject(g, "summary", dg->summary);
            if (dg->match >= 0) cJSON_AddStringToObject(g, "match", dg->h[dg->match].name);
            else cJSON_AddNullToObject(g, "match");
            ac_report_json_num(g, "declared_r", dg->declared_r);
            cJSON *hs = cJSON_CreateArray();
            for (int k = 0; k < dg->n; k++) {
                const ac_hypothesis *h = &dg->h[k];
                cJSON *x = cJSON_CreateObject();
                cJSON_AddStringToObject(x, "name", h->name);
                cJSON_AddStringToObject(x, "declared", h->declared);
                cJSON_AddStringToObject(x, "about", h->about);
                cJSON_AddBoolToObject(x, "applicable", h->applicable);
                if (h->applicable) {
                    ac_report_json_num(x, "r", h->r);
                    ac_report_json_num(x, "lse_r", h->lse_r);
                    cJSON_AddBoolToObject(x, "pass", h->pass);
                } else {
                    cJSON_AddStringToObject(x, "why_not", h->why_not);
                }
                cJSON_AddItemToArray(hs, x);
            }
            cJSON_AddItemToObject(g, "hypotheses", hs);
            cJSON_AddItemToObject(o, "diagnosis", g);
        }
        cJSON_AddItemToArray(arr, o);
    }
    char *text = cJSON_Print(arr);
    cJSON_Delete(arr);
    FILE *f = text ? fopen(file, "w") : NULL;
    int ok = f && fputs(text, f) >= 0 && fputc('\n', f) != EOF;
    if (f && fclose(f)) ok = 0;
    free(text);
    if (!ok) fprintf(stderr, "verify: --json %s: cannot write\n", file);
    return ok ? 0 : -1;
}

static int write_junit(const char *file, const verify_item *items, int n)
{
    FILE *f = fopen(file, "w");
    if (!f) {
        fprintf(stderr, "verify: --junit %s: %s\n", file, strerror(errno));
        return -1;
    }
    int fails = 0, errors = 0;
    for (int i = 0; i < n; i++) {
        fails += items[i].status == 1;
        errors += items[i].status == 2;
    }
    fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites>\n"
               "<testsuite name=\"attncheck verify\" tests=\"%d\" failures=\"%d\" errors=\"%d\">\n", n, fails, errors);
    for (int i = 0; i < n; i++) {
        const verify_item *it = &items[i];
        fputs("  <testcase classname=\"attncheck.verify\" name=\"", f);
        ac_report_xml_text(f, it->line[0] ? it->line : it->path);
        fputs("\" file=\"", f);
        ac_report_xml_text(f, it->path);
        fputs("\"", f);
        if (it->status == 0) {
            fputs("/>\n", f);
            continue;
        }
        fputs(">\n    <", f);
        fputs(it->status == 1 ? "failure" : "error", f);
        fputs(" message=\"", f);
        if (it->status == 1) ac_report_xml_text(f, it->verdict.summary);
        else {
            ac_report_xml_text(f, ac_status_name(it->code));
            fputs(": ", f);
            ac_report_xml_text(f, it->error);
        }
        fputs("\">", f);
        if (it->have_diag) ac_report_xml_text(f, it->diag.summary);
        if (it->have_verdict && it->empty.rows) {
            fputs("\n", f);
            ac_report_xml_text(f, it->empty.text);
        }
        fprintf(f, "</%s>\n  </testcase>\n", it->status == 1 ? "failure" : "error");
    }
    fputs("</testsuite>\n</testsuites>\n", f);
    if (fclose(f)) {
        fprintf(stderr, "verify: --junit %s: cannot write\n", file);
        return -1;
    }
    return 0;
}

int ac_verify_main(int argc, char **argv)
{
    verify_opts o;
    memset(&o, 0, sizeof o);
    o.max_bytes = AC_DUMP_DEFAULT_MAX_BYTES;
    static const struct option longs[] = {
        {"json", required_argument, NULL, 'j'},   {"junit", required_argument, NULL, 'u'},
        {"png", required_argument, NULL, 'p'},    {"quiet", no_argument, NULL, 'q'},
        {"diagnose", no_argument, NULL, 'd'},     {"rows", required_argument, NULL, 'r'},
        {"max-size", required_argument, NULL, 'm'}, {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    optind = 1;
    opterr = 0;
    int ch;
    int64_t num;
    ac_error aerr;
    while ((ch = getopt_long(argc, argv, "qdh", longs, NULL)) != -1) {
        switch (ch) {
        case 'j': o.json = optarg; break;
        case 'u': o.junit = optarg; break;
        case 'p': o.png = optarg; break;
        case 'q': o.quiet = 1; break;
        case 'd': o.diagnose = 1; break;
        case 'r':
            if (ac_arg_i64("--rows", optarg, 0, INT64_MAX, &num, &aerr)) {
                fprintf(stderr, "attncheck verify: %s\n", aerr.msg);
                return 2;
            }
            o.rows = num;
            break;
        case 'm':
            if (ac_arg_i64("--max-size", optarg, 8, INT64_MAX, &num, &aerr)) {
                fprintf(stderr, "attncheck verify: %s\n", aerr.msg);
                return 2;
            }
            o.max_bytes = (uint64_t)num;
            break;
        case 'h': usage(stdout); return 0;
        default:
            fprintf(stderr, "verify: %s: unknown option or missing value\n", argv[optind - 1]);
            usage(stderr);
            return 2;
        }
    }
    if (optind >= argc) {
        usage(stderr);
        return 2;
    }
    if (o.png) {
        ac_error e;
        if (ac_mkdirs(o.png, &e)) {
            fprintf(stderr, "verify: --png: %s\n", e.msg);
            return 2;
        }
    }
    char **files;
    int n;
    int bad = collect(argv + optind, argc - optind, &files, &n);
    verify_item *items = calloc((size_t)(n ? n : 1), sizeof *items);
    if (!items) return 2;
    int passed = 0, failed = 0, errors = 0;
    for (int i = 0; i < n; i++) {
        verify_file(files[i], &o, &items[i]);
        passed += items[i].status == 0;
        failed += items[i].status == 1;
        errors += items[i].status == 2;
    }
    printf("verify: %d files: %d passed, %d failed, %d not judged (bad input)\n", n, passed, failed, errors);
    if (o.json && write_json(o.json, items, n)) bad = 1;
    if (o.junit && write_junit(o.junit, items, n)) bad = 1;
    for (int i = 0; i < n; i++) {
        free(items[i].path);
        free(files[i]);
    }
    free(items);
    free(files);
    if (errors || bad) return 2;
    return failed ? 1 : 0;
}
