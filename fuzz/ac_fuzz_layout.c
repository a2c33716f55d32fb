/* The layout target: a paged-attention case (prefill, decode or store) with
 * any sequence lengths, block size, pool, block table (with and without
 * replacement, shared prefixes, garbage past the used entries), slot mapping
 * (-1 padding, collisions), split count, distribution and special values.
 *
 *   valid by the contract   -> validation accepts it, the kernel runs, the
 *                              oracle's verdict passes;
 *   invalid by the contract -> validation returns one of the codes the
 *                              violated rules call for (computed here
 *                              independently), and the kernel's own host API,
 *                              handed the same bad metadata with buffers
 *                              sized for a repaired twin, refuses it with
 *                              such a code and writes nothing.
 * Anything else is a finding. */
#include "ac_fuzz.h"
#include "ac_diagnose.h"
#include "ac_family.h"
#include "ac_index.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define BIT(code) (1u << (unsigned)(code))

static void set_line(ac_fuzz_outcome *out, const ac_case *c)
{
    ac_case_line(c, out->line, sizeof out->line);
}

static void finding(ac_fuzz_outcome *out, const char *fmt, const char *a, const char *b, const char *msg)
{
    out->kind = AC_FUZZ_FINDING;
    snprintf(out->why, sizeof out->why, fmt, a, b, msg);
}

/* A verdict failure judged again under the classic wrong semantics
   (docs/DIAGNOSIS.md), on the finding's line: a replay, a walk's log and a
   saved file then name the bug its output matches. The check is run again
   keeping its tensors when the first run did not keep them (findings are
   rare; a sparse case keeps none and gets no diagnosis). */
static void append_diagnosis(const ac_case *c, const ac_fuzz_env *env, const ac_fuzz_check *r, ac_fuzz_outcome *out)
{
    if (ac_family_judge(c->op) == AC_JUDGE_BITWISE) return; /* the store's verdict names the slot */
    ac_fuzz_check again;
    memset(&again, 0, sizeof again);
    const ac_fuzz_check *use = r;
    if (!r->tensors.q) {
        if (ac_fuzz_check_case(c, env, NULL, NULL, 1, &again) != AC_OK || again.verdict.pass || !again.tensors.q) {
            ac_check_result_free(&again);
            return;
        }
        use = &again;
    }
    ac_diagnosis dg;
    ac_empty_report er;
    ac_error e;
    ac_check_opts o;
    ac_fuzz_check_opts(env, &o);
    char poison[sizeof dg.summary];
    int blamed;
    const char *named = "no-diagnosis";
    if (ac_check_explain(c, &o, use, &dg, &er, poison, sizeof poison, &blamed, &e) == AC_OK) {
        size_t l = strlen(out->why);
        snprintf(out->why + l, sizeof out->why - l, "; %s", dg.summary);
        named = dg.match >= 0 ? dg.h[dg.match].name : "no-match";
    }
    if (poison[0]) {
        size_t l = strlen(out->why);
        snprintf(out->why + l, sizeof out->why - l, "; %s", poison);
    }
    /* The kind: what failed and what it matches, not where or by how much (the
       message's numbers, the closest hypotheses' order): one bug, one file. */
    const ac_verdict *v = &use->verdict;
    snprintf(out->kind_sig, sizeof out->kind_sig, "verdict %s:%s%s%s%s %s%s", ac_op_name(c->op),
             v->n_bad_nan ? " non-finite" : "", v->n_bad_empty ? " empty-rows" : "",
             v->r_max > 1 && isfinite(v->r_max) ? " values" : "",
             v->r_lse_max > 1 && isfinite(v->r_lse_max) ? " lse" : "", named,
             blamed ? " unused_slots_read" : "");
    ac_check_result_free(&again);
}

/* The paged/slot rules the kernel's host API sees for this op (the store API
   gets no block table; prefill and decode get no slot mapping). */
static uint32_t kernel_layout_rules(const ac_case *c)
{
    ac_case t = *c; /* shallow: only read */
    uint32_t all = ac_fuzz_expected_errors(&t, 1);
    if (!ac_op_traits_of(c->op)->slots) return all;
    /* For a store only the slot rules reach the kernel: recompute them alone
       by blanking the table rules (a valid one-column table, no reads). */
    int32_t zero = 0, *lens = calloc((size_t)(c->batch > 0 ? c->batch : 1), sizeof(int32_t));
    if (!lens) return all;
    t.seqlen_k = lens;
    t.block_table = &zero;
    t.max_blocks_per_seq = 1;
    t.block_size = c->block_size;
    int32_t nb = c->num_blocks;
    t.batch = c->batch;
    t.num_blocks = nb;
    uint32_t m = ac_fuzz_expected_errors(&t, 1);
    free(lens);
    return m;
}

/* A twin of c that satisfies the layout rules (used entries in range,
   lengths within capacity, bad slots turned into padding). 0 if c's only
   violations are such layout ones, so the twin validates. */
static int repaired_twin(const ac_case *c, ac_case *twin)
{
    ac_error e;
    /* Only a paged case hands the kernel metadata apart from the tensors
       (block table, seqlens_k, slot mapping); a contiguous one's lengths
       come with the tensors (cu_seqlens), so there is nothing to repair. */
    if (!c->paged) return -1;
    if (ac_case_copy(twin, c, &e)) return -1;
    if (twin->block_size > 0 && twin->num_blocks > 0 && twin->max_blocks_per_seq > 0 && twin->block_table) {
        int64_t cap = (int64_t)twin->max_blocks_per_seq * twin->block_size;
        for (int32_t b = 0; b < twin->batch; b++) {
            if (twin->seqlen_k[b] < 0) twin->seqlen_k[b] = 0;
            if (twin->seqlen_k[b] > cap) twin->seqlen_k[b] = (int32_t)cap;
            int32_t *row = twin->block_table + (int64_t)b * twin->max_blocks_per_seq;
            for (int32_t i = 0; i < ac_blocks_used(twin->seqlen_k[b], twin->block_size); i++)
                if (row[i] < 0 || row[i] >= twin->num_blocks) row[i] = 0;
        }
    }
    int64_t nslots = (int64_t)twin->num_blocks * twin->block_size;
    for (int32_t t = 0; t < twin->num_tokens; t++) {
        int64_t s = twin->slot_mapping[t];
        int dup = 0;
        for (int32_t u = 0; u < t && !dup; u++) dup = twin->slot_mapping[u] == s;
        if (s != -1 && (s < 0 || s >= nslots || dup || (!twin->slot_mapping_i64 && s > INT32_MAX)))
            twin->slot_mapping[t] = -1;
    }
    if (ac_case_validate(twin, &e)) {
        ac_case_free(twin);
        return -1;
    }
    return 0;
}

/* 1 if c uses a feature (window, softcap, ALiBi, sinks) that the backend
   does not implement for c's family. */
static int lacks_features(ac_backend be, const ac_case *c)
{
    const ac_backend_ops *ops = ac_backend_get(be);
    return ops && (int)c->op >= 0 && c->op < AC_OP_COUNT && (ac_case_features(c) & ~ops->features[c->op]) != 0;
}

static int same_bytes(const void *a, const void *b, size_t n) { return (!a && !b) || (a && b && !memcmp(a, b, n)); }

/* Hand the bad metadata to the kernel's host API (through the backend
   runner) with buffers sized for the repaired twin. */
static void kernel_refuses(const ac_case *c, const ac_fuzz_env *env, ac_fuzz_outcome *out)
{
    uint32_t kmask = kernel_layout_rules(c);
    ac_case twin;
    if (!kmask || repaired_twin(c, &twin)) return;
    if (env->limits && !ac_fuzz_case_small(&twin)) {
        ac_case_free(&twin);
        return;
    }
    ac_tensors t;
    ac_outputs o, fresh;
    ac_error e;
    memset(&t, 0, sizeof t);
    memset(&o, 0, sizeof o);
    memset(&fresh, 0, sizeof fresh);
    if (ac_gen(&twin, &t, &e) == AC_OK && ac_outputs_alloc(c, &fresh, &e) == AC_OK) {
        ac_status st = ac_backend_run(env->backend, c, &t, NULL, &o, &e);
        char want[160];
        ac_fuzz_mask_str(kmask, want, sizeof want);
        const ac_backend_ops *ops = ac_backend_get(env->backend);
        if (st == AC_ERR_NO_DEVICE ||
            (st == AC_ERR_UNSUPPORTED && ops && (!ops->run[c->op] || lacks_features(env->backend, c)))) {
            /* nothing to judge: no device, a backend without this family or
               one of the case's features (refused before the entry ran) */
        } else if (!(kmask & BIT(st))) {
            out->code = st;
            finding(out, "kernel host API (%s) on a bad layout: expected %s, got %s", ac_backend_name(env->backend),
                    want, "");
            size_t n = strlen(out->why);
            snprintf(out->why + n, sizeof out->why - n, "%s (%s)", ac_status_name(st), e.msg);
        } else {
            /* The output has D_v columns; V's cache D_v per row (ac_tensors.h). */
            size_t rows = (size_t)ac_case_total_q(c) * (size_t)c->heads_q, n = rows * (size_t)ac_case_dv(c);
            size_t kv = (size_t)(fresh.kv_elems > 0 ? fresh.kv_elems : 0);
            int64_t fv = ac_outputs_v_elems(c, &fresh);
            size_t kvv = (size_t)(fv > 0 ? fv : 0);
            if (!same_bytes(o.o, fresh.o, n * 2) || !same_bytes(o.o_f32, fresh.o_f32, n * 4) ||
                !same_bytes(o.lse, fresh.lse, rows * 4) || !same_bytes(o.k_cache, fresh.k_cache, kv * 2) ||
                !same_bytes(o.v_cache, fresh.v_cache, kvv * 2)) {
                out->code = st;
                finding(out, "kernel host API (%s) returned %s on a bad layout but wrote output (%s)",
                        ac_backend_name(env->backend), ac_status_name(st), e.msg);
            }
        }
    }
    ac_tensors_free(&t);
    ac_outputs_free(&o);
    ac_outputs_free(&fresh);
    ac_case_free(&twin);
}


void ac_fuzz_layout_run(const uint8_t *data, size_t size, const ac_fuzz_env *env, ac_fuzz_outcome *out)
{
    ac_fuzz_outcome_free(out);
    FILE *log = env->log ? env->log : stderr;
    ac_error e;
    ac_casefile f;
    if (ac_fuzz_case_from_bytes(data, size, &f, &e)) {
        /* A text that claims to be a case file and is not one is reported
           as such, never decoded as fuzzer bytes into another case. */
        out->kind = ac_fuzz_is_casefile(data, size) ? AC_FUZZ_BAD_INPUT : AC_FUZZ_SKIPPED;
        out->code = e.code;
        snprintf(out->why, sizeof out->why, "%s%s", out->kind == AC_FUZZ_BAD_INPUT ? "" : "no case from these bytes: ",
                 e.msg);
        return;
    }
    ac_case *c = &f.c;
    set_line(out, c);
    if (env->verbose) fprintf(log, "case: %s\n", out->line);

    uint32_t want = ac_fuzz_expected_errors(c, 0);
    char wants[160];
    ac_fuzz_mask_str(want, wants, sizeof wants);
    ac_error ve;
    ac_error_clear(&ve);
    ac_status got = ac_case_validate(c, &ve);
    out->code = got;
    /* The file's expectation against the contract's rules: a case file that
       says ok for an input the rules reject (or names a code they do not
       call for) is itself wrong. That is no bug of the code under test
       (byte-level mutation and splicing make such files), so fuzzing passes
       over it, and replay refuses it by name, alike. */
    if (f.expect_error ? !(want & BIT(f.expect_code)) : want != 0) {
        out->kind = AC_FUZZ_BAD_INPUT;
        out->code = AC_ERR_PARSE;
        snprintf(out->why, sizeof out->why, "the file expects %s but the contract's rules say %s",
                 f.expect_error ? ac_status_name(f.expect_code) : "ok", wants);
    } else if (!want && got) {
        finding(out, "validation rejects a valid case: %s (%s)%s", ac_status_name(got), ve.msg, "");
    } else if (want && !(want & BIT(got))) {
        finding(out, "validation: expected %s, got %s (%s)", wants, ac_status_name(got), ve.msg);
    } else if (want) {
        out->kind = AC_FUZZ_REJECTED;
        snprintf(out->why, sizeof out->why, "%s: %s", ac_status_name(got), ve.msg);
        kernel_refuses(c, env, out);
    } else if (env->limits && !ac_fuzz_case_small(c)) {
        out->kind = AC_FUZZ_SKIPPED;
        snprintf(out->why, sizeof out->why, "over the fuzzing budget");
    } else {
        ac_fuzz_check r;
        ac_status st = ac_fuzz_check_case(c, env, NULL, NULL, env->verbose || env->png_stem, &r);
        uint32_t kwant = ac_fuzz_expected_errors(c, 1);
        out->code = st;
        if (st == AC_ERR_NO_DEVICE) {
            out->kind = AC_FUZZ_SKIPPED;
            snprintf(out->why, sizeof out->why, "%s", r.error.msg);
        } else if (st == AC_ERR_BUDGET || (st == AC_ERR_NOMEM && strcmp(r.stage, "kernel"))) {
            /* valid, but larger than this run may spend, or than the host's
               memory (a sparse case's reservation past an address-space cap):
               not a finding */
            out->kind = AC_FUZZ_SKIPPED;
            snprintf(out->why, sizeof out->why, "%s: %s", ac_status_name(st), r.error.msg);
        } else if (st == AC_ERR_UNSUPPORTED && !strcmp(r.stage, "kernel") && env->backend > AC_BACKEND_GPU) {
            /* An outside kernel refused a mode it lacks, by name: neither a
               finding nor a pass (the bundled kernels' rules do not bind it). */
            out->kind = AC_FUZZ_UNSUPPORTED;
            snprintf(out->why, sizeof out->why, "%s: %s", ac_status_name(st), r.error.msg);
        } else if (st == AC_ERR_UNSUPPORTED && !strcmp(r.stage, "kernel") && lacks_features(env->backend, c)) {
            /* A feature the backend does not declare (ac_backend_ops.features):
               refused by the registry before the kernel ran, by name. */
            out->kind = AC_FUZZ_UNSUPPORTED;
            snprintf(out->why, sizeof out->why, "%s: %s", ac_status_name(st), r.error.msg);
        } else if (st && (kwant & BIT(st)) && !strcmp(r.stage, "kernel")) {
            out->kind = AC_FUZZ_REJECTED; /* a mode the kernel does not have, refused by name */
            snprintf(out->why, sizeof out->why, "%s: %s", ac_status_name(st), r.error.msg);
            want = kwant;
            got = st;
        } else if (st) {
            finding(out, "%s failed on a valid case: %s (%s)", r.stage, ac_status_name(st), r.error.msg);
        } else if (!r.verdict.pass) {
            finding(out, "verdict (%s): %s%s", ac_backend_name(env->backend), r.verdict.summary, "");
            append_diagnosis(c, env, &r, out);
        } else {
            out->kind = AC_FUZZ_PASS;
            snprintf(out->why, sizeof out->why, "%s", r.verdict.summary);
        }
        if (env->verbose) ac_fuzz_print_diagnosis(c, &r, 8, log);
        ac_fuzz_write_pictures(c, &r, env, log);
        ac_check_result_free(&r);
    }
    if (env->verbose)
        fprintf(log, "%s: %s\n",
                out->kind == AC_FUZZ_FINDING ? "FINDING" : out->kind == AC_FUZZ_PASS ? "pass"
                : out->kind == AC_FUZZ_REJECTED ? "rejected as expected"
                : out->kind == AC_FUZZ_UNSUPPORTED ? "unsupported by the kernel" : "skipped",
                out->why);
    /* Ready to save: title = the case line, note = what happened. */
    ac_casefile_free(&out->file);
    if (ac_casefile_from_case(&out->file, c, &e) == AC_OK) {
        out->has_case = 1;
        ac_fuzz_set_expectation(&out->file, c, got);
        if (out->kind == AC_FUZZ_FINDING) ac_casefile_set_note(&out->file, out->why, &e);
    }
    ac_casefile_free(&f);
}

/* ------------------------------------------------------------------------ */

static int case_of(const uint8_t *data, size_t size, ac_casefile *f)
{
    ac_error e;
    return ac_fuzz_case_from_bytes(data, size, f, &e) == AC_OK ? 0 : -1;
}

size_t ac_fuzz_layout_mutate(uint8_t *data, size_t size, size_t max_size, uint64_t seed)
{
    ac_fuzz_rng r = {seed};
    ac_casefile f;
    if (case_of(data, size, &f)) {
        /* Nothing decodes (allocation failure only): start from random bytes. */
        uint8_t raw[48];
        for (size_t i = 0; i < sizeof raw; i++) raw[i] = (uint8_t)ac_fuzz_next(&r);
        if (case_of(raw, sizeof raw, &f)) return size;
    }
    for (int attempt = 0; attempt < 8; attempt++) {
        ac_case m;
        ac_error e;
        if (ac_case_copy(&m, &f.c, &e)) break;
        ac_fuzz_mutate_case(&m, &r, 1 + (int)ac_fuzz_below(&r, 3));
        /* Keep what runs at fuzzing speed, or what the validation alone judges. */
        int ok = ac_fuzz_expected_errors(&m, 0) != 0 || ac_fuzz_case_small(&m);
        size_t n = ok ? ac_fuzz_case_to_bytes(&m, data, max_size) : 0;
        ac_case_free(&m);
        if (n) {
            ac_casefile_free(&f);
            return n;
        }
    }
    /* Every attempt too big or unwritable: hand back the input, canonical. */
    size_t n = ac_fuzz_case_to_bytes(&f.c, data, max_size);
    ac_casefile_free(&f);
    return n ? n : size;
}

size_t ac_fuzz_layout_cross(const uint8_t *a, size_t na, const uint8_t *b, size_t nb, uint8_t *out, size_t max_out,
                            uint64_t seed)
{
    ac_fuzz_rng r = {seed};
    ac_casefile fa, fb;
    size_t n = 0;
    if (case_of(a, na, &fa)) return 0;
    if (case_of(b, nb, &fb)) {
        ac_casefile_free(&fa);
        return 0;
    }
    ac_case child;
    ac_error e;
    if (ac_fuzz_cross_case(&child, &fa.c, &fb.c, &r, &e) == AC_OK) {
        if (ac_fuzz_expected_errors(&child, 0) || ac_fuzz_case_small(&child))
            n = ac_fuzz_case_to_bytes(&child, out, max_out);
        ac_case_free(&child);
    }
    ac_casefile_free(&fa);
    ac_casefile_free(&fb);
    return n;
}
