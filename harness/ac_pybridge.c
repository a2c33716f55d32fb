/* The Python bridge (harness/ac_pybridge.h, docs/BRIDGE.md): one worker
 * process per attncheck process, a shared mapped file for the tensors, a JSON
 * line each way for the request and the answer. */
#define _GNU_SOURCE /* pipe2, O_CLOEXEC */
#include "ac_pybridge.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ac_big.h"
#include "ac_clock.h"
#include "ac_diagnose.h"
#include "ac_family.h"
#include "ac_numfmt.h"
#include "ac_stop.h"
#include "ac_validate.h"

/* The worker's end of each channel, by number (bridge.py reads ATTNCHECK_BRIDGE_FDS). */
enum { FD_REQ = 3, FD_RESP = 4, FD_SHM = 5 };
#define TAIL_BYTES 4096
#define SHM_ALIGN 64

/* What the adapter announced: its families and conventions. */
typedef struct hello {
    char name[64];
    unsigned families; /* bit per ac_op */
    int has_lse, lse_base2;
    ac_empty_rule empty_row;
    ac_combine_empty combine_empty;
    uint32_t features[AC_OP_COUNT]; /* by family, the AC_FEAT_* bits the adapter implements */
} hello;

typedef struct bridge {
    int loaded;
    char spec[400];
    char python[PATH_MAX];
    char pydir[PATH_MAX];     /* the checkout's python/ folder, "" when none was found */
    double timeout;
    hello h;
    char backend_name[80];
    /* The worker, owned by the process `owner` (a fork starts its own). */
    pid_t owner, pid;
    int req_fd, resp_fd, err_fd, shm_fd;
    unsigned char *shm;
    size_t shm_size;
    char *line;               /* the answer being read */
    size_t line_len, line_cap;
    char tail[TAIL_BYTES];    /* the worker's last stderr bytes, a ring */
    size_t tail_pos, tail_len;
    uint64_t next_id;
} bridge;

static bridge g = {.req_fd = -1, .resp_fd = -1, .err_fd = -1, .shm_fd = -1};

/* ---- the worker's stderr ------------------------------------------------------------- */

static void tail_add(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        g.tail[g.tail_pos] = p[i];
        g.tail_pos = (g.tail_pos + 1) % TAIL_BYTES;
        if (g.tail_len < TAIL_BYTES) g.tail_len++;
    }
}

/* Read what the worker wrote to stderr without blocking. */
static void drain_err(void)
{
    char buf[4096];
    while (g.err_fd >= 0) {
        ssize_t k = read(g.err_fd, buf, sizeof buf);
        if (k > 0) {
            tail_add(buf, (size_t)k);
            continue;
        }
        if (k < 0 && errno == EINTR) continue;
        if (k == 0) { /* the worker closed it (it exited) */
            close(g.err_fd);
            g.err_fd = -1;
        }
        break;
    }
}

/* The ring in order, NUL-terminated, into out (n bytes). */
static void tail_text(char *out, size_t n)
{
    size_t len = g.tail_len < n - 1 ? g.tail_len : n - 1;
    size_t start = (g.tail_pos + TAIL_BYTES - len) % TAIL_BYTES;
    for (size_t i = 0; i < len; i++) out[i] = g.tail[(start + i) % TAIL_BYTES];
    out[len] = '\0';
}

/* The last non-empty line of the worker's stderr, for a one-line message. */
static void tail_last_line(char *out, size_t n)
{
    char all[TAIL_BYTES + 1];
    tail_text(all, sizeof all);
    size_t len = strlen(all);
    while (len && (all[len - 1] == '\n' || all[len - 1] == '\r' || all[len - 1] == ' ')) all[--len] = '\0';
    char *nl = strrchr(all, '\n');
    snprintf(out, n, "%s", len ? (nl ? nl + 1 : all) : "(nothing)");
}

/* The whole tail to our stderr: a dead or hung worker's last words. */
static void tail_report(const char *why)
{
    char all[TAIL_BYTES + 1];
    drain_err();
    tail_text(all, sizeof all);
    fprintf(stderr, "attncheck: %s: %s; its stderr, last %zu bytes:\n%s%s", g.backend_name, why, strlen(all), all,
            strlen(all) && all[strlen(all) - 1] != '\n' ? "\n" : "");
}

/* ---- the worker's life ----------------------------------------------------------------- */

static void close_fd(int *fd)
{
    if (*fd >= 0) close(*fd);
    *fd = -1;
}

/* Forget the worker: fds, mapping. kill: end it (SIGKILL at once, or after
   a grace period in which an idle one leaves on its own). Only the owner
   reaps; a fork that inherited the state just lets go of it. */
static void worker_drop(int kill_now)
{
    int mine = g.owner == getpid();
    close_fd(&g.req_fd); /* an idle worker reads EOF and leaves */
    if (mine && g.pid > 0) {
        int status;
        pid_t w = 0;
        if (!kill_now)
            for (int i = 0; i < 200 && (w = waitpid(g.pid, &status, WNOHANG)) == 0; i++) {
                struct timespec nap = {0, 10000000};
                nanosleep(&nap, NULL);
            }
        if (w == 0) {
            kill(g.pid, SIGKILL);
            while (waitpid(g.pid, &status, 0) < 0 && errno == EINTR) {}
        }
    }
    if (mine) drain_err();
    close_fd(&g.resp_fd);
    close_fd(&g.err_fd);
    close_fd(&g.shm_fd);
    if (g.shm) munmap(g.shm, g.shm_size);
    g.shm = NULL;
    g.shm_size = 0;
    g.pid = 0;
    g.line_len = 0;
}

static void bridge_close(void)
{
    if (g.pid > 0 || g.req_fd >= 0) worker_drop(0);
}

/* A shared file for the tensors: unlinked at once, so nothing is left behind
   however this process ends; the worker maps it through its inherited fd. */
static int shm_open_file(ac_error *err)
{
    const char *tmp = getenv("TMPDIR");
    const char *dirs[3] = {"/dev/shm", tmp && *tmp ? tmp : "/tmp", "/tmp"};
    for (int i = 0; i < 3; i++) {
        char path[PATH_MAX];
        snprintf(path, sizeof path, "%s/attncheck-bridge-XXXXXX", dirs[i]);
        int fd = mkstemp(path);
        if (fd < 0) continue;
        unlink(path);
        fcntl(fd, F_SETFD, FD_CLOEXEC);
        return fd;
    }
    ac_fail(err, AC_ERR_IO, "%s: cannot create the shared tensor file in /dev/shm, $TMPDIR or /tmp: %s",
            g.backend_name, strerror(errno));
    return -1;
}

/* The mapping holds at least `need` bytes (grown in powers of two). */
static ac_status shm_reserve(size_t need, ac_error *err)
{
    if (need <= g.shm_size && g.shm) return AC_OK;
    size_t size = g.shm_size ? g.shm_size : ((size_t)1 << 20);
    while (size < need) size *= 2;
    if (g.shm) munmap(g.shm, g.shm_size);
    g.shm = NULL;
    g.shm_size = 0;
    if (ftruncate(g.shm_fd, (off_t)size))
        return ac_fail(err, AC_ERR_NOMEM, "%s: the shared tensor file cannot grow to %zu bytes: %s", g.backend_name,
                       size, strerror(errno));
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, g.shm_fd, 0);
    if (p == MAP_FAILED)
        return ac_fail(err, AC_ERR_NOMEM, "%s: cannot map %zu bytes: %s", g.backend_name, size, strerror(errno));
    g.shm = p;
    g.shm_size = size;
    return AC_OK;
}

/* Runs `python -m attncheck.bridge SPEC`, importing the installed package
   when there is one and the checkout's python/ otherwise. */
static const char bootstrap[] =
    "import os, sys\n"
    "try:\n"
    "    import attncheck.bridge as bridge\n"
    "except ImportError:\n"
    "    here = os.environ.get('ATTNCHECK_BRIDGE_PYDIR')\n"
    "    if not here:\n"
    "        raise\n"
    "    for m in [m for m in sys.modules if m == 'attncheck' or m.startswith('attncheck.')]:\n"
    "        del sys.modules[m]\n"
    "    sys.path.insert(0, here)\n"
    "    import attncheck.bridge as bridge\n"
    "sys.exit(bridge.main(sys.argv[1:]))\n";

static void child_exec(int fds[4])
{
    /* fds: req read end, resp write end, shm, stderr write end. Moved high
       first, so that no dup2 below overwrites one still to be placed. */
    int hi[4];
    for (int i = 0; i < 4; i++) hi[i] = fcntl(fds[i], F_DUPFD, 10);
    int devnull = open("/dev/null", O_RDONLY);
    if (devnull >= 0) dup2(devnull, 0);
    dup2(hi[3], 1); /* print() in an adapter goes to the stderr tail, never into the protocol */
    dup2(hi[3], 2);
    dup2(hi[0], FD_REQ);
    dup2(hi[1], FD_RESP);
    dup2(hi[2], FD_SHM);
    long maxfd = sysconf(_SC_OPEN_MAX);
    if (maxfd < 0 || maxfd > 65536) maxfd = 65536;
    for (int fd = FD_SHM + 1; fd < maxfd; fd++) close(fd);
    setpgid(0, 0);                    /* a Ctrl-C reaches attncheck, which ends the worker itself */
    prctl(PR_SET_PDEATHSIG, SIGKILL); /* and it never outlives attncheck */
    char fdenv[32];
    snprintf(fdenv, sizeof fdenv, "%d,%d,%d", FD_REQ, FD_RESP, FD_SHM);
    setenv("ATTNCHECK_BRIDGE_FDS", fdenv, 1);
    if (g.pydir[0]) setenv("ATTNCHECK_BRIDGE_PYDIR", g.pydir, 1);
    setenv("PYTHONUNBUFFERED", "1", 1);
    setenv("PYTHONDONTWRITEBYTECODE", "1", 0);
    char *argv[] = {g.python, "-c", (char *)bootstrap, g.spec, NULL};
    execvp(g.python, argv);
    fprintf(stderr, "cannot run %s: %s (set ATTNCHECK_PYTHON to the interpreter)\n", g.python, strerror(errno));
    _exit(127);
}

static ac_status read_line(double deadline, const char *what, ac_error *err);
static ac_status parse_hello(const char *text, hello *h, ac_error *err);

static ac_status worker_start(ac_error *err)
{
    int req[2], resp[2], errp[2];
    if (pipe2(req, O_CLOEXEC)) return ac_fail(err, AC_ERR_IO, "%s: pipe: %s", g.backend_name, strerror(errno));
    if (pipe2(resp, O_CLOEXEC)) {
        close(req[0]), close(req[1]);
        return ac_fail(err, AC_ERR_IO, "%s: pipe: %s", g.backend_name, strerror(errno));
    }
    if (pipe2(errp, O_CLOEXEC)) {
        close(req[0]), close(req[1]), close(resp[0]), close(resp[1]);
        return ac_fail(err, AC_ERR_IO, "%s: pipe: %s", g.backend_name, strerror(errno));
    }
    g.tail_len = g.tail_pos = 0;
    g.shm_fd = shm_open_file(err);
    ac_status st = g.shm_fd < 0 ? AC_ERR_IO : shm_reserve((size_t)1 << 20, err);
    pid_t pid = st ? -1 : fork();
    if (pid == 0) {
        int fds[4] = {req[0], resp[1], g.shm_fd, errp[1]};
        child_exec(fds);
    }
    close(req[0]), close(resp[1]), close(errp[1]);
    g.req_fd = req[1];
    g.resp_fd = resp[0];
    g.err_fd = errp[0];
    fcntl(g.err_fd, F_SETFL, O_NONBLOCK);
    g.owner = getpid();
    if (pid < 0) {
        if (!st) st = ac_fail(err, AC_ERR_IO, "%s: fork: %s", g.backend_name, strerror(errno));
        worker_drop(1);
        return st;
    }
    g.pid = pid;
    st = read_line(ac_now() + g.timeout, "start", err);
    if (st) return st;
    hello h;
    st = parse_hello(g.line, &h, err);
    if (!st && g.loaded &&
        (strcmp(h.name, g.h.name) || h.families != g.h.families || h.has_lse != g.h.has_lse ||
         h.lse_base2 != g.h.lse_base2 || h.empty_row != g.h.empty_row || h.combine_empty != g.h.combine_empty ||
         memcmp(h.features, g.h.features, sizeof h.features)))
        st = ac_fail(err, AC_ERR_IO, "%s: the restarted worker announces other families or conventions than the "
                     "first one", g.backend_name);
    if (st) {
        worker_drop(1);
        return st;
    }
    g.h = h;
    return AC_OK;
}

/* The worker died or broke protocol: a named error with its last words, and
   the worker gone (the next case starts a new one). */
static ac_status worker_failed(ac_error *err, const char *what, const char *fmt_why)
{
    char why[200] = "";
    int status = 0;
    if (g.pid > 0 && g.owner == getpid()) {
        pid_t w;
        /* It closed its pipe: give it a moment to finish exiting. */
        for (int i = 0; i < 50 && (w = waitpid(g.pid, &status, WNOHANG)) == 0; i++) {
            struct timespec nap = {0, 10000000};
            nanosleep(&nap, NULL);
        }
        if (w == g.pid) {
            if (WIFEXITED(status)) snprintf(why, sizeof why, "exit status %d", WEXITSTATUS(status));
            else if (WIFSIGNALED(status)) snprintf(why, sizeof why, "killed by signal %d", WTERMSIG(status));
            g.pid = 0;
        }
    }
    char last[160];
    drain_err();
    tail_last_line(last, sizeof last);
    char head[240];
    snprintf(head, sizeof head, "%s%s%s%s", fmt_why, why[0] ? " (" : "", why, why[0] ? ")" : "");
    tail_report(head);
    worker_drop(1);
    return ac_fail(err, AC_ERR_IO, "%s: the worker %s at %s; stderr: %.120s", g.backend_name, head, what, last);
}

/* One answer line into g.line, waiting at most until deadline; the worker's
   stderr is drained meanwhile (a full pipe would block it). */
static ac_status read_line(double deadline, const char *what, ac_error *err)
{
    g.line_len = 0;
    for (;;) {
        /* A complete line may already be in the buffer. */
        char *nl = g.line_len ? memchr(g.line, '\n', g.line_len) : NULL;
        if (nl) {
            *nl = '\0';
            return AC_OK;
        }
        if (ac_stop_requested) {
            tail_report("stopped by a signal while it ran");
            worker_drop(1);
            return ac_fail(err, AC_ERR_IO, "%s: stopped by a signal at %s: the worker was ended", g.backend_name, what);
        }
        double left = deadline - ac_now();
        if (left <= 0) {
            char msg[120];
            snprintf(msg, sizeof msg, "answered nothing in %.0f s ($ATTNCHECK_BRIDGE_TIMEOUT): killed", g.timeout);
            return worker_failed(err, what, msg);
        }
        struct pollfd p[2] = {{g.resp_fd, POLLIN, 0}, {g.err_fd, POLLIN, 0}};
        int ms = left > 0.2 ? 200 : (int)(left * 1000) + 1;
        int k = poll(p, g.err_fd >= 0 ? 2 : 1, ms);
        if (k < 0 && errno != EINTR) return worker_failed(err, what, "could not be waited for");
        if (k <= 0) continue;
        if (g.err_fd >= 0 && (p[1].revents & (POLLIN | POLLHUP))) drain_err();
        if (!(p[0].revents & (POLLIN | POLLHUP | POLLERR))) continue;
        if (g.line_cap - g.line_len < 65536) {
            size_t cap = g.line_cap ? 2 * g.line_cap : 131072;
            char *nb = realloc(g.line, cap);
            if (!nb) return ac_fail(err, AC_ERR_NOMEM, "%s: out of memory reading the answer", g.backend_name);
            g.line = nb;
            g.line_cap = cap;
        }
        ssize_t r = read(g.resp_fd, g.line + g.line_len, g.line_cap - g.line_len - 1);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return worker_failed(err, what, "died");
        g.line_len += (size_t)r;
        if (g.line_len > ((size_t)64 << 20)) return worker_failed(err, what, "broke the protocol (an answer over 64 MiB)");
    }
}

/* ---- the protocol ------------------------------------------------------------------------- */

/* The hello's optional "features": {family: ["window", "softcap", "alibi",
   "sinks", "fp8kv", "dv"]}, for families the adapter runs and features they
   take (the logit features: prefill and decode; an FP8 cache and D_v: the
   families whose op traits list them, store included). Absent: none, so that
   a case using one is refused as unsupported (an adapter written before the
   features cannot pass a window, or an FP8 cache, by ignoring it). */
static ac_status parse_features(const cJSON *f, hello *h, ac_error *err)
{
    enum { NF = 6 };
    static const char *const names[NF] = {"window", "softcap", "alibi", "sinks", "fp8kv", "dv"};
    static const uint32_t bits[NF] = {AC_FEAT_WINDOW, AC_FEAT_SOFTCAP, AC_FEAT_ALIBI, AC_FEAT_SINKS, AC_FEAT_FP8_KV,
                                      AC_FEAT_HEAD_DIM_V};
    if (!f || cJSON_IsNull(f)) return AC_OK;
    if (!cJSON_IsObject(f))
        return ac_fail(err, AC_ERR_IO, "%s: the hello's features: not an object {family: [feature, ...]}",
                       g.backend_name);
    const cJSON *fam;
    cJSON_ArrayForEach(fam, f)
    {
        const ac_family *af = ac_family_find(fam->string);
        if (!af || !(h->families & (1u << af->op)))
            return ac_fail(err, AC_ERR_IO, "%s: features: %.40s is not a family the adapter runs", g.backend_name,
                           fam->string);
        const ac_op_traits *tr = ac_op_traits_of(af->op);
        if (!cJSON_IsArray(fam))
            return ac_fail(err, AC_ERR_IO, "%s: features[%.40s]: not a list", g.backend_name, fam->string);
        const cJSON *x;
        cJSON_ArrayForEach(x, fam)
        {
            int k = 0;
            while (k < NF && !(cJSON_IsString(x) && !strcmp(x->valuestring, names[k]))) k++;
            if (k == NF)
                return ac_fail(err, AC_ERR_IO, "%s: features[%.40s]: %.40s is not a feature (window, softcap, alibi, "
                               "sinks, fp8kv, dv)", g.backend_name, fam->string,
                               cJSON_IsString(x) ? x->valuestring : "?");
            const int takes = tr && ((bits[k] & AC_FEAT_KV) ? (tr->kv_features & bits[k]) != 0 : tr->features != 0);
            if (!takes)
                return ac_fail(err, AC_ERR_IO, "%s: features[%.40s]: %s takes no %s", g.backend_name, fam->string,
                               fam->string, names[k]);
            h->features[af->op] |= bits[k];
        }
    }
    return AC_OK;
}

static ac_status parse_hello(const char *text, hello *h, ac_error *err)
{
    memset(h, 0, sizeof *h);
    cJSON *j = cJSON_Parse(text);
    ac_status st = AC_OK;
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "error");
    if (cJSON_IsString(e)) {
        st = ac_fail(err, AC_ERR_IO, "%s: %.200s", g.backend_name, e->valuestring);
        goto done;
    }
    const cJSON *magic = cJSON_GetObjectItemCaseSensitive(j, "hello");
    const cJSON *proto = cJSON_GetObjectItemCaseSensitive(j, "protocol");
    if (!cJSON_IsString(magic) || strcmp(magic->valuestring, "attncheck-bridge") || !cJSON_IsNumber(proto)) {
        st = ac_fail(err, AC_ERR_IO, "%s: the worker's first line is not the bridge's hello: %.120s", g.backend_name,
                     text);
        goto done;
    }
    if (proto->valuedouble != AC_PYBRIDGE_PROTOCOL) {
        const cJSON *from = cJSON_GetObjectItemCaseSensitive(j, "package");
        st = ac_fail(err, AC_ERR_IO, "%s: the worker speaks protocol %g, this attncheck %d (an older attncheck "
                     "package? %.100s)", g.backend_name, proto->valuedouble, AC_PYBRIDGE_PROTOCOL,
                     cJSON_IsString(from) ? from->valuestring : "");
        goto done;
    }
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(j, "name");
    const cJSON *fams = cJSON_GetObjectItemCaseSensitive(j, "families");
    const cJSON *lse = cJSON_GetObjectItemCaseSensitive(j, "lse");
    const cJSON *base = cJSON_GetObjectItemCaseSensitive(j, "lse_base");
    const cJSON *empty = cJSON_GetObjectItemCaseSensitive(j, "empty_row");
    const cJSON *cempty = cJSON_GetObjectItemCaseSensitive(j, "combine_empty");
    if (!cJSON_IsString(name) || !cJSON_IsArray(fams) || !cJSON_IsBool(lse) || !cJSON_IsString(base) ||
        !cJSON_IsString(empty) || !cJSON_IsString(cempty)) {
        st = ac_fail(err, AC_ERR_IO, "%s: the hello lacks a field (name, families, lse, lse_base, empty_row, "
                     "combine_empty): %.100s", g.backend_name, text);
        goto done;
    }
    snprintf(h->name, sizeof h->name, "%s", name->valuestring);
    const cJSON *f;
    cJSON_ArrayForEach(f, fams)
    {
        const ac_family *fam = cJSON_IsString(f) ? ac_family_find(f->valuestring) : NULL;
        if (!fam) {
            st = ac_fail(err, AC_ERR_IO, "%s: families: %.40s is not a family", g.backend_name,
                         cJSON_IsString(f) ? f->valuestring : "?");
            goto done;
        }
        h->families |= 1u << fam->op;
    }
    h->has_lse = cJSON_IsTrue(lse);
    h->lse_base2 = !strcmp(base->valuestring, "2");
    int rule = -1, crule = -1;
    for (int k = 0; k < AC_EMPTY_COUNT; k++)
        if (!strcmp(empty->valuestring, ac_empty_rule_name((ac_empty_rule)k))) rule = k;
    for (int k = 0; k < AC_COMBINE_EMPTY_COUNT; k++)
        if (!strcmp(cempty->valuestring, ac_combine_empty_name((ac_combine_empty)k))) crule = k;
    if (rule < 0 || crule < 0 || (!h->lse_base2 && strcmp(base->valuestring, "e"))) {
        st = ac_fail(err, AC_ERR_IO, "%s: unknown convention (lse_base %.8s, empty_row %.20s, combine_empty %.20s)",
                     g.backend_name, base->valuestring, empty->valuestring, cempty->valuestring);
        goto done;
    }
    h->empty_row = (ac_empty_rule)rule;
    h->combine_empty = (ac_combine_empty)crule;
    st = parse_features(cJSON_GetObjectItemCaseSensitive(j, "features"), h, err);
done:
    cJSON_Delete(j);
    return st;
}

/* One tensor in the shared file. */
typedef struct slot {
    const char *name, *dtype;
    int64_t shape[4];
    int ndim;
    size_t bytes, off;
    const void *src;  /* an input's data (NULL when it has no elements) */
    int input;        /* 1: copied in; 0: an output */
    int fp8;          /* FP8 codes: one byte each in the file, the low byte of uint16 holders here */
} slot;

typedef struct layout {
    slot s[20];
    int n;
    size_t end;
} layout;

static int dtype_is_fp8(const char *d) { return !strcmp(d, "e4m3") || !strcmp(d, "e5m2"); }
static size_t dtype_size(const char *d)
{
    return !strcmp(d, "i64") ? 8 : (!strcmp(d, "f32") || !strcmp(d, "i32")) ? 4
           : (!strcmp(d, "u8") || dtype_is_fp8(d)) ? 1 : 2;
}

static void put(layout *l, int input, const char *name, const char *dtype, const void *src, int ndim, int64_t d0,
                int64_t d1, int64_t d2, int64_t d3)
{
    slot *s = &l->s[l->n++];
    s->name = name;
    s->dtype = dtype;
    s->src = src;
    s->input = input;
    s->fp8 = dtype_is_fp8(dtype);
    s->ndim = ndim;
    int64_t dims[4] = {d0, d1, d2, d3}, n = 1;
    for (int i = 0; i < ndim; i++) n *= (s->shape[i] = dims[i]);
    s->bytes = (size_t)n * dtype_size(dtype);
    s->off = (l->end + SHM_ALIGN - 1) / SHM_ALIGN * SHM_ALIGN;
    l->end = s->off + s->bytes;
}

static const slot *find_slot(const layout *l, const char *name)
{
    for (int i = 0; i < l->n; i++)
        if (!strcmp(l->s[i].name, name)) return &l->s[i];
    return NULL;
}

/* The case's tensors and the outputs' places, by family. */
static void layout_case(const ac_case *c, const ac_tensors *t, layout *l)
{
    memset(l, 0, sizeof *l);
    const char *half = c->dtype == AC_FP16 ? "fp16" : "bf16";
    /* K/V in the case dtype, or FP8 codes ("e4m3", "e5m2": one byte each) */
    const char *kvd = c->kv_format == AC_KV_AS_DTYPE ? half : ac_kv_format_name(c->kv_format);
    const int64_t B = c->batch, Hq = c->heads_q, Hkv = c->heads_kv, D = c->head_dim, Dv = ac_case_dv(c);
    const int64_t rows = t->total_q * Hq;
    if (c->op == AC_OP_STORE) {
        put(l, 1, "k_new", half, t->k_new, 3, c->num_tokens, Hkv, D, 0);
        put(l, 1, "v_new", half, t->v_new, 3, c->num_tokens, Hkv, Dv, 0);
        put(l, 1, "slot_mapping", "i64", c->slot_mapping, 1, c->num_tokens, 0, 0, 0);
        put(l, 1, "k_cache", kvd, t->k, 4, c->num_blocks, c->block_size, Hkv, D);
        put(l, 1, "v_cache", kvd, t->v, 4, c->num_blocks, c->block_size, Hkv, Dv);
        put(l, 0, "k_cache_out", kvd, NULL, 4, c->num_blocks, c->block_size, Hkv, D);
        put(l, 0, "v_cache_out", kvd, NULL, 4, c->num_blocks, c->block_size, Hkv, Dv);
        if (c->n_kv_scales) {
            put(l, 1, "k_scales", "f32", c->k_scales, 1, c->n_kv_scales, 0, 0, 0);
            put(l, 1, "v_scales", "f32", c->v_scales, 1, c->n_kv_scales, 0, 0, 0);
        }
        return;
    }
    if (c->op == AC_OP_COMBINE) {
        put(l, 1, "o_part", "f32", t->o_part, 3, rows, c->num_splits, D, 0);
        put(l, 1, "lse_part", "f32", t->lse_part, 2, rows, c->num_splits, 0, 0);
        put(l, 0, "o_f32", "f32", NULL, 2, rows, D, 0, 0);
        put(l, 0, "o", half, NULL, 2, rows, D, 0, 0);
        put(l, 0, "lse", "f32", NULL, 1, rows, 0, 0, 0);
        return;
    }
    put(l, 1, "q", half, t->q, 3, t->total_q, Hq, D, 0);
    put(l, 1, "cu_seqlens_q", "i32", t->cu_seqlens_q, 1, B + 1, 0, 0, 0);
    if (c->paged) {
        put(l, 1, "k_cache", kvd, t->k, 4, c->num_blocks, c->block_size, Hkv, D);
        put(l, 1, "v_cache", kvd, t->v, 4, c->num_blocks, c->block_size, Hkv, Dv);
        put(l, 1, "block_table", "i32", c->block_table, 2, B, c->max_blocks_per_seq, 0, 0);
        put(l, 1, "seqlens_k", "i32", c->seqlen_k, 1, B, 0, 0, 0);
    } else {
        put(l, 1, "k", kvd, t->k, 3, t->total_k, Hkv, D, 0);
        put(l, 1, "v", kvd, t->v, 3, t->total_k, Hkv, Dv, 0);
        put(l, 1, "cu_seqlens_k", "i32", t->cu_seqlens_k, 1, B + 1, 0, 0, 0);
    }
    /* Per-head feature arrays as tensors: a sink may be -inf, which JSON cannot say. */
    if (c->n_alibi) put(l, 1, "alibi_slopes", "f32", c->alibi_slopes, 1, Hq, 0, 0, 0);
    if (c->n_sinks) put(l, 1, "sinks", "f32", c->sinks, 1, Hq, 0, 0, 0);
    if (c->n_kv_scales) {
        put(l, 1, "k_scales", "f32", c->k_scales, 1, c->n_kv_scales, 0, 0, 0);
        put(l, 1, "v_scales", "f32", c->v_scales, 1, c->n_kv_scales, 0, 0, 0);
    }
    if (c->mask != AC_MASK_NONE) {
        int64_t n = t->mask_off[B];
        if (c->mask == AC_MASK_BOOL) put(l, 1, "mask", "u8", t->mask_bool, 1, n, 0, 0, 0);
        else put(l, 1, "mask", "f32", t->mask_bias, 1, n, 0, 0, 0);
        put(l, 1, "mask_off", "i64", t->mask_off, 1, B + 1, 0, 0, 0);
    }
    put(l, 0, "o", half, NULL, 3, t->total_q, Hq, Dv, 0);
    put(l, 0, "lse", "f32", NULL, 2, t->total_q, Hq, 0, 0);
}

static cJSON *int_array(const int32_t *v, int32_t n)
{
    cJSON *a = cJSON_CreateArray();
    for (int32_t i = 0; a && v && i < n; i++) cJSON_AddItemToArray(a, cJSON_CreateNumber(v[i]));
    return a;
}

static char *request_json(const ac_case *c, const ac_tensors *t, const layout *l, uint64_t id)
{
    cJSON *j = cJSON_CreateObject(), *cs = cJSON_CreateObject(), *in = cJSON_CreateObject(),
          *out = cJSON_CreateObject();
    char line[512];
    ac_case_line(c, line, sizeof line);
    cJSON_AddStringToObject(j, "cmd", "run");
    cJSON_AddNumberToObject(j, "id", (double)id);
    cJSON_AddStringToObject(j, "op", ac_op_name(c->op));
    cJSON_AddNumberToObject(j, "shm_size", (double)g.shm_size);
    cJSON_AddStringToObject(cs, "line", line);
    cJSON_AddStringToObject(cs, "dtype", ac_dtype_name(c->dtype));
    cJSON_AddNumberToObject(cs, "batch", c->batch);
    cJSON_AddNumberToObject(cs, "heads_q", c->heads_q);
    cJSON_AddNumberToObject(cs, "heads_kv", c->heads_kv);
    cJSON_AddNumberToObject(cs, "head_dim", c->head_dim);
    cJSON_AddNumberToObject(cs, "head_dim_v", ac_case_dv(c));
    cJSON_AddStringToObject(cs, "kv_format", ac_kv_format_name(c->kv_format));
    if (c->scale_given) cJSON_AddNumberToObject(cs, "scale", (double)c->scale);
    else cJSON_AddNullToObject(cs, "scale");
    cJSON_AddStringToObject(cs, "causal", ac_causal_name(c->causal));
    cJSON_AddStringToObject(cs, "mask", c->mask == AC_MASK_BOOL ? "bool" : c->mask == AC_MASK_ADDITIVE ? "additive" : "none");
    cJSON_AddBoolToObject(cs, "mask_per_head", c->mask_per_head);
    cJSON_AddBoolToObject(cs, "paged", c->paged);
    cJSON_AddNumberToObject(cs, "block_size", c->block_size);
    cJSON_AddNumberToObject(cs, "num_blocks", c->num_blocks);
    cJSON_AddNumberToObject(cs, "max_blocks_per_seq", c->max_blocks_per_seq);
    cJSON_AddNumberToObject(cs, "num_splits", c->num_splits);
    cJSON_AddNumberToObject(cs, "num_tokens", c->num_tokens);
    cJSON_AddBoolToObject(cs, "slot_mapping_i64", c->slot_mapping_i64);
    cJSON_AddNumberToObject(cs, "window_left", c->window_left);
    cJSON_AddNumberToObject(cs, "window_right", c->window_right);
    cJSON_AddNumberToObject(cs, "softcap", (double)c->softcap);
    cJSON_AddNumberToObject(cs, "total_q", (double)t->total_q);
    cJSON_AddNumberToObject(cs, "total_k", (double)t->total_k);
    if (c->op != AC_OP_STORE) {
        cJSON_AddItemToObject(cs, "seqlen_q", int_array(c->seqlen_q, c->batch));
        cJSON_AddItemToObject(cs, "seqlen_k", int_array(c->seqlen_k, c->batch));
    }
    cJSON_AddItemToObject(j, "case", cs);
    for (int i = 0; i < l->n; i++) {
        const slot *s = &l->s[i];
        cJSON *d = cJSON_CreateObject(), *shape = cJSON_CreateArray();
        cJSON_AddNumberToObject(d, "offset", (double)s->off);
        cJSON_AddStringToObject(d, "dtype", s->dtype);
        for (int k = 0; k < s->ndim; k++) cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)s->shape[k]));
        cJSON_AddItemToObject(d, "shape", shape);
        cJSON_AddItemToObject(s->input ? in : out, s->name, d);
    }
    cJSON_AddItemToObject(j, "inputs", in);
    cJSON_AddItemToObject(j, "outputs", out);
    char *text = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    return text;
}

static ac_status write_all(int fd, const char *p, size_t n, ac_error *err)
{
    while (n) {
        ssize_t k = write(fd, p, n);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return worker_failed(err, "the request", "died");
        p += k;
        n -= (size_t)k;
    }
    return AC_OK;
}

/* ---- bad input, before anything is sent (SEMANTICS.md, "Bad input") ----------------------------- */

static ac_status validate(const ac_case *c, const ac_tensors *t, ac_error *err)
{
    ac_status st;
    /* A sparse case's pool is reserved memory of 2^31+ elements (docs/DATA.md):
       the bridge would copy all of it into shared memory. */
    if (ac_case_is_sparse(c))
        return ac_fail(err, AC_ERR_UNSUPPORTED, "special = sparse: the Python bridge does not ship a sparse pool "
                       "(2^31+ elements); check it with a C plugin or the bundled kernels");
    if (c->op == AC_OP_COMBINE) {
        if (c->num_splits < 1 || c->num_splits > AC_MAX_SPLITS)
            return ac_fail(err, AC_ERR_SHAPE, "num_splits = %d: must be in [1, %d]", c->num_splits, AC_MAX_SPLITS);
        if (c->head_dim < 1 || c->head_dim > AC_MAX_HEAD_DIM)
            return ac_fail(err, AC_ERR_SHAPE, "head_dim = %d: must be in [1, %d]", c->head_dim, AC_MAX_HEAD_DIM);
        return AC_OK;
    }
    if (c->op == AC_OP_STORE) {
        if (c->heads_kv <= 0 || c->heads_kv > AC_MAX_HEADS || c->head_dim <= 0 || c->head_dim > AC_MAX_HEAD_DIM)
            return ac_fail(err, AC_ERR_SHAPE, "heads_kv = %d, head_dim = %d: out of range", c->heads_kv, c->head_dim);
        if (c->block_size <= 0 || c->num_blocks <= 0)
            return ac_fail(err, AC_ERR_SHAPE, "block_size = %d, num_blocks = %d: must be > 0", c->block_size,
                           c->num_blocks);
        if (c->num_tokens == 0) return AC_OK;
        return ac_validate_slots(NULL, c->slot_mapping, c->num_tokens, (int64_t)c->num_blocks * c->block_size, err);
    }
    if ((st = ac_validate_heads(c->heads_q, c->heads_kv, c->head_dim, err))) return st;
    if ((st = ac_validate_cu_seqlens("cu_seqlens_q", t->cu_seqlens_q, c->batch, t->total_q, err))) return st;
    if (c->op == AC_OP_DECODE)
        for (int32_t b = 0; b < c->batch; b++)
            if (c->seqlen_q[b] < 1 || c->seqlen_q[b] > AC_MAX_QUERIES_DECODE)
                return ac_fail(err, AC_ERR_SEQLENS, "seqlen_q[%d] = %d: decode takes 1..%d queries", b, c->seqlen_q[b],
                               AC_MAX_QUERIES_DECODE);
    if (c->paged)
        return ac_validate_paged(c->block_table, c->batch, c->max_blocks_per_seq, c->seqlen_k, c->block_size,
                                 c->num_blocks, err);
    return ac_validate_cu_seqlens("cu_seqlens_k", t->cu_seqlens_k, c->batch, t->total_k, err);
}

/* ---- one case ------------------------------------------------------------------------------------ */

#define LN2 0.69314718055994530942
#define LOG2E 1.44269504088896340736

/* The declared conventions, applied: the base-2 LSE converted, each row
   with no allowed key that holds the declared empty-row values set to the
   contract's O = 0, LSE = -inf; nothing else touched. */
static void apply_conventions(const ac_case *c, const ac_tensors *t, int got_lse, ac_outputs *out)
{
    const int64_t rows = t->total_q * c->heads_q;
    const int combine = c->op == AC_OP_COMBINE;
    if (!got_lse) {
        free(out->lse);
        out->lse = NULL;
    } else if (g.h.lse_base2) {
        for (int64_t r = 0; r < rows; r++)
            if (isfinite(out->lse[r])) out->lse[r] = (float)(out->lse[r] * LN2);
    }
    ac_empty_rule rule = combine ? (g.h.combine_empty == AC_COMBINE_EMPTY_FLASH_ATTN ? AC_EMPTY_ZERO_POSINF
                                                                                     : AC_EMPTY_ZERO_NEGINF)
                                 : g.h.empty_row;
    for (int64_t r = 0; r < rows; r++)
        if (ac_row_is_empty(c, t, r)) ac_map_empty_row(rule, c, t, combine, out, r);
}

static ac_status bridge_run(const ac_case *c, const ac_tensors *t, const ac_run_opts *o, ac_outputs *out,
                            ac_error *err)
{
    if (!c || !t || !out) return ac_fail(err, AC_ERR_NULL, "case, tensors or outputs is NULL");
    ac_status st = validate(c, t, err);
    if (st) return st;
    if (g.owner != getpid()) { /* a fork: the worker belongs to the parent */
        worker_drop(0);
        g.owner = getpid();
    }
    if (g.pid <= 0 && (st = worker_start(err))) return st;
    layout l;
    layout_case(c, t, &l);
    if ((st = shm_reserve(l.end, err))) return st;
    for (int i = 0; i < l.n; i++) {
        const slot *s = &l.s[i];
        if (!s->input || !s->bytes) continue;
        if (s->fp8) /* the codes, packed one per byte */
            for (size_t k = 0; k < s->bytes; k++) g.shm[s->off + k] = (uint8_t)((const uint16_t *)s->src)[k];
        else memcpy(g.shm + s->off, s->src, s->bytes);
    }
    if (c->op == AC_OP_COMBINE && g.h.lse_base2) { /* every LSE of the call in base 2, the partials' too */
        float *lp = (float *)(g.shm + find_slot(&l, "lse_part")->off);
        for (size_t k = 0; k < find_slot(&l, "lse_part")->bytes / 4; k++)
            if (isfinite(lp[k])) lp[k] = (float)(lp[k] * LOG2E);
    }
    uint64_t id = ++g.next_id;
    char *req = request_json(c, t, &l, id);
    if (!req) return ac_fail(err, AC_ERR_NOMEM, "%s: out of memory for the request", g.backend_name);
    size_t n = strlen(req);
    req[n] = '\n'; /* cJSON's buffer has the NUL's byte: the newline takes it */
    st = write_all(g.req_fd, req, n + 1, err);
    free(req);
    if (st) return st;
    if ((st = read_line(ac_now() + g.timeout, "a case", err))) return st;
    cJSON *j = cJSON_Parse(g.line);
    const cJSON *jid = cJSON_GetObjectItemCaseSensitive(j, "id");
    const cJSON *status = cJSON_GetObjectItemCaseSensitive(j, "status");
    if (!cJSON_IsNumber(jid) || (uint64_t)jid->valuedouble != id || !cJSON_IsString(status)) {
        char what[160];
        snprintf(what, sizeof what, "broke the protocol (answer to request %llu: %.80s)", (unsigned long long)id,
                 g.line);
        cJSON_Delete(j);
        return worker_failed(err, "a case", what);
    }
    const cJSON *msg = cJSON_GetObjectItemCaseSensitive(j, "message");
    const char *text = cJSON_IsString(msg) ? msg->valuestring : "";
    if (!strcmp(status->valuestring, "unsupported")) {
        st = ac_fail(err, AC_ERR_UNSUPPORTED, "%s: unsupported: %.200s", g.backend_name, text);
    } else if (!strcmp(status->valuestring, "error")) {
        st = ac_fail(err, AC_ERR_IO, "%s: the adapter raised %.200s", g.backend_name, text);
    } else if (!strcmp(status->valuestring, "ok")) {
        if (c->op == AC_OP_STORE) {
            uint16_t *dst[2] = {out->k_cache, out->v_cache};
            const slot *src[2] = {find_slot(&l, "k_cache_out"), find_slot(&l, "v_cache_out")};
            for (int i = 0; i < 2; i++) {
                if (src[i]->fp8) /* a code per byte back into the holders' low byte */
                    for (size_t k = 0; k < src[i]->bytes; k++) dst[i][k] = g.shm[src[i]->off + k];
                else memcpy(dst[i], g.shm + src[i]->off, src[i]->bytes);
            }
        } else {
            const slot *so = find_slot(&l, "o"), *sl = find_slot(&l, "lse"), *sf = find_slot(&l, "o_f32");
            memcpy(out->o, g.shm + so->off, so->bytes);
            memcpy(out->lse, g.shm + sl->off, sl->bytes);
            if (sf) memcpy(out->o_f32, g.shm + sf->off, sf->bytes);
            else if (o && o->out_f32)
                for (size_t k = 0; k < so->bytes / 2; k++) out->o_f32[k] = ac_half_to_f32(c->dtype, out->o[k]);
            apply_conventions(c, t, cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "lse")), out);
        }
    } else {
        char what[120];
        snprintf(what, sizeof what, "broke the protocol (status \"%.40s\")", status->valuestring);
        cJSON_Delete(j);
        return worker_failed(err, "a case", what);
    }
    cJSON_Delete(j);
    return st;
}

/* ---- the backend ----------------------------------------------------------------------------------- */

static int bridge_available(char *why, size_t n)
{
    if (why && n) why[0] = '\0';
    return 1;
}

static ac_backend_ops ops = {
    .abi_version = AC_BACKEND_ABI_VERSION,
    .about = "a Python adapter through the bridge (harness/ac_pybridge.h)",
    .available = bridge_available,
};

/* The checkout's python/ folder: the nearest one above the program holding
   attncheck/bridge.py (as the fuzz campaigns find the repository root). */
static void find_pydir(char *out, size_t n)
{
    out[0] = '\0';
    char dir[PATH_MAX];
    ssize_t k = readlink("/proc/self/exe", dir, sizeof dir - 1);
    if (k <= 0) return;
    dir[k] = '\0';
    for (char *slash; (slash = strrchr(dir, '/')) && slash != dir;) {
        *slash = '\0';
        char probe[PATH_MAX + 40];
        if (strlen(dir) > 4000) return;
        snprintf(probe, sizeof probe, "%s/python/attncheck/bridge.py", dir);
        if (access(probe, R_OK) == 0) {
            snprintf(out, n, "%.4000s/python", dir);
            return;
        }
    }
}

ac_status ac_pybridge_load(const char *spec, ac_backend *out, ac_error *err)
{
    if (!spec || !out) return ac_fail(err, AC_ERR_NULL, "ac_pybridge_load: spec or out is NULL");
    if (g.loaded) return ac_fail(err, AC_ERR_UNSUPPORTED, "--kernel py:%s: one Python bridge per process", spec);
    const char *colon = strchr(spec, ':');
    if (!colon || colon == spec || !colon[1] || strchr(colon + 1, ':') || strlen(spec) >= sizeof g.spec)
        return ac_fail(err, AC_ERR_PARSE, "--kernel py:%.200s: expected py:MODULE:ADAPTER (e.g. "
                       "py:attncheck.adapters:numpy_ref)", spec);
    snprintf(g.spec, sizeof g.spec, "%s", spec);
    const char *py = getenv("ATTNCHECK_PYTHON");
    snprintf(g.python, sizeof g.python, "%s", py && *py ? py : "python3");
    find_pydir(g.pydir, sizeof g.pydir);
    g.timeout = AC_PYBRIDGE_TIMEOUT_S;
    const char *to = getenv("ATTNCHECK_BRIDGE_TIMEOUT");
    if (to && *to) {
        char *end;
        double v = strtod(to, &end);
        if (*end || !(v > 0) || !isfinite(v))
            return ac_fail(err, AC_ERR_PARSE, "ATTNCHECK_BRIDGE_TIMEOUT=%.40s: not a positive number of seconds", to);
        g.timeout = v;
    }
    snprintf(g.backend_name, sizeof g.backend_name, "py:%.60s", colon + 1);
    g.owner = getpid();
    ac_status st = worker_start(err);
    if (st) return st;
    g.loaded = 1;
    snprintf(g.backend_name, sizeof g.backend_name, "py:%.60s", g.h.name);
    ops.name = g.backend_name;
#define AC_FAMILY(name, NAME, ...) ops.run[AC_OP_##NAME] = (g.h.families & (1u << AC_OP_##NAME)) ? bridge_run : NULL;
#include "ac_families.def"
#undef AC_FAMILY
    memcpy(ops.features, g.h.features, sizeof ops.features);
    if (!g.h.families) {
        worker_drop(0);
        return ac_fail(err, AC_ERR_UNSUPPORTED, "--kernel py:%s: the adapter has no family", spec);
    }
    st = ac_backend_register(&ops, out, err);
    if (st) {
        worker_drop(0);
        return st;
    }
    atexit(bridge_close);
    ac_backend_on_close(bridge_close);
    return AC_OK;
}
