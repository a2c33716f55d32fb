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
 * Features as the kernel: the splits cut only the keys the step's window
 * hull holds (ac_decode_seq_keys), each row masks its own window edges;
 * softcap and ALiBi through ac_decode_logit2; a sink joins once, after the
 * splits (ac_decode_sink_join for one split, the combine's sum for more).
 * An FP8 cache (docs/DECODE.md, "FP8 KV and D_v"): codes decode exactly,
 * k_scale folds into the logit scale (ac_decode_logit_scales), and each
 * split's normalised fp32 output is multiplied by v_scale before the sink
 * or the combine (linear, so once per split is the same law as once at the
 * end). D_v != D_qk: q.k over D_qk, P.V, partials and outputs over D_v.
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
    float *acc;/* [D_v] sum of exp2(s - m) * v */
} lane_state;

static float load_elem(ac_dtype dt, const void *base, int64_t i)
{
    return ac_half_to_f32(dt, ((const uint16_t *)base)[i]);
}

/* A cache element without its scale: the half format, or the FP8 code in the
   holder's low byte (exact in fp32, as the kernel's fp8 -> half -> fp32). */
static float load_kv(const ac_decode_params *p, const void *base, int64_t i)
{
    return ac_kv_elem_to_f32(p->dtype, p->kv_format, ((const uint16_t *)base)[i]);
}

/* V's element (row `slot`, KV head g, d) at the right stride, or with
   AC_BUG_DV_AS_DQK at D_qk's (0 past V's end). */
static float load_v(const ac_decode_params *p, int dv_as_dqk, int64_t v_elems, int64_t slot, int32_t g, int32_t d)
{
    if (!dv_as_dqk) return load_kv(p, p->v_cache, ac_cache_offset(slot, g, p->heads_kv, ac_decode_dv(p)) + d);
    const int64_t off = ac_cache_offset(slot, g, p->heads_kv, p->head_dim) + d;
    return off < v_elems ? load_kv(p, p->v_cache, off) : 0.0f;
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

/* Final fp32 row values: to o / o_f32 / lse, or to the staging buffers the
   sink-numerator bug rewrites first. */
static void put_row(const ac_decode_params *p, float *stage_o, float *stage_lse, int64_t row, const float *v,
                    float lse)
{
    const int32_t d = ac_decode_dv(p);
    if (stage_o) {
        memcpy(stage_o + row * d, v, sizeof(float) * (size_t)d);
        stage_lse[row] = lse;
        return;
    }
    for (int32_t e = 0; e < d; e++) {
        ((uint16_t *)p->o)[row * d + e] = ac_f32_to_half(p->dtype, v[e]);
        if (p->o_f32) p->o_f32[row * d + e] = v[e];
    }
    if (p->lse) p->lse[row] = lse;
}

/* AC_BUG_SINK_NUMERATOR on the staged rows: the sink counted as a key whose
   value row is the row's first allowed key's V; then the real outputs. */
static void sink_numerator_bug(const ac_decode_params *p, const float *stage_o, const float *stage_lse)
{
    const int32_t hq = p->heads_q, hkv = p->heads_kv, d = ac_decode_dv(p);
    float *v = malloc(sizeof(float) * (size_t)d);
    if (!v) return;
    for (int32_t b = 0; b < p->batch; b++) {
        const int32_t lq = p->cu_seqlens_q[b + 1] - p->cu_seqlens_q[b], lk = p->seqlens_k[b];
        const int32_t *row_tbl = p->block_table + (int64_t)b * p->max_blocks_per_seq;
        for (int32_t i = 0; i < lq; i++) {
            int32_t rb, re;
            ac_decode_row_keys(p->causal, p->window, p->window_left, p->window_right, i, lq, lk, 0, &rb, &re);
            for (int32_t h = 0; h < hq; h++) {
                const int64_t row = ((int64_t)p->cu_seqlens_q[b] + i) * hq + h;
                const float lse = stage_lse[row], sink = p->sinks[h];
                memcpy(v, stage_o + row * d, sizeof(float) * (size_t)d);
                if (rb < re && sink != -INFINITY) {
                    const int32_t g = ac_kv_head(h, hq, hkv);
                    const float w = expf(sink - lse) * ac_decode_kv_scale(p->v_scales, p->n_kv_scales, g);
                    const int64_t slot = ac_pos_slot(row_tbl, rb, p->block_size);
                    for (int32_t e = 0; e < d; e++) v[e] += w * load_v(p, 0, 0, slot, g, e);
                }
                put_row(p, NULL, NULL, row, v, lse);
            }
        }
    }
    free(v);
}

ac_status ac_decode_cpu(const ac_decode_params *p, ac_bug bug, ac_error *err)
{
    ac_status st = ac_decode_validate(p, err); /* the kernel's contract, its head dims included */
    return st ? st : ac_decode_cpu_any_dims(p, bug, err);
}

ac_status ac_decode_cpu_any_dims(const ac_decode_params *p, ac_bug bug, ac_error *err)
{
    ac_status st = ac_decode_validate_any_dims(p, err);
    if (st) return st;
    if (p->batch == 0) return AC_OK;
    /* dk: q.k's D_qk; d: V's, the accumulators' and the outputs' D_v. */
    const int32_t hq = p->heads_q, hkv = p->heads_kv, dk = p->head_dim, d = ac_decode_dv(p), bs = p->block_size;
    const int32_t splits = ac_decode_splits(p, p->num_sms);
    const int32_t cta_rows = ac_decode_cta_rows(ac_decode_rows_needed(p), ac_decode_tile_dim(dk, d));
    const int32_t lanes = ac_decode_lanes(ac_decode_tile_dim(dk, d)), kpt = ac_decode_kpt(cta_rows);
    const int32_t lanes_per_warp = lanes / AC_DECODE_WARPS;
    float scale = p->scale_given ? p->scale : 1.0f / sqrtf((float)dk); /* 1/sqrt(D_qk), never D_v */
    if (bug == AC_BUG_SCALE_ONE && !p->scale_given) scale = 1.0f;
    const int capped = p->softcap > 0.0f;
    const int fp8 = p->kv_format != AC_KV_AS_DTYPE;
    const int dv_as_dqk = bug == AC_BUG_DV_AS_DQK && d != dk;
    const int64_t v_elems = (int64_t)p->num_blocks * bs * hkv * d;
    const int causal = bug == AC_BUG_TOP_LEFT ? AC_CAUSAL_TOP_LEFT : p->causal;
    const int top_left_window = bug == AC_BUG_WINDOW_TOP_LEFT;
    /* Excluded keys the loop visits come back as -c (base 2: -cap2). */
    const int cap_after_mask = bug == AC_BUG_SOFTCAP_AFTER_MASK && capped;
    const int stage = bug == AC_BUG_SINK_NUMERATOR && p->sinks;

    int64_t rows = p->total_q * hq;
    float *o_part = NULL, *lse_part = NULL, *stage_o = NULL, *stage_lse = NULL;
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
    if (stage) {
        stage_o = malloc(sizeof(float) * (size_t)rows * (size_t)d);
        stage_lse = malloc(sizeof(float) * (size_t)rows);
    }
    lane_state *st_l = calloc((size_t)lanes, sizeof *st_l);
    float *acc_mem = calloc((size_t)lanes * (size_t)d, sizeof(float));
    float *qf = malloc(sizeof(float) * (size_t)dk);
    float *sv = malloc(sizeof(float) * (size_t)kpt);
    float *ov = malloc(sizeof(float) * (size_t)d);
    if (!st_l || !acc_mem || !qf || !sv || !ov || (stage && (!stage_o || !stage_lse))) {
        free(o_part); free(lse_part); free(st_l); free(acc_mem); free(qf); free(sv); free(ov);
        free(stage_o); free(stage_lse);
        return ac_fail(err, AC_ERR_NOMEM, "decode model: out of memory");
    }
    for (int32_t l = 0; l < lanes; l++) st_l[l].acc = acc_mem + (size_t)l * d;

    for (int32_t b = 0; b < p->batch; b++) {
        const int32_t lq = p->cu_seqlens_q[b + 1] - p->cu_seqlens_q[b];
        const int32_t lk = p->seqlens_k[b];
        const int32_t *row_tbl = p->block_table + (int64_t)b * p->max_blocks_per_seq;
        const int32_t cap = ac_blocks_used(lk, bs) * bs; /* keys the used blocks hold */
        /* The keys the splits cut (all of [0, lk) without a window). Bugs that
           read past seqlen_k extend the range to the block end. */
        int32_t r0, r1;
        ac_decode_seq_keys(causal, p->window, p->window_left, p->window_right, lq, lk, bs, top_left_window, &r0, &r1);
        if (bug == AC_BUG_TAIL_UNMASKED || bug == AC_BUG_CAUSAL_OFF_BY_ONE) r1 = cap;
        for (int32_t i = 0; i < lq; i++) {
            const int64_t tok = p->cu_seqlens_q[b] + i;
            int32_t beg, end;
            ac_decode_row_keys(causal, p->window, p->window_left, p->window_right, i, lq, lk, top_left_window, &beg,
                               &end);
            if (bug == AC_BUG_TAIL_UNMASKED && end == lk) end = cap;
            if (bug == AC_BUG_CAUSAL_OFF_BY_ONE && end < cap) end += 1;
            if (bug == AC_BUG_DROP_LAST_KEY && end > beg) end -= 1;
            const int32_t diag = i + (lk - lq); /* ALiBi's distance is key - diag */
            for (int32_t h = 0; h < hq; h++) {
                const int32_t kvh = bug == AC_BUG_GQA_MOD ? h % hkv : ac_kv_head(h, hq, hkv);
                const int64_t row = tok * hq + h;
                const int64_t qoff = ac_thd_offset(tok, h, hq, dk);
                float slope = p->alibi_slopes ? p->alibi_slopes[h] : 0.0f;
                if (bug == AC_BUG_ALIBI_SIGN) slope = -slope;
                for (int32_t e = 0; e < dk; e++) qf[e] = load_elem(p->dtype, p->q, qoff + e);
                /* The KV head's logit constants (k_scale folded in) and v_scale. */
                float scale2, scale_c, cap2;
                ac_decode_logit_scales(scale, fp8 ? ac_decode_kv_scale(p->k_scales, p->n_kv_scales, kvh) : 1.0f,
                                       p->softcap, &scale2, &scale_c, &cap2);
                const float v_scale = fp8 && bug != AC_BUG_V_SCALE_DROPPED
                                          ? ac_decode_kv_scale(p->v_scales, p->n_kv_scales, kvh) : 1.0f;
                for (int32_t s = 0; s < splits; s++) {
                    int32_t kb, ke;
                    ac_split_range(r1 - r0, splits, s, bs, &kb, &ke);
                    kb += r0;
                    ke += r0;
                    const int32_t lo = beg > kb ? beg : kb, hi = end < ke ? end : ke;
                    /* The loop's last key: the row's, or with the bug every real key of the split. */
                    const int32_t top = cap_after_mask ? (ke < lk ? ke : lk) : hi;
                    for (int32_t l = 0; l < lanes; l++) {
                        st_l[l].m = -INFINITY;
                        st_l[l].l = 0.0f;
                        memset(st_l[l].acc, 0, sizeof(float) * (size_t)d);
                    }
                    /* Steps of lanes * kpt keys; lane l takes keys base + kk * lanes + l. */
                    for (int64_t base = kb; base < top; base += (int64_t)lanes * kpt) {
                        for (int32_t l = 0; l < lanes; l++) {
                            lane_state *ls = &st_l[l];
                            for (int32_t kk = 0; kk < kpt; kk++) {
                                int64_t pos = base + (int64_t)kk * lanes + l;
                                sv[kk] = -INFINITY;
                                if (pos >= top) continue;
                                if (pos < lo || pos >= hi) { /* excluded: only the bug visits it */
                                    if (cap_after_mask) sv[kk] = -cap2;
                                    continue;
                                }
                                if (bug == AC_BUG_SKIP_BLOCK_FIRST && pos % bs == 0) continue;
                                int64_t koff = ac_cache_offset(ac_pos_slot(row_tbl, (int32_t)pos, bs), kvh, hkv, dk);
                                float dot = 0.0f;
                                for (int32_t e = 0; e < dk; e++) dot += qf[e] * load_kv(p, p->k_cache, koff + e);
                                sv[kk] = ac_decode_logit2(dot, scale2, capped, scale_c, cap2, slope,
                                                          (float)((int32_t)pos - diag));
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
                                    const int64_t slot = ac_pos_slot(row_tbl, (int32_t)pos, bs);
                                    float pr = exp2f(sv[kk] - mn);
                                    ls->l += pr;
                                    for (int32_t e = 0; e < d; e++)
                                        ls->acc[e] += pr * load_v(p, dv_as_dqk, v_elems, slot, kvh, e);
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
                        /* The one split is the final combine: the sink joins here. */
                        float w = 1.0f;
                        if (p->sinks) lse = ac_decode_sink_join(lse, p->sinks[h], &w);
                        for (int32_t e = 0; e < d; e++) ov[e] = empty ? 0.0f : ac_decode_split_out(tot->acc[e], tot->l, v_scale) * w;
                        put_row(p, stage_o, stage_lse, row, ov, lse);
                    } else {
                        lse_part[row * splits + s] = lse;
                        if (!empty)
                            for (int32_t e = 0; e < d; e++)
                                o_part[(row * splits + s) * d + e] = ac_decode_split_out(tot->acc[e], tot->l, v_scale);
                    }
                }
            }
        }
    }
    if (splits > 1) {
        /* Partials carry no sink: it joins once, in this combine. */
        ac_combine_params cp = {p->dtype, rows, splits, d, o_part, lse_part,
                                stage ? NULL : p->o, stage ? stage_o : p->o_f32, stage ? stage_lse : p->lse,
                                p->sinks, hq};
        st = ac_combine_cpu(&cp, bug, err);
        if (!st && bug == AC_BUG_LSE_BASE2 && p->lse)
            for (int64_t r = 0; r < rows; r++) p->lse[r] *= 1.44269504088896340736f;
    }
    if (!st && stage) sink_numerator_bug(p, stage_o, stage_lse);
    free(o_part); free(lse_part); free(st_l); free(acc_mem); free(qf); free(sv); free(ov);
    free(stage_o); free(stage_lse);
    return st;
}
