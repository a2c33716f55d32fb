/* CPU model of the paged decode kernel (kernels/decode.cu).
 *
 * The model runs the kernel's algorithm in fp32 (docs/DECODE.md):
 *   - the keys [0, seqlen_k) of a sequence are cut by ac_split_range on block
 *     boundaries into num_splits splits;
 *   - inside a split, key p belongs to key lane (p - begin) % lanes
 *     (lanes = ac_decode_lanes(D)); each lane keeps an online softmax in base 2
 *     (logits pre-multiplied by scale * log2(e)), taking its keys kpt at a time
 *     with one rescale per step, like the kernel's registers;
 *   - the lanes of a warp merge in the kernel's butterfly order, then the warps
 *     in order; one split writes O and LSE directly, more splits write fp32
 *     partials that ac_combine_cpu merges, as the kernel's combine does.
 * P stays fp32 in P.V (not rounded to the input dtype), in both. Remaining
 * differences to the kernel are the order of the D-term dot product, exp2f's
 * implementation and fma contraction: docs/DECODE.md bounds them. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ac_numfmt.h"
#include "combine.h"
#include "decode.h"

/* State of one key lane (or a merged group of lanes) for one row. */
typedef struct lane_state {
    float m;   /* running max of the base-2 logits, -inf before any key */
    float l;   /* sum of exp2(s - m) */
    float *acc;/* [D] sum of exp2(s - m) * v */
} lane_state;

static float load_elem(ac_dtype dt, const void *base, int64_t i)
{
    return ac_half_to_f32(dt, ((const uint16_t *)base)[i]);
}

/* a := merge of a and b (the kernel's warp butterfly step / warp loop step). */
static void merge_into(lane_state *a, const lane_state *b, int32_t d)
{
    float m = fmaxf(a->m, b->m);
    if (m == -INFINITY) return;
    float sa = exp2f(a->m - m), sb = exp2f(b->m - m);
    a->l = a->l * sa + b->l * sb;
    for (int32_t e = 0; e < d; e++) a->acc[e] = a->acc[e] * sa + b->acc[e] * sb;
    a->m = m;
}

ac_status ac_decode_cpu(const ac_decode_params *p, ac_bug bug, ac_error *err)
{
    ac_status st = ac_decode_validate(p, err);
    if (st) return st;
    if (p->batch == 0) return AC_OK;
    const int32_t hq = p->heads_q, hkv = p->heads_kv, d = p->head_dim, bs = p->block_size;
    const int32_t splits = ac_decode_splits(p, p->num_sms);
    const int32_t cta_rows = ac_decode_cta_rows(ac_decode_rows_needed(p));
    const int32_t lanes = ac_decode_lanes(d), kpt = ac_decode_kpt(cta_rows);
    const int32_t lanes_per_warp = lanes / AC_DECODE_WARPS;
    float scale = p->scale_given ? p->scale : 1.0f / sqrtf((float)d);
    if (bug == AC_BUG_SCALE_ONE && !p->scale_given) scale = 1.0f;
    const float scale2 = scale * 1.44269504088896340736f; /* log2(e) folded in, as the kernel */
    const int causal = bug == AC_BUG_TOP_LEFT ? AC_CAUSAL_TOP_LEFT : p->causal;

    int64_t rows = p->total_q * hq;
    float *o_part = NULL, *lse_part = NULL;
    if (splits > 1) {
        o_part = malloc(sizeof(float) * (size_t)rows * (size_t)splits * (size_t)d);
        lse_part = malloc(sizeof(float) * (size_t)rows * (size_t)splits);
        if (!o_part || !lse_part) {
            free(o_part);
            free(lse_part);
            return ac_fail(err, AC_ERR_NOMEM, "decode model: out of memory for %d splits", splits);
        }
        /* Empty splits leave their O_s untouched: NaN there proves nobody reads it. */
        for (size_t i = 0; i < (size_t)rows * (size_t)splits * (size_t)d; i++) o_part[i] = NAN;
    }
    lane_state *st_l = calloc((size_t)lanes, sizeof *st_l);
    float *acc_mem = calloc((size_t)lanes * (size_t)d, sizeof(float));
    float *qf = malloc(sizeof(float) * (size_t)d);
    float *sv = malloc(sizeof(float) * (size_t)kpt);
    if (!st_l || !acc_mem || !qf || !sv) {
        free(o_part); free(lse_part); free(st_l); free(acc_mem); free(qf); free(sv);
        return ac_fail(err, AC_ERR_NOMEM, "decode model: out of memory");
    }
    for (int32_t l = 0; l < lanes; l++) st_l[l].acc = acc_mem + (size_t)l * d;

    for (int32_t b = 0; b < p->batch; b++) {
        const int32_t lq = p->cu_seqlens_q[b + 1] - p->cu_seqlens_q[b];
        const int32_t lk = p->seqlens_k[b];
        const int32_t *row_tbl = p->block_table + (int64_t)b * p->max_blocks_per_seq;
        const int32_t cap = ac_blocks_used(lk, bs) * bs; /* keys the used blocks hold */
        /* Bugs that read past seqlen_k extend the key range to the block end. */
        const int32_t n_range = (bug == AC_BUG_TAIL_UNMASKED || bug == AC_BUG_CAUSAL_OFF_BY_ONE) ? cap : lk;
        for (int32_t i = 0; i < lq; i++) {
            const int64_t tok = p->cu_seqlens_q[b] + i;
            int32_t end = ac_causal_end(causal, i, lq, lk);
            if (bug == AC_BUG_TAIL_UNMASKED && end == lk) end = cap;
            if (bug == AC_BUG_CAUSAL_OFF_BY_ONE && end < cap) end += 1;
            if (bug == AC_BUG_DROP_LAST_KEY && end > 0) end -= 1;
            for (int32_t h = 0; h < hq; h++) {
                const int32_t kvh = bug == AC_BUG_GQA_MOD ? h % hkv : ac_kv_head(h, hq, hkv);
                const int64_t row = tok * hq + h;
                const int64_t qoff = ac_thd_offset(tok, h, hq, d);
                for (int32_t e = 0; e < d; e++) qf[e] = load_elem(p->dtype, p->q, qoff + e);
                for (int32_t s = 0; s < splits; s++) {
                    int32_t kb, ke;
                    ac_split_range(n_range, splits, s, bs, &kb, &ke);
                    const int32_t hi = end < ke ? end : ke;
                    for (int32_t l = 0; l < lanes; l++) {
                        st_l[l].m = -INFINITY;
                        st_l[l].l = 0.0f;
                        memset(st_l[l].acc, 0, sizeof(float) * (size_t)d);
                    }
                    /* Steps of lanes * kpt keys; lane l takes keys base + kk * lanes + l. */
                    for (int64_t base = kb; base < hi; base += (int64_t)lanes * kpt) {
                        for (int32_t l = 0; l < lanes; l++) {
                            lane_state *ls = &st_l[l];
                            for (int32_t kk = 0; kk < kpt; kk++) {
                                int64_t pos = base + (int64_t)kk * lanes + l;
                                sv[kk] = -INFINITY;
                                if (pos >= hi) continue;
                                if (bug == AC_BUG_SKIP_BLOCK_FIRST && pos % bs == 0) continue;
                                int64_t koff = ac_cache_offset(ac_pos_slot(row_tbl, (int32_t)pos, bs), kvh, hkv, d);
                                float dot = 0.0f;
                                for (int32_t e = 0; e < d; e++) dot += qf[e] * load_elem(p->dtype, p->k_cache, koff + e);
                                sv[kk] = dot * scale2;
                            }
                            /* The running max moves AC_DECODE_SOFTMAX_KEYS keys at a time, as in the kernel. */
                            for (int32_t g = 0; g < kpt; g += AC_DECODE_SOFTMAX_KEYS) {
                                float mt = -INFINITY;
                                for (int32_t kk = g; kk < g + AC_DECODE_SOFTMAX_KEYS; kk++) mt = fmaxf(mt, sv[kk]);
                                float mn = fmaxf(ls->m, mt);
                                if (mn == -INFINITY) continue;
                                float alpha = exp2f(ls->m - mn);
                                ls->l *= alpha;
                                for (int32_t e = 0; e < d; e++) ls->acc[e] *= alpha;
                                ls->m = mn;
                                for (int32_t kk = g; kk < g + AC_DECODE_SOFTMAX_KEYS; kk++) {
                                    if (sv[kk] == -INFINITY) continue; /* masked: V never touched */
                                    int64_t pos = base + (int64_t)kk * lanes + l;
                                    int64_t voff = ac_cache_offset(ac_pos_slot(row_tbl, (int32_t)pos, bs), kvh, hkv, d);
                                    float pr = exp2f(sv[kk] - mn);
                                    ls->l += pr;
                                    for (int32_t e = 0; e < d; e++)
                                        ls->acc[e] += pr * load_elem(p->dtype, p->v_cache, voff + e);
                                }
                            }
                        }
                    }
                    /* Warp butterfly over the lanes of each warp (xor 1, 2, ...), then warps in order. */
                    for (int32_t w = 0; w < AC_DECODE_WARPS; w++) {
                        lane_state *wl = &st_l[w * lanes_per_warp];
                        for (int32_t stride = 1; stride < lanes_per_warp; stride *= 2)
                            for (int32_t j = 0; j < lanes_per_warp; j += 2 * stride)
                                merge_into(&wl[j], &wl[j + stride], d);
                    }
                    lane_state *tot = &st_l[0];
                    for (int32_t w = 1; w < AC_DECODE_WARPS; w++) merge_into(tot, &st_l[w * lanes_per_warp], d);
                    const int empty = tot->m == -INFINITY;
                    float lse2 = empty ? -INFINITY : tot->m + log2f(tot->l);
                    float lse = bug == AC_BUG_LSE_BASE2 && splits == 1 ? lse2 : lse2 * 0.69314718055994530942f;
                    if (splits == 1) {
                        for (int32_t e = 0; e < d; e++) {
                            float v = empty ? 0.0f : tot->acc[e] / tot->l;
                            ((uint16_t *)p->o)[row * d + e] = ac_f32_to_half(p->dtype, v);
                            if (p->o_f32) p->o_f32[row * d + e] = v;
                        }
                        if (p->lse) p->lse[row] = lse;
                    } else {
                        lse_part[row * splits + s] = lse;
                        if (!empty)
                            for (int32_t e = 0; e < d; e++)
                                o_part[(row * splits + s) * d + e] = tot->acc[e] / tot->l;
                    }
                }
            }
        }
    }
    if (splits > 1) {
        ac_combine_params cp = {p->dtype, rows, splits, d, o_part, lse_part, p->o, p->o_f32, p->lse};
        st = ac_combine_cpu(&cp, bug, err);
        if (!st && bug == AC_BUG_LSE_BASE2 && p->lse)
            for (int64_t r = 0; r < rows; r++) p->lse[r] *= 1.44269504088896340736f;
    }
    free(o_part); free(lse_part); free(st_l); free(acc_mem); free(qf); free(sv);
    return st;
}
