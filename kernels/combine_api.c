/* Host side of the split-KV combine shared by the GPU launch and the CPU
 * model: argument validation (nothing runs on bad input), params from a case,
 * and the CPU backend entry. */
#include "combine.h"

ac_status ac_combine_validate(const ac_combine_params *p, ac_error *err)
{
    if (!p) return ac_fail(err, AC_ERR_NULL, "params is NULL");
    if ((int)p->dtype < 0 || p->dtype >= AC_DTYPE_COUNT)
        return ac_fail(err, AC_ERR_UNSUPPORTED, "dtype = %d: must be bf16 or fp16", (int)p->dtype);
    if (p->rows < 0 || p->rows > INT32_MAX)
        return ac_fail(err, AC_ERR_SHAPE, "rows = %lld: must be in [0, 2^31)", (long long)p->rows);
    if (p->num_splits < 1 || p->num_splits > AC_MAX_SPLITS)
        return ac_fail(err, AC_ERR_SHAPE, "num_splits = %d: must be in [1, %d]", p->num_splits, AC_MAX_SPLITS);
    if (p->head_dim < 1 || p->head_dim > AC_MAX_HEAD_DIM)
        return ac_fail(err, AC_ERR_SHAPE, "head_dim = %d: must be in [1, %d]", p->head_dim, AC_MAX_HEAD_DIM);
    if (!p->o_part) return ac_fail(err, AC_ERR_NULL, "o_part is NULL");
    if (!p->lse_part) return ac_fail(err, AC_ERR_NULL, "lse_part is NULL");
    if (!p->o && !p->o_f32) return ac_fail(err, AC_ERR_NULL, "o and o_f32 are both NULL: nothing to write");
    if (p->sinks && p->sink_heads < 1)
        return ac_fail(err, AC_ERR_SHAPE, "sink_heads = %d: must be >= 1 with sinks", p->sink_heads);
    return AC_OK;
}

ac_status ac_combine_params_from_case(const ac_case *c, const ac_tensors *t, ac_outputs *o,
                                      ac_combine_params *p, ac_error *err)
{
    if (!c || !t || !p) return ac_fail(err, AC_ERR_NULL, "case, tensors or params is NULL");
    if (c->op != AC_OP_COMBINE)
        return ac_fail(err, AC_ERR_UNSUPPORTED, "op = %s: not a combine case", ac_op_name(c->op));
    *p = (ac_combine_params){
        .dtype = c->dtype, .rows = ac_case_total_q(c) * c->heads_q, .num_splits = c->num_splits,
        .head_dim = c->head_dim, .o_part = t->o_part, .lse_part = t->lse_part,
        .o = o ? o->o : NULL, .o_f32 = o ? o->o_f32 : NULL, .lse = o ? o->lse : NULL,
    };
    return AC_OK;
}

ac_status ac_model_combine(const ac_case *c, const ac_tensors *t, const ac_run_opts *o, ac_outputs *out,
                           ac_error *err)
{
    ac_combine_params p;
    ac_status st = ac_combine_params_from_case(c, t, out, &p, err);
    if (st) return st;
    st = ac_combine_cpu(&p, o ? o->bug : AC_BUG_NONE, err);
    if (!st && o && o->bug == AC_BUG_LSE_BASE2)
        for (int64_t r = 0; r < p.rows; r++) out->lse[r] *= 1.44269504088896340736f;
    return st;
}
