/* CPU model of the prefill kernel (kernels/prefill.cu): the same key tiles,
 * the same online softmax in fp32, P rounded to the input dtype before P.V,
 * the same index math (common/ac_index.h). It stands in for the kernel where
 * there is no GPU, and it carries the injectable prefill bugs of ac_backend.h.
 *
 * Order of the arithmetic, mirrored from the kernel (docs/PREFILL.md):
 *   s    = q.k as fp32 partial sums of 16 products (one m16n8k16 k-step each)
 *   t    = s * (scale*log2 e),  or with softcap c: tanhf(s * (scale/c)) * (c log2 e)
 *          [+ fmaf(slope * (float)dist, log2 e, t) with ALiBi]
 *          [+ fmaf(bias, log2 e, t) with a bias]
 *          keys outside the row's [begin, end) (causal mode and window) are -inf;
 *          the CTA visits key tiles [begin(first row) / 64, ceil(end(last row) / 64))
 *   m'   = max(m, max_tile t);  m_use = m' == -inf ? 0 : m'   (empty-row guard)
 *   p    = exp2(t - m_use);     alpha = exp2(m - m_use)
 *   l_g  = fmaf(l_g, alpha, sum of the group's p)  for 4 column groups (the
 *          4 lanes sharing a row), reduced (l0+l1)+(l2+l3) at the end
 *   o    = o*alpha + sum over k-steps of (16 products round(p)*v)
 *   O    = o * (1/l),  LSE = fmaf(m, ln 2, ln l);  empty row: O = 0, LSE = -inf
 *   with a finite sink (ms = sink * log2 e, m' = max(m, ms)):
 *          l' = fmaf(l, exp2(m - m'), exp2(ms - m')),  O = o * (exp2(m - m') * (1/l')),
 *          LSE = fmaf(m', ln 2, ln l');  empty row: O = 0, LSE = sink
 * D_v != D_qk: q.k over D_qk, V rows and O over D_v; the tiles' pad is that of
 * the larger. FP8 cache: K and V codes decoded exactly (bf16/fp16 hold every
 * FP8 value); the KV head's k_scale folded into the scale once
 * (ac_prefill_kv_scaled, then scale*log2 e and the softcap factors from it);
 * O = round((o * (1/l)) * v_scale) in the epilogue. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ac_index.h"
#include "ac_numfmt.h"
#include "prefill.h"

#define LOG2E_F 1.4426950408889634f
#define LN2_F 0.6931471805599453f

typedef struct row_rule {
    int causal;            /* effective mode after AC_BUG_TOP_LEFT */
    int32_t lq, lk;        /* sequence lengths */
    int32_t key_limit;     /* keys that can be read: lk, or more under AC_BUG_TAIL_UNMASKED */
    ac_bug bug;
    int32_t block_size;    /* paged: for AC_BUG_SKIP_BLOCK_FIRST; 0 contiguous */
    const uint8_t *mbool;  /* this (sequence, mask head)'s [lq, lk] mask or NULL */
    const float *mbias;
    int32_t window_left, window_right; /* (-1, -1) without a window */
    float cap_in, cap_out;   /* softcap (ac_prefill_softcap_factors); cap_out 0: off */
    int has_alibi;
    float slope;             /* this head's ALiBi slope */
} row_rule;

/* Causal end of row i under the (possibly injected) rule; keys [0, end). */
static int32_t row_end(const row_rule *r, int32_t i)
{
    int32_t e;
    if (r->causal == AC_CAUSAL_NONE)
        e = r->key_limit;
    else if (r->bug == AC_BUG_CAUSAL_OFF_BY_ONE)
        e = ac_causal_end(r->causal, i + 1, r->lq, r->lk); /* bound of the next row: one key more */
    else
        e = ac_causal_end(r->causal, i, r->lq, r->lk);
    if (r->causal == AC_CAUSAL_TOP_LEFT && r->bug == AC_BUG_TAIL_UNMASKED) {
        int32_t raw = i + 1; /* TL's bound clamped to the unmasked tail instead of lk */
        e = raw < r->key_limit ? raw : r->key_limit;
    }
    return e;
}

/* Keys [*begin, *end) of row i: the causal end above intersected with the
   window (ac_key_range's window with the causal mode left out, which is the
   same set: docs/PREFILL.md). AC_BUG_WINDOW_TOP_LEFT puts the window's
   diagonal at i (Lq = Lk for the window only); the causal bound is untouched. */
static void row_range(const row_rule *r, int32_t i, int32_t *begin, int32_t *end)
{
    int32_t e = row_end(r, i), wb = 0, we = e;
    if (r->window_left >= 0 || r->window_right >= 0) {
        int32_t lq_win = r->bug == AC_BUG_WINDOW_TOP_LEFT ? r->lk : r->lq;
        ac_key_range(AC_CAUSAL_NONE, r->window_left, r->window_right, i, lq_win, r->lk, &wb, &we);
        if (we < e) e = we;
        if (e < wb) e = wb;
    }
    *begin = wb;
    *end = e;
}

/* Explicit mask of (i, j): 1 = takes part. Keys past lk (only read under
   AC_BUG_TAIL_UNMASKED) have no mask entry and take part. */
static int mask_ok(const row_rule *r, int32_t i, int32_t j)
{
    if (j >= r->lk) return 1;
    if (r->mbool) return r->mbool[(int64_t)i * r->lk + j] != 0;
    if (r->mbias) return r->mbias[(int64_t)i * r->lk + j] != -INFINITY;
    return 1;
}

static float round_to(ac_dtype t, float x) { return ac_half_to_f32(t, ac_f32_to_half(t, x)); }

/* One query row through the key tiles [tile0, tile1) of its CTA. Kf/Vf hold
   the row's visible keys in logical order as fp32 ([key_limit, D] and
   [key_limit, Dv]). */
static void model_row(ac_dtype dt, const float *qf, const float *Kf, const float *Vf, int32_t D, int32_t Dv, int32_t tile0,
                      int32_t tile1, int32_t tile_n, float scale_log2, const row_rule *r, int32_t i, float *acc,
                      float *m_out, float *l_out, int32_t *first_out, float *t /* [tile_n] scratch */)
{
    int32_t begin, end;
    row_range(r, i, &begin, &end);
    int32_t drop = -1; /* AC_BUG_DROP_LAST_KEY: the last allowed key of the row */
    if (r->bug == AC_BUG_DROP_LAST_KEY)
        for (int32_t j = end - 1; j >= begin; j--)
            if (mask_ok(r, i, j)) { drop = j; break; }

    /* AC_BUG_SOFTCAP_AFTER_MASK: every key of the visited tiles is computed,
       masked to -inf, then capped: excluded keys come back as -c. */
    const int cap_last = r->bug == AC_BUG_SOFTCAP_AFTER_MASK && r->cap_out != 0.0f;
    float m = -INFINITY, lg[4] = {0, 0, 0, 0};
    int32_t first = -1;
    for (int32_t d = 0; d < Dv; d++) acc[d] = 0.0f;
    for (int32_t tile = tile0; tile < tile1; tile++) {
        int32_t n0 = tile * tile_n;
        float mx = -INFINITY;
        for (int32_t c = 0; c < tile_n; c++) {
            int32_t j = n0 + c;
            int ok = j >= begin && j < end && mask_ok(r, i, j) && j != drop &&
                     !(r->bug == AC_BUG_SKIP_BLOCK_FIRST && r->block_size > 0 && j % r->block_size == 0);
            if (ok && first < 0) first = j;
            if (!ok && !(cap_last && j < r->lk)) { t[c] = -INFINITY; continue; }
            const float *kr = Kf + (int64_t)j * D;
            float s = 0.0f;
            for (int32_t k0 = 0; k0 < D; k0 += 16) {
                float part = 0.0f;
                for (int32_t d = k0; d < k0 + 16 && d < D; d++) part += qf[d] * kr[d];
                s += part;
            }
            /* The contract's order: scale (or softcap), ALiBi, the bias. */
            float tv = r->cap_out != 0.0f && !cap_last ? tanhf(s * r->cap_in) * r->cap_out : s * scale_log2;
            if (r->has_alibi) {
                float dist = ac_alibi_dist(i, j, r->lq, r->lk);
                if (r->bug == AC_BUG_ALIBI_SIGN) dist = -dist;
                tv = fmaf(r->slope * dist, LOG2E_F, tv);
            }
            if (r->mbias && j < r->lk) tv = fmaf(r->mbias[(int64_t)i * r->lk + j], LOG2E_F, tv);
            if (cap_last) tv = tanhf((ok ? tv : -INFINITY) / r->cap_out) * r->cap_out;
            t[c] = tv;
            if (tv > mx) mx = tv;
        }
        float m_new = m > mx ? m : mx;
        float m_use = m_new == -INFINITY ? 0.0f : m_new;
        float alpha = exp2f(m - m_use);
        /* Column c of the tile lives in lane group (c % 8) / 2 of the kernel's quad. */
        for (int g = 0; g < 4; g++) {
            float rs = 0.0f;
            for (int32_t nb = 0; nb < tile_n / 8; nb++) {
                rs += exp2f(t[nb * 8 + 2 * g] - m_use);
                rs += exp2f(t[nb * 8 + 2 * g + 1] - m_use);
            }
            lg[g] = fmaf(lg[g], alpha, rs);
        }
        for (int32_t c = 0; c < tile_n; c++) t[c] = round_to(dt, exp2f(t[c] - m_use)); /* P in the input dtype */
        for (int32_t d = 0; d < Dv; d++) {
            float o = acc[d] * alpha;
            for (int32_t k0 = 0; k0 < tile_n; k0 += 16) {
                float part = 0.0f;
                for (int32_t c = k0; c < k0 + 16; c++)
                    if (t[c] != 0.0f) part += t[c] * Vf[(int64_t)(n0 + c) * Dv + d]; /* masked keys hold no V */
                o += part;
            }
            acc[d] = o;
        }
        m = m_new;
    }
    *m_out = m;
    *l_out = (lg[0] + lg[1]) + (lg[2] + lg[3]);
    *first_out = first;
}

ac_status ac_prefill_cpu(const ac_prefill_params *p, ac_bug bug, ac_error *err)
{
    ac_status st = ac_prefill_validate(p, 0, err);
    return st ? st : ac_prefill_cpu_any_dims(p, bug, err);
}

ac_status ac_prefill_cpu_any_dims(const ac_prefill_params *p, ac_bug bug, ac_error *err)
{
    ac_status st = ac_prefill_check(p, 0, 0, err);
    if (st) return st;
    const ac_dtype dt = p->dtype;
    const int32_t D = p->head_dim, Dv = AC_PREFILL_DV(p), Hq = p->heads_q, Hkv = p->heads_kv;
    const int32_t dpad = AC_PREFILL_DPAD_OF(p);
    const int32_t tile_m = AC_PREFILL_TILE_M(dpad), tile_n = AC_PREFILL_TILE_N(dpad);
    const float scale = (bug == AC_BUG_SCALE_ONE && !p->scale_given) ? 1.0f : ac_prefill_scale(p);
    const ac_kv_format kvf = p->kv_format;
    /* AC_BUG_DV_AS_DQK: V rows addressed with D_qk as their head dim; reads at
       or past v's element count give 0. */
    const int dv_bug = bug == AC_BUG_DV_AS_DQK && Dv != D;
    const int64_t v_elems = (p->paged ? (int64_t)p->num_blocks * p->block_size : p->total_k) * Hkv * Dv;
    const uint16_t *q = p->q, *k = p->k, *v = p->v;
    uint16_t *out = p->out;

    /* Largest number of keys any sequence can read (tail bug included). */
    int64_t max_keys = 0;
    for (int32_t b = 0; b < p->batch; b++) {
        int64_t lk = p->paged ? p->h_seqlens_k[b] : p->h_cu_seqlens_k[b + 1] - p->h_cu_seqlens_k[b];
        int64_t lim = p->paged ? (int64_t)ac_blocks_used((int32_t)lk, p->block_size) * p->block_size
                               : (int64_t)ac_num_tiles((int32_t)lk, tile_n) * tile_n;
        if (lim < lk) lim = lk;
        if (lim > max_keys) max_keys = lim;
    }
    float *Kf = malloc(sizeof(float) * (size_t)(max_keys * D + 1));
    float *Vf = malloc(sizeof(float) * (size_t)(max_keys * Dv + 1));
    float *qf = malloc(sizeof(float) * (size_t)D);
    float *acc = malloc(sizeof(float) * (size_t)Dv);
    float *t = malloc(sizeof(float) * (size_t)tile_n);
    if (!Kf || !Vf || !qf || !acc || !t) {
        st = ac_fail(err, AC_ERR_NOMEM, "prefill model: out of memory for %lld keys", (long long)max_keys);
        goto done;
    }

    for (int32_t b = 0; b < p->batch; b++) {
        const int32_t q0 = p->h_cu_seqlens_q[b];
        const int32_t lq = p->h_cu_seqlens_q[b + 1] - q0;
        const int32_t k0 = p->paged ? 0 : p->h_cu_seqlens_k[b];
        const int32_t lk = p->paged ? p->h_seqlens_k[b] : p->h_cu_seqlens_k[b + 1] - k0;
        const int32_t *trow = p->paged ? p->h_block_table + (int64_t)b * p->max_blocks_per_seq : NULL;
        row_rule r = {0};
        r.causal = (bug == AC_BUG_TOP_LEFT && p->causal == AC_CAUSAL_BOTTOM_RIGHT) ? AC_CAUSAL_TOP_LEFT : (int)p->causal;
        r.lq = lq;
        r.lk = lk;
        r.bug = bug;
        r.block_size = p->paged ? p->block_size : 0;
        r.key_limit = lk;
        r.window_left = AC_PREFILL_WINDOW_LEFT(p);
        r.window_right = AC_PREFILL_WINDOW_RIGHT(p);
        r.has_alibi = p->h_alibi_slopes != NULL;
        if (bug == AC_BUG_TAIL_UNMASKED) { /* read to the end of the last block / tile */
            if (p->paged) {
                r.key_limit = ac_blocks_used(lk, p->block_size) * p->block_size;
            } else {
                int64_t lim = (int64_t)ac_num_tiles(lk, tile_n) * tile_n;
                if (lim > p->total_k - k0) lim = p->total_k - k0; /* stay inside the tensor */
                r.key_limit = (int32_t)lim;
            }
        }
        for (int32_t h = 0; h < Hq; h++) {
            const int32_t kvh = bug == AC_BUG_GQA_MOD ? h % Hkv : ac_kv_head(h, Hq, Hkv);
            r.slope = r.has_alibi ? p->h_alibi_slopes[h] : 0.0f;
            const float sink = p->h_sinks ? p->h_sinks[h] : -INFINITY;
            /* The KV head's scales: k_scale folded into the logit scale (and
               the softcap factors), v_scale applied to O in the epilogue. */
            const float se = ac_prefill_kv_scaled(scale, AC_PREFILL_K_SCALE(p, kvh));
            const float scale_log2 = se * LOG2E_F;
            const float v_scale = bug == AC_BUG_V_SCALE_DROPPED ? 1.0f : AC_PREFILL_V_SCALE(p, kvh);
            const int use_vs = kvf != AC_KV_AS_DTYPE && v_scale != 1.0f;
            if (p->softcap > 0.0f) ac_prefill_softcap_factors(se, p->softcap, &r.cap_in, &r.cap_out);
            for (int32_t j = 0; j < r.key_limit; j++) {
                int64_t row = p->paged ? ac_pos_slot(trow, j, p->block_size) : (int64_t)k0 + j;
                int64_t off = ac_cache_offset(row, kvh, Hkv, D); /* == ac_thd_offset(row, ...) */
                int64_t voff = ac_cache_offset(row, kvh, Hkv, dv_bug ? D : Dv);
                for (int32_t d = 0; d < D; d++) Kf[(int64_t)j * D + d] = ac_kv_elem_to_f32(dt, kvf, k[off + d]);
                for (int32_t d = 0; d < Dv; d++)
                    Vf[(int64_t)j * Dv + d] = voff + d < v_elems ? ac_kv_elem_to_f32(dt, kvf, v[voff + d]) : 0.0f;
            }
            /* A mask of zero elements may be NULL: form no pointer from it. */
            if (p->mask_kind != AC_MASK_NONE && (int64_t)lq * lk > 0) {
                int64_t moff = p->h_mask_off[b] + (p->mask_per_head ? (int64_t)h * lq * lk : 0);
                r.mbool = p->mask_kind == AC_MASK_BOOL ? p->mask_bool + moff : NULL;
                r.mbias = p->mask_kind == AC_MASK_ADDITIVE ? p->mask_bias + moff : NULL;
            }
            for (int32_t m0 = 0; m0 < lq; m0 += tile_m) {
                /* The CTA walks the key tiles from its first row's begin to its
                   last row's end (both bounds grow with i); tiles wholly outside
                   a window are never visited. */
                int32_t last = (m0 + tile_m < lq ? m0 + tile_m : lq) - 1;
                int32_t kv_begin, kv_end, unused;
                row_range(&r, m0, &kv_begin, &unused);
                row_range(&r, last, &unused, &kv_end);
                int32_t tile0 = kv_begin / tile_n, tile1 = ac_num_tiles(kv_end, tile_n);
                for (int32_t i = m0; i <= last; i++) {
                    int64_t qoff = ac_thd_offset((int64_t)q0 + i, h, Hq, D);
                    for (int32_t d = 0; d < D; d++) qf[d] = ac_half_to_f32(dt, q[qoff + d]);
                    float m, l;
                    int32_t first;
                    model_row(dt, qf, Kf, Vf, D, Dv, tile0, tile1, tile_n, scale_log2, &r, i, acc, &m, &l, &first, t);
                    int empty = m == -INFINITY;
                    float inv, lse, w_first = 0.0f; /* w_first: AC_BUG_SINK_NUMERATOR's weight */
                    if (sink != -INFINITY) {
                        /* The sink joins the denominator only (kernel epilogue):
                           l' = l 2^(m - m') + 2^(ms - m'), m' = max(m, ms). */
                        if (empty) {
                            inv = 0.0f;
                            lse = sink;
                        } else {
                            float ms = sink * LOG2E_F, mn = fmaxf(m, ms);
                            float a = exp2f(m - mn), ws = exp2f(ms - mn);
                            float l2 = fmaf(l, a, ws);
                            inv = a * (1.0f / l2);
                            lse = bug == AC_BUG_LSE_BASE2 ? mn + log2f(l2) : fmaf(mn, LN2_F, logf(l2));
                            if (bug == AC_BUG_SINK_NUMERATOR && first >= 0) w_first = ws * (1.0f / l2);
                        }
                    } else {
                        inv = empty ? 0.0f : 1.0f / l;
                        if (empty) lse = -INFINITY;
                        else if (bug == AC_BUG_LSE_BASE2) lse = m + log2f(l);
                        else lse = fmaf(m, LN2_F, logf(l));
                    }
                    int64_t ooff = ac_thd_offset((int64_t)q0 + i, h, Hq, Dv);
                    for (int32_t d = 0; d < Dv; d++) {
                        float x = empty ? 0.0f : acc[d] * inv;
                        if (w_first != 0.0f) /* the sink as a key whose value row is the first allowed key's */
                            x = fmaf(w_first, Vf[(int64_t)first * Dv + d], acc[d] * inv);
                        out[ooff + d] = ac_f32_to_half(dt, use_vs ? x * v_scale : x);
                    }
                    if (p->lse) p->lse[(int64_t)(q0 + i) * Hq + h] = lse;
                }
            }
        }
    }
done:
    free(Kf);
    free(Vf);
    free(qf);
    free(acc);
    free(t);
    return st;
}
