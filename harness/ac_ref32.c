/* The same-precision reference of flash-attn's tests: what a plain, untiled
   implementation computes in the kernel's precision. The verdict reports the
   kernel's error as a multiple of this reference's error. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ac_index.h"
#include "ac_numfmt.h"
#include "ac_verdict.h"

static ac_status ref_attention(const ac_case *c, const ac_tensors *t, ac_outputs *out, ac_error *err)
{
    const int32_t D = c->head_dim, Hq = c->heads_q, Hkv = c->heads_kv;
    const float scale = ac_case_scale(c);
    int32_t max_lk = 0;
    for (int32_t b = 0; b < c->batch; b++) max_lk = c->seqlen_k[b] > max_lk ? c->seqlen_k[b] : max_lk;
    float *s = malloc(sizeof(float) * (size_t)(max_lk ? max_lk : 1));
    float *acc = malloc(sizeof(float) * (size_t)D);
    if (!s || !acc) {
        free(s);
        free(acc);
        return ac_fail(err, AC_ERR_NOMEM, "ref32: out of memory");
    }
    for (int32_t b = 0; b < c->batch; b++) {
        const int32_t Lq = c->seqlen_q[b], Lk = c->seqlen_k[b];
        const int32_t *row_tab = c->paged ? c->block_table + (int64_t)b * c->max_blocks_per_seq : NULL;
        for (int32_t i = 0; i < Lq; i++) {
            int64_t tok = t->cu_seqlens_q[b] + i;
            int32_t end = ac_causal_end((int)c->causal, i, Lq, Lk);
            for (int32_t h = 0; h < Hq; h++) {
                int32_t kvh = ac_kv_head(h, Hq, Hkv);
                const uint16_t *q = t->q + ac_thd_offset(tok, h, Hq, D);
                int64_t mrow = 0;
                if (c->mask != AC_MASK_NONE)
                    mrow = t->mask_off[b] + ((int64_t)(c->mask_per_head ? h : 0) * Lq + i) * Lk;
                float m = -INFINITY;
                for (int32_t j = 0; j < end; j++) {
                    s[j] = -INFINITY;
                    if (c->mask == AC_MASK_BOOL && !t->mask_bool[mrow + j]) continue;
                    float bias = c->mask == AC_MASK_ADDITIVE ? t->mask_bias[mrow + j] : 0.0f;
                    if (bias == -INFINITY) continue;
                    int64_t ko = c->paged ? ac_cache_offset(ac_pos_slot(row_tab, j, c->block_size), kvh, Hkv, D)
                                          : ac_thd_offset(t->cu_seqlens_k[b] + j, kvh, Hkv, D);
                    float dot = 0.0f;
                    for (int32_t d = 0; d < D; d++)
                        dot += ac_half_to_f32(c->dtype, q[d]) * ac_half_to_f32(c->dtype, t->k[ko + d]);
                    s[j] = dot * scale + bias;
                    if (s[j] > m) m = s[j];
                }
                float l = 0.0f;
                for (int32_t d = 0; d < D; d++) acc[d] = 0.0f;
                if (m != -INFINITY)
                    for (int32_t j = 0; j < end; j++) {
                        if (s[j] == -INFINITY) continue;
                        float p = expf(s[j] - m);
                        l += p;
                        float pr = ac_half_to_f32(c->dtype, ac_f32_to_half(c->dtype, p)); /* P in the dtype */
                        int64_t vo = c->paged ? ac_cache_offset(ac_pos_slot(row_tab, j, c->block_size), kvh, Hkv, D)
                                              : ac_thd_offset(t->cu_seqlens_k[b] + j, kvh, Hkv, D);
                        for (int32_t d = 0; d < D; d++) acc[d] += pr * ac_half_to_f32(c->dtype, t->v[vo + d]);
                    }
                int64_t o = ac_thd_offset(tok, h, Hq, D);
                for (int32_t d = 0; d < D; d++) {
                    float val = l > 0.0f ? acc[d] / l : 0.0f;
                    out->o_f32[o + d] = val;
                    out->o[o + d] = ac_f32_to_half(c->dtype, val);
                }
                out->lse[tok * Hq + h] = l > 0.0f ? m + logf(l) : -INFINITY;
            }
        }
    }
    free(s);
    free(acc);
    return AC_OK;
}

static ac_status ref_combine(const ac_case *c, const ac_tensors *t, ac_outputs *out)
{
    const int32_t D = c->head_dim, S = c->num_splits;
    int64_t rows = ac_case_total_q(c) * c->heads_q;
    for (int64_t r = 0; r < rows; r++) {
        const float *lse = t->lse_part + r * S;
        float m = -INFINITY;
        for (int32_t s = 0; s < S; s++) m = lse[s] > m ? lse[s] : m;
        float l = 0.0f;
        for (int32_t s = 0; s < S; s++)
            if (lse[s] != -INFINITY) l += expf(lse[s] - m);
        for (int32_t d = 0; d < D; d++) {
            float acc = 0.0f;
            if (m != -INFINITY)
                for (int32_t s = 0; s < S; s++)
                    if (lse[s] != -INFINITY) acc += expf(lse[s] - m) / l * t->o_part[(r * S + s) * D + d];
            out->o_f32[r * D + d] = acc;
            out->o[r * D + d] = ac_f32_to_half(c->dtype, acc);
        }
        out->lse[r] = m == -INFINITY ? -INFINITY : m + logf(l);
    }
    return AC_OK;
}

ac_status ac_ref32(const ac_case *c, const ac_tensors *t, ac_outputs *out, ac_error *err)
{
    ac_status st = ac_outputs_alloc(c, out, err);
    if (st) return st;
    if (c->op == AC_OP_PREFILL || c->op == AC_OP_DECODE) return ref_attention(c, t, out, err);
    if (c->op == AC_OP_COMBINE) return ref_combine(c, t, out);
    return ac_fail(err, AC_ERR_UNSUPPORTED, "ref32: no same-precision reference for %s", ac_op_name(c->op));
}
