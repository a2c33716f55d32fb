#include "ac_backends.h"

#include <string.h>

static const ac_backend_ops *registry[AC_BACKEND_MAX] = {
    [AC_BACKEND_MODEL] = &ac_backend_model_ops,
    [AC_BACKEND_GPU] = &ac_backend_gpu_ops,
};
static int registered = 2;

const ac_backend_ops *ac_backend_get(ac_backend be)
{
    return (be >= 0 && be < registered) ? registry[be] : NULL;
}

int ac_backend_count(void) { return registered; }

int ac_backend_find(const char *name, ac_backend *out)
{
    if (!name) return -1;
    if (!strcmp(name, "cpu")) name = "cpu-model";
    for (int i = 0; i < registered; i++)
        if (!strcmp(registry[i]->name, name)) {
            *out = i;
            return 0;
        }
    return -1;
}

ac_status ac_backend_register(const ac_backend_ops *ops, ac_backend *out, ac_error *err)
{
    if (!ops) return ac_fail(err, AC_ERR_NULL, "backend table: NULL");
    if (ops->abi_version != AC_BACKEND_ABI_VERSION)
        return ac_fail(err, AC_ERR_UNSUPPORTED, "backend table: abi_version = %u, this attncheck speaks %u",
                       ops->abi_version, (unsigned)AC_BACKEND_ABI_VERSION);
    if (!ops->name || !ops->name[0] || !ops->available)
        return ac_fail(err, AC_ERR_NULL, "backend table: %s is missing", !ops->name || !ops->name[0] ? "name" : "available");
    ac_backend dup;
    if (!ac_backend_find(ops->name, &dup))
        return ac_fail(err, AC_ERR_SHAPE, "backend table: name \"%s\" is taken", ops->name);
    if (registered >= AC_BACKEND_MAX)
        return ac_fail(err, AC_ERR_SHAPE, "backend table: the registry holds %d backends at most", AC_BACKEND_MAX);
    registry[registered] = ops;
    *out = registered++;
    return AC_OK;
}

const char *ac_backend_name(ac_backend be)
{
    const ac_backend_ops *o = ac_backend_get(be);
    return o ? o->name : "?";
}

int ac_backend_available(ac_backend be, char *why, size_t n)
{
    const ac_backend_ops *o = ac_backend_get(be);
    if (!o) {
        if (why && n) strncpy(why, "no such backend", n - 1), why[n - 1] = '\0';
        return 0;
    }
    return o->available(why, n);
}

ac_status ac_backend_run(ac_backend be, const ac_case *c, const ac_tensors *t, const ac_run_opts *opts,
                         ac_outputs *out, ac_error *err)
{
    static const ac_run_opts none = {AC_BUG_NONE, 0};
    if (!opts) opts = &none;
    const ac_backend_ops *o = ac_backend_get(be);
    if (!o) return ac_fail(err, AC_ERR_UNSUPPORTED, "backend %d: not registered", (int)be);
    if ((int)c->op < 0 || c->op >= AC_OP_COUNT) return ac_fail(err, AC_ERR_UNSUPPORTED, "op = %d: unknown", (int)c->op);
    char why[160];
    if (!o->available(why, sizeof why)) return ac_fail(err, AC_ERR_NO_DEVICE, "%s: %s", o->name, why);
    if (!o->run[c->op])
        return ac_fail(err, AC_ERR_UNSUPPORTED, "backend %s has no %s entry", o->name, ac_op_name(c->op));
    uint32_t lacks = ac_case_features(c) & ~o->features[c->op];
    if (lacks) {
        char names[64];
        return ac_fail(err, AC_ERR_UNSUPPORTED, "backend %s does not implement %s for %s", o->name,
                       ac_feature_names(lacks, names, sizeof names), ac_op_name(c->op));
    }
    ac_status st = ac_outputs_alloc(c, out, err);
    if (st) return st;
    return o->run[c->op](c, t, opts, out, err);
}

static void (*close_hooks[8])(void);
static int n_close_hooks;

void ac_backend_on_close(void (*fn)(void))
{
    if (fn && n_close_hooks < 8) close_hooks[n_close_hooks++] = fn;
}

void ac_backends_close(void)
{
    for (int i = 0; i < n_close_hooks; i++) close_hooks[i]();
}
