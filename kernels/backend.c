#include "ac_backend.h"

static const char *const bug_names[AC_BUG_COUNT] = {
    "none",           "scale-one",      "gqa-mod",        "top-left",
    "causal-off-by-one", "drop-last-key", "store-pad-write", "tail-unmasked",
    "combine-no-inf-guard", "lse-base2",  "skip-block-first",
};

const char *ac_bug_name(ac_bug b) { return (b >= 0 && b < AC_BUG_COUNT) ? bug_names[b] : "?"; }
const char *ac_backend_name(ac_backend b) { return b == AC_BACKEND_GPU ? "gpu" : "cpu-model"; }

ac_status ac_backend_run(ac_backend be, const ac_case *c, const ac_tensors *t, const ac_run_opts *opts,
                         ac_outputs *out, ac_error *err)
{
    static const ac_run_opts none = {AC_BUG_NONE, 0};
    if (!opts) opts = &none;
    ac_status st = ac_outputs_alloc(c, out, err);
    if (st) return st;
    typedef ac_status (*run_fn)(const ac_case *, const ac_tensors *, const ac_run_opts *, ac_outputs *, ac_error *);
    static const run_fn model[AC_OP_COUNT] = {ac_model_prefill, ac_model_decode, ac_model_combine, ac_model_store};
    static const run_fn gpu[AC_OP_COUNT] = {ac_gpu_prefill, ac_gpu_decode, ac_gpu_combine, ac_gpu_store};
    if ((int)c->op < 0 || c->op >= AC_OP_COUNT) return ac_fail(err, AC_ERR_UNSUPPORTED, "op = %d: unknown", (int)c->op);
    if (be == AC_BACKEND_GPU && !ac_gpu_available())
        return ac_fail(err, AC_ERR_NO_DEVICE, "no CUDA device");
    return (be == AC_BACKEND_GPU ? gpu : model)[c->op](c, t, opts, out, err);
}
