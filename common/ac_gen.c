/* Deterministic data generation (docs/DATA.md).
 *
 * Every value comes from SplitMix64 integers through exact IEEE operations
 * (integer -> double conversions of <= 53-bit integers, multiplications by
 * powers of two, + - * / of values whose result the code states), then is
 * rounded once to the case dtype by ac_numfmt. No libm: the bytes are the
 * same on every platform and compiler (built with -ffp-contract=off). */
#include "ac_gen.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ac_big.h"
#include "ac_index.h"
#include "ac_numfmt.h"

/* --- values of a distribution ------------------------------------------------ */

typedef enum role { ROLE_Q, ROLE_K, ROLE_V } role;

/* One value of tensor role `who` under dist. Needle and poscode start from
   N(0,1) and are overwritten where they differ. LARGE scales Q and K (the
   logits grow 64x), V stays N(0,1). */
static double draw(ac_rng *r, ac_dist dist, role who)
{
    switch (dist) {
    case AC_DIST_UNIFORM: return 2.0 * ac_rng_unit(r) - 1.0; /* exact: 54-bit span at most */
    case AC_DIST_LARGE: return who == ROLE_V ? ac_rng_normal(r) : 8.0 * ac_rng_normal(r);
    default: return ac_rng_normal(r);
    }
}

static void fill_half(uint16_t *dst, int64_t n, ac_dtype dt, ac_dist dist, role who, uint64_t seed,
                      uint64_t stream)
{
    ac_rng r;
    ac_rng_init(&r, seed, stream);
    for (int64_t i = 0; i < n; i++) dst[i] = ac_f64_to_half(dt, draw(&r, dist, who));
}

/* K or V storage of the case: the half format, or FP8 codes of value / scale
   (the store's quantisation: the distribution describes dequantised values).
   Elements run [.., Hkv, dim], so element i belongs to KV head (i / dim) % Hkv. */
static void fill_kv(const ac_case *c, uint16_t *dst, int64_t n, int32_t dim, role who, uint64_t stream)
{
    if (c->kv_format == AC_KV_AS_DTYPE) {
        fill_half(dst, n, c->dtype, c->dist, who, c->seed, stream);
        return;
    }
    ac_rng r;
    ac_rng_init(&r, c->seed, stream);
    for (int64_t i = 0; i < n; i++) {
        int32_t g = (int32_t)((i / dim) % c->heads_kv);
        float s = who == ROLE_V ? ac_case_v_scale(c, g) : ac_case_k_scale(c, g);
        dst[i] = ac_fp8_quantize(c->kv_format, (float)draw(&r, c->dist, who), s);
    }
}
/* One element of value x in the K/V storage of KV head g. */
static uint16_t kv_elem(const ac_case *c, double x, int32_t g, role who)
{
    if (c->kv_format == AC_KV_AS_DTYPE) return ac_f64_to_half(c->dtype, x);
    return ac_fp8_quantize(c->kv_format, (float)x, who == ROLE_V ? ac_case_v_scale(c, g) : ac_case_k_scale(c, g));
}

double ac_poscode_value(int64_t pos, int32_t kv_head, int32_t d)
{
    if (d < AC_POSCODE_POS_DIGITS) return (double)((pos >> (4 * d)) & 15) * 0.0625;
    if (d < AC_POSCODE_DIMS - 1) return (double)((kv_head >> (4 * (d - AC_POSCODE_POS_DIGITS))) & 15) * 0.0625;
    if (d == AC_POSCODE_DIMS - 1) return 1.0;
    return 0.0;
}

/* --- helpers ----------------------------------------------------------------- */

static void *alloc_n(int64_t n, size_t elem)
{
    if (n > 0 && (uint64_t)n > SIZE_MAX / elem) return NULL; /* the byte count would wrap */
    return malloc((size_t)(n > 0 ? n : 1) * elem);
}


/* Key j of sequence b at KV head kh, in a K/V tensor of head dim `dim`. */
static const uint16_t *key_ptr(const ac_case *c, const ac_tensors *t, const uint16_t *base, int32_t b,
                               int32_t j, int32_t kh, int32_t dim)
{
    if (!c->paged) return base + ac_thd_offset((int64_t)t->cu_seqlens_k[b] + j, kh, c->heads_kv, dim);
    const int32_t *row = c->block_table + (int64_t)b * c->max_blocks_per_seq;
    return base + ac_cache_offset(ac_pos_slot(row, j, c->block_size), kh, c->heads_kv, dim);
}

/* --- K / V and the cache -------------------------------------------------------- */

/* K and V: every element of the tensor (for a paged cache every slot of the
   pool, in slot order) from its stream, so a block shared by several
   sequences has one content. Poscode then writes V at valid positions, the
   first sequence to reach a slot deciding its position (a shared prefix
   block is at the same position in each sharing sequence). Then unread slots
   are poisoned per c->special. */
/* Poison slot s of the pool per c->special: NaN only: NaN with alternating
   sign; Inf only: +Inf, -Inf alternating; both: NaN, +Inf, -Inf in turn.
   Indexed by element, no PRNG. */
/* E4M3FN has no Inf: its "Inf" poison is NaN (ac_kv_elem_inf). */
static uint16_t poison_value(const ac_case *c, int64_t e, uint32_t nan, uint32_t inf)
{
    int k = nan && inf ? (int)(e % 3) : nan ? 0 : 1 + (int)(e & 1);
    int neg = nan && !inf ? (int)(e & 1) : k == 2;
    return k == 0 ? ac_kv_elem_nan(c->dtype, c->kv_format, neg) : ac_kv_elem_inf(c->dtype, c->kv_format, neg);
}
static void poison_slot(const ac_case *c, ac_tensors *t, int64_t s, uint32_t nan, uint32_t inf)
{
    int64_t k_row = (int64_t)c->heads_kv * c->head_dim, v_row = (int64_t)c->heads_kv * ac_case_dv(c);
    for (int64_t e = s * k_row; e < (s + 1) * k_row; e++) t->k[e] = poison_value(c, e, nan, inf);
    for (int64_t e = s * v_row; e < (s + 1) * v_row; e++) t->v[e] = poison_value(c, e, nan, inf);
}

/* Stream of one block of a sparse pool (or one sequence's q): its own, so a
   block's values do not depend on which other blocks the case touches. */
static uint64_t sparse_stream(uint64_t stream, int64_t index) { return stream + ((uint64_t)(index + 1) << 32); }

/* A sparse paged pool: only the touched blocks hold values, each from its
   own stream; the rest stays reserved and reads as zero. */
static void fill_sparse_pool(const ac_case *c, ac_tensors *t, const int32_t *blocks, int64_t n)
{
    int32_t dv = ac_case_dv(c);
    int64_t per_k = (int64_t)c->block_size * c->heads_kv * c->head_dim, per_v = (int64_t)c->block_size * c->heads_kv * dv;
    for (int64_t i = 0; i < n; i++) {
        fill_kv(c, t->k + blocks[i] * per_k, per_k, c->head_dim, ROLE_K, sparse_stream(AC_STREAM_K, blocks[i]));
        fill_kv(c, t->v + blocks[i] * per_v, per_v, dv, ROLE_V, sparse_stream(AC_STREAM_V, blocks[i]));
    }
}

static ac_status gen_kv(const ac_case *c, ac_tensors *t, ac_error *err)
{
    int32_t hkv = c->heads_kv, dim = c->head_dim, dv = ac_case_dv(c);
    int sparse = ac_case_is_sparse(c);
    int64_t slots = c->paged ? (int64_t)c->num_blocks * c->block_size : t->total_k;
    t->kv_elems = slots * hkv * dim;
    t->v_elems = slots * hkv * dv;
    size_t k_bytes = sizeof(uint16_t) * (size_t)(t->kv_elems > 0 ? t->kv_elems : 1);
    size_t v_bytes = sizeof(uint16_t) * (size_t)(t->v_elems > 0 ? t->v_elems : 1);
    t->k = sparse ? ac_big_alloc(k_bytes) : alloc_n(t->kv_elems, sizeof(uint16_t));
    t->v = sparse ? ac_big_alloc(v_bytes) : alloc_n(t->v_elems, sizeof(uint16_t));
    uint8_t *valid = !c->paged ? NULL : sparse ? ac_big_alloc((size_t)(slots > 0 ? slots : 1))
                                               : calloc((size_t)(slots > 0 ? slots : 1), 1);
    if (!t->k || !t->v || (c->paged && !valid)) {
        ac_big_free(valid);
        return ac_fail(err, AC_ERR_NOMEM, "k/v: out of memory for %lld elements", (long long)t->kv_elems);
    }
    /* A sparse pool: the blocks the case touches, for the values and the poison. */
    int32_t *blocks = NULL;
    int64_t nb = 0;
    if (sparse && c->paged) {
        ac_status st = ac_case_touched_blocks(c, &blocks, &nb, err);
        if (st) {
            ac_big_free(valid);
            return st;
        }
        fill_sparse_pool(c, t, blocks, nb);
    } else {
        fill_kv(c, t->k, t->kv_elems, dim, ROLE_K, AC_STREAM_K);
        fill_kv(c, t->v, t->v_elems, dv, ROLE_V, AC_STREAM_V);
    }

    for (int32_t b = 0; b < c->batch; b++) {
        for (int32_t p = 0; p < c->seqlen_k[b]; p++) {
            if (c->paged) {
                int64_t slot = ac_pos_slot(c->block_table + (int64_t)b * c->max_blocks_per_seq, p, c->block_size);
                if (valid[slot]) continue; /* shared: filled by the first sequence */
                valid[slot] = 1;
            }
            if (c->dist != AC_DIST_POSCODE) continue;
            for (int32_t h = 0; h < hkv; h++) {
                uint16_t *row = (uint16_t *)key_ptr(c, t, t->v, b, p, h, dv);
                for (int32_t d = 0; d < dv && d < AC_POSCODE_DIMS; d++)
                    row[d] = kv_elem(c, ac_poscode_value(p, h, d), h, ROLE_V);
            }
        }
    }

    uint32_t nan = c->special & AC_SPECIAL_NAN_SLOTS, inf = c->special & AC_SPECIAL_INF_SLOTS;
    if (c->paged && (nan || inf)) {
        /* Every slot that is not a valid position; in a sparse case those of
           the touched blocks (the others are never read, and stay untouched). */
        int64_t n_slots = blocks ? nb * c->block_size : slots;
        for (int64_t i = 0; i < n_slots; i++) {
            int64_t s = blocks ? (int64_t)blocks[i / c->block_size] * c->block_size + i % c->block_size : i;
            if (!valid[s]) poison_slot(c, t, s, nan, inf);
        }
    }
    free(blocks);
    ac_big_free(valid);
    return AC_OK;
}

/* --- masks ------------------------------------------------------------------------ */

static ac_status gen_mask(const ac_case *c, ac_tensors *t, ac_error *err)
{
    int32_t hm = c->mask_per_head ? c->heads_q : 1;
    t->mask_off = alloc_n(c->batch + 1, sizeof(int64_t));
    if (!t->mask_off) return ac_fail(err, AC_ERR_NOMEM, "mask_off: out of memory");
    t->mask_off[0] = 0;
    for (int32_t b = 0; b < c->batch; b++)
        t->mask_off[b + 1] = t->mask_off[b] + (int64_t)hm * c->seqlen_q[b] * c->seqlen_k[b];
    int64_t n = t->mask_off[c->batch];
    ac_rng r;
    ac_rng_init(&r, c->seed, AC_STREAM_MASK);
    double density = (double)c->mask_density;
    if (c->mask == AC_MASK_BOOL) {
        t->mask_bool = alloc_n(n, 1);
        if (!t->mask_bool) return ac_fail(err, AC_ERR_NOMEM, "mask_bool: out of memory for %lld entries", (long long)n);
        for (int64_t i = 0; i < n; i++) t->mask_bool[i] = ac_rng_unit(&r) < density;
    } else {
        t->mask_bias = alloc_n(n, sizeof(float));
        if (!t->mask_bias) return ac_fail(err, AC_ERR_NOMEM, "mask_bias: out of memory for %lld entries", (long long)n);
        for (int64_t i = 0; i < n; i++)
            t->mask_bias[i] = ac_rng_unit(&r) < density ? (float)ac_rng_normal(&r) : -INFINITY;
    }
    return AC_OK;
}

/* --- needle queries ------------------------------------------------------------------ */

/* Logit gap the needle must reach after rounding q: the other keys then share
   at most (Lk - 1) * e^-20 < 2.1e-9 * Lk of the softmax weight. The target
   before rounding is 24 (+ the bias spread), leaving 4 for rounding q. */
#define NEEDLE_GAP_MIN 20.0
#define NEEDLE_GAP_AIM 24.0
/* Bound on the needle's own logit: large but far inside fp32 (exp of a
   difference is what kernels take; 4096 keeps s*ulp_f32(s) < 5e-4). */
#define NEEDLE_LOGIT_MAX 4096.0

typedef struct needle_ctx {
    const ac_case *c;
    const ac_tensors *t;
    double scale;
    int32_t b, i, h, kh, lq, lk;
    double *keys;       /* [lk, D] keys of (b, kh) as doubles */
    int32_t *allowed;   /* allowed key indices */
    int32_t n_allowed;
    double *qd;         /* [D] candidate q as rounded doubles */
    uint16_t *qh;       /* [D] candidate q bits */
} needle_ctx;

static double bias_of(const needle_ctx *x, int32_t j)
{
    const ac_case *c = x->c;
    if (c->mask != AC_MASK_ADDITIVE) return 0.0;
    int32_t hm = c->mask_per_head ? x->h : 0;
    return (double)x->t->mask_bias[x->t->mask_off[x->b] + ((int64_t)hm * x->lq + x->i) * x->lk + j];
}

static int allowed_by_mask(const needle_ctx *x, int32_t j)
{
    const ac_case *c = x->c;
    if (c->mask == AC_MASK_NONE) return 1;
    int32_t hm = c->mask_per_head ? x->h : 0;
    int64_t at = x->t->mask_off[x->b] + ((int64_t)hm * x->lq + x->i) * x->lk + j;
    return c->mask == AC_MASK_BOOL ? x->t->mask_bool[at] != 0 : x->t->mask_bias[at] != -INFINITY;
}

static double mag(double a) { return a < 0.0 ? -a : a; }

static double dot(const double *a, const double *b, int32_t n)
{
    double s = 0.0;
    for (int32_t d = 0; d < n; d++) s += a[d] * b[d];
    return s;
}

/* Try key js as the needle: choose alpha, round q = alpha * k_js, return the
   logit gap actually reached (q in x->qh / x->qd), or -1 if js cannot win. */
static double try_needle(needle_ctx *x, int32_t js)
{
    int32_t dim = x->c->head_dim;
    const double *ks = x->keys + (int64_t)js * dim;
    double kk = dot(ks, ks, dim), dmin = INFINITY, spread = 0.0, bs = bias_of(x, js), kmax = 0.0;
    for (int32_t a = 0; a < x->n_allowed; a++) {
        int32_t j = x->allowed[a];
        if (j == js) continue;
        double dj = kk - dot(ks, x->keys + (int64_t)j * dim, dim);
        if (dj < dmin) dmin = dj;
        double sp = bias_of(x, j) - bs;
        if (sp > spread) spread = sp;
    }
    if (!(dmin > 0.0) || x->scale == 0.0) return -1.0;
    for (int32_t d = 0; d < dim; d++) kmax = mag(ks[d]) > kmax ? mag(ks[d]) : kmax;
    double alpha = (NEEDLE_GAP_AIM + spread) / (mag(x->scale) * dmin);
    if (alpha * mag(x->scale) * kk > NEEDLE_LOGIT_MAX) return -1.0;
    /* q must stay finite in the dtype (fp16 max is 65504) and the raw fp32 dot
       product q.k, taken before the scale, must stay far from overflow: with a
       tiny scale (2^-126) alpha would otherwise reach 1e38 and beyond. */
    if (alpha * kmax > 16384.0) return -1.0;
    if (x->scale < 0.0) alpha = -alpha;
    for (int32_t d = 0; d < dim; d++) {
        x->qh[d] = ac_f64_to_half(x->c->dtype, alpha * ks[d]);
        x->qd[d] = ac_half_to_f32(x->c->dtype, x->qh[d]);
    }
    double s_star = x->scale * dot(x->qd, ks, dim) + bs, worst = -INFINITY;
    for (int32_t a = 0; a < x->n_allowed; a++) {
        int32_t j = x->allowed[a];
        if (j == js) continue;
        double s = x->scale * dot(x->qd, x->keys + (int64_t)j * dim, dim) + bias_of(x, j);
        if (s > worst) worst = s;
    }
    return s_star - worst;
}

/* Candidate keys at the edges a kernel gets wrong: granule (block or tile)
   boundaries and +-1, split boundaries, first and last key; the caller adds
   the causal diagonal. Only allowed keys are kept. */
static int32_t edge_candidates(const needle_ctx *x, int32_t *out)
{
    const ac_case *c = x->c;
    int32_t n = 0, lk = x->lk;
    int32_t g = c->paged ? c->block_size : 64;
#define PUSH(j) do { int32_t j_ = (j); if (j_ >= 0 && j_ < lk && allowed_by_mask(x, j_) && \
                      j_ < ac_causal_end((int)c->causal, x->i, x->lq, lk)) out[n++] = j_; } while (0)
    PUSH(0);
    PUSH(lk - 1);
    for (int64_t m = g; m < lk; m += g) {
        PUSH((int32_t)m - 1);
        PUSH((int32_t)m);
        PUSH((int32_t)m + 1);
    }
    int32_t split_counts[3] = {2, 3, 5};
    int ns = 3;
    if (ac_op_traits_of(c->op)->splits == AC_SPLITS_AUTO && c->num_splits > 0) {
        split_counts[0] = c->num_splits;
        ns = 1;
    }
    for (int k = 0; k < ns; k++)
        for (int32_t s = 1; s < split_counts[k] && s < 64; s++) {
            int32_t beg, end;
            ac_split_range(lk, split_counts[k], s, g, &beg, &end);
            if (beg >= lk) break;
            PUSH(beg - 1);
            PUSH(beg);
        }
#undef PUSH
    return n;
}

/* Overwrite q of every (row, head) with a needle: q = alpha * k_j* for one
   allowed key j*, alpha chosen so that j*'s logit beats every other allowed
   key's by NEEDLE_GAP_MIN after rounding. Rows with fewer than two allowed
   keys, scale 0, or no key that can win keep their N(0,1) q. */
static ac_status gen_needles(const ac_case *c, ac_tensors *t, ac_error *err)
{
    int32_t dim = c->head_dim, maxk = 0;
    for (int32_t b = 0; b < c->batch; b++) maxk = c->seqlen_k[b] > maxk ? c->seqlen_k[b] : maxk;
    int32_t max_cand = 3 + 3 * (maxk / (c->paged ? c->block_size : 64) + 1) + 2 * (64 * 3);
    needle_ctx x = {0};
    x.c = c;
    x.t = t;
    x.scale = (double)ac_case_scale(c);
    x.keys = alloc_n((int64_t)maxk * dim, sizeof(double));
    x.allowed = alloc_n(maxk, sizeof(int32_t));
    x.qd = alloc_n(dim, sizeof(double));
    x.qh = alloc_n(dim, sizeof(uint16_t));
    int32_t *cand = alloc_n(max_cand, sizeof(int32_t));
    uint16_t *best = alloc_n(dim, sizeof(uint16_t));
    ac_status st = AC_OK;
    if (!x.keys || !x.allowed || !x.qd || !x.qh || !cand || !best) {
        st = ac_fail(err, AC_ERR_NOMEM, "needle: out of memory for %d keys", maxk);
        goto done;
    }
    ac_rng r;
    ac_rng_init(&r, c->seed, AC_STREAM_NEEDLE);
    int32_t group = c->heads_q / c->heads_kv;
    for (int32_t b = 0; b < c->batch; b++) {
        x.b = b;
        x.lq = c->seqlen_q[b];
        x.lk = c->seqlen_k[b];
        for (int32_t kh = 0; kh < c->heads_kv; kh++) {
            x.kh = kh;
            for (int32_t j = 0; j < x.lk; j++) {
                const uint16_t *kp = key_ptr(c, t, t->k, b, j, kh, dim);
                double ks = (double)ac_case_k_scale(c, kh); /* the dequantised key (1 without FP8) */
                for (int32_t d = 0; d < dim; d++)
                    x.keys[(int64_t)j * dim + d] = ac_kv_elem_to_double(c->dtype, c->kv_format, kp[d]) * ks;
            }
            for (int32_t h = kh * group; h < (kh + 1) * group; h++) {
                x.h = h;
                for (int32_t i = 0; i < x.lq; i++) {
                    x.i = i;
                    int32_t end = ac_causal_end((int)c->causal, i, x.lq, x.lk);
                    x.n_allowed = 0;
                    for (int32_t j = 0; j < end; j++)
                        if (allowed_by_mask(&x, j)) x.allowed[x.n_allowed++] = j;
                    if (x.n_allowed < 2) continue;
                    int32_t nc = edge_candidates(&x, cand);
                    /* Attempt 0: the diagonal (last allowed key) half the time;
                       then edge keys; the last attempt any allowed key. */
                    double best_gap = -1.0;
                    for (int attempt = 0; attempt < 4; attempt++) {
                        int32_t js;
                        uint64_t pick = ac_rng_next(&r);
                        if (attempt == 0 && (pick & 1))
                            js = x.allowed[x.n_allowed - 1];
                        else if (attempt < 3 && nc > 0)
                            js = cand[ac_rng_below(&r, (uint64_t)nc)];
                        else
                            js = x.allowed[ac_rng_below(&r, (uint64_t)x.n_allowed)];
                        double gap = try_needle(&x, js);
                        if (gap > best_gap) {
                            best_gap = gap;
                            memcpy(best, x.qh, sizeof(uint16_t) * (size_t)dim);
                        }
                        if (gap >= NEEDLE_GAP_MIN) break;
                    }
                    if (best_gap > 0.0) {
                        int64_t tok = (int64_t)t->cu_seqlens_q[b] + i;
                        memcpy(t->q + ac_thd_offset(tok, h, c->heads_q, dim), best, sizeof(uint16_t) * (size_t)dim);
                    }
                }
            }
        }
    }
done:
    free(x.keys);
    free(x.allowed);
    free(x.qd);
    free(x.qh);
    free(cand);
    free(best);
    return st;
}

/* --- combine partials -------------------------------------------------------------- */

/* LSE_s per (row, head): one row in 16 has every split empty; otherwise each
   split is empty (-inf) with probability 1/4, or drawn from 0, 100 + N,
   -100 + N, -1e4 + N, 4N: spreads far beyond fp32 exp's range in one row. */
static ac_status gen_combine(const ac_case *c, ac_tensors *t, ac_error *err)
{
    int64_t rows = t->total_q * c->heads_q, s_n = c->num_splits;
    int64_t n_o = rows * s_n * c->head_dim;
    t->o_part = alloc_n(n_o, sizeof(float));
    t->lse_part = alloc_n(rows * s_n, sizeof(float));
    if (!t->o_part || !t->lse_part)
        return ac_fail(err, AC_ERR_NOMEM, "o_part: out of memory for %lld elements", (long long)n_o);
    ac_rng ro, rl;
    ac_rng_init(&ro, c->seed, AC_STREAM_O_PART);
    ac_rng_init(&rl, c->seed, AC_STREAM_LSE_PART);
    for (int64_t i = 0; i < n_o; i++) t->o_part[i] = (float)draw(&ro, c->dist, ROLE_V);
    for (int64_t row = 0; row < rows; row++) {
        int all_empty = ac_rng_below(&rl, 16) == 0;
        for (int64_t s = 0; s < s_n; s++) {
            double lse;
            uint64_t kind = all_empty ? 0 : ac_rng_below(&rl, 8);
            switch (kind) {
            case 0: case 1: lse = -INFINITY; break;
            case 2: lse = 0.0; break;
            case 3: lse = 100.0 + ac_rng_normal(&rl); break;
            case 4: lse = -100.0 + ac_rng_normal(&rl); break;
            case 5: lse = -1e4 + ac_rng_normal(&rl); break;
            default: lse = 4.0 * ac_rng_normal(&rl); break;
            }
            t->lse_part[row * s_n + s] = (float)lse;
            if (lse == -INFINITY && (c->special & AC_SPECIAL_NAN_PARTIALS)) {
                float *o = t->o_part + (row * s_n + s) * c->head_dim;
                for (int32_t d = 0; d < c->head_dim; d++) o[d] = NAN;
            }
        }
    }
    return AC_OK;
}

/* --- entry point --------------------------------------------------------------------- */

ac_status ac_gen(const ac_case *c, ac_tensors *t, ac_error *err)
{
    if (!c || !t) return ac_fail(err, AC_ERR_NULL, "ac_gen: %s is NULL", c ? "tensors" : "case");
    memset(t, 0, sizeof *t);
    ac_status st = ac_case_validate(c, err);
    if (st) return st;
    /* Sizes past 64 bits cannot be allocated, and every size below is
       computed in int64: refuse them here rather than wrap (an INT32_MAX
       pool once reported "out of memory for -1099511627520 elements"). */
    ac_case_cost cost;
    ac_case_cost_of(c, &cost);
    if (cost.overflow || cost.bytes < 0)
        return ac_fail(err, AC_ERR_BUDGET, "the case's sizes overflow 64 bits (pool %d x %d, %d heads, D = %d)",
                       c->num_blocks, c->block_size, c->heads_kv, c->head_dim);

    t->cu_seqlens_q = alloc_n(c->batch + 1, sizeof(int32_t));
    t->cu_seqlens_k = alloc_n(c->batch + 1, sizeof(int32_t));
    if (!t->cu_seqlens_q || !t->cu_seqlens_k) {
        st = ac_fail(err, AC_ERR_NOMEM, "cu_seqlens: out of memory for batch %d", c->batch);
        goto fail;
    }
    t->cu_seqlens_q[0] = t->cu_seqlens_k[0] = 0;
    for (int32_t b = 0; b < c->batch; b++) {
        t->cu_seqlens_q[b + 1] = t->cu_seqlens_q[b] + c->seqlen_q[b];
        t->cu_seqlens_k[b + 1] = t->cu_seqlens_k[b] + c->seqlen_k[b];
    }
    t->total_q = t->cu_seqlens_q[c->batch];
    t->total_k = t->cu_seqlens_k[c->batch];

    if (ac_op_traits_of(c->op)->kv == AC_KV_NONE) { /* split partials instead of Q/K/V */
        st = gen_combine(c, t, err);
        if (st) goto fail;
        return AC_OK;
    }
    st = gen_kv(c, t, err);
    if (st) goto fail;
    if (ac_op_traits_of(c->op)->slots) { /* new K/V rows for the slots */
        /* The new rows come in the case dtype (a store with an FP8 cache quantises them). */
        int64_t n = (int64_t)c->num_tokens * c->heads_kv * c->head_dim;
        int64_t nv = (int64_t)c->num_tokens * c->heads_kv * ac_case_dv(c);
        t->k_new = alloc_n(n, sizeof(uint16_t));
        t->v_new = alloc_n(nv, sizeof(uint16_t));
        if (!t->k_new || !t->v_new) {
            st = ac_fail(err, AC_ERR_NOMEM, "k_new/v_new: out of memory for %lld elements", (long long)(n + nv));
            goto fail;
        }
        fill_half(t->k_new, n, c->dtype, c->dist, ROLE_K, c->seed, AC_STREAM_K_NEW);
        fill_half(t->v_new, nv, c->dtype, c->dist, ROLE_V, c->seed, AC_STREAM_V_NEW);
        return AC_OK;
    }
    if (c->mask != AC_MASK_NONE) {
        st = gen_mask(c, t, err);
        if (st) goto fail;
    }
    int64_t nq = t->total_q * c->heads_q * c->head_dim;
    t->q = ac_case_is_sparse(c) ? ac_big_alloc(sizeof(uint16_t) * (size_t)(nq > 0 ? nq : 1))
                                : alloc_n(nq, sizeof(uint16_t));
    if (!t->q) {
        st = ac_fail(err, AC_ERR_NOMEM, "q: out of memory for %lld elements", (long long)nq);
        goto fail;
    }
    if (ac_case_is_sparse(c)) {
        /* Queries of sequences with keys, each sequence from its own stream;
           a sequence with no key has only empty rows and its q is never read. */
        int64_t row = (int64_t)c->heads_q * c->head_dim;
        for (int32_t b = 0; b < c->batch; b++)
            if (c->seqlen_k[b] > 0)
                fill_half(t->q + t->cu_seqlens_q[b] * row, c->seqlen_q[b] * row, c->dtype, c->dist, ROLE_Q, c->seed,
                          sparse_stream(AC_STREAM_Q, b));
    } else {
        fill_half(t->q, nq, c->dtype, c->dist, ROLE_Q, c->seed, AC_STREAM_Q);
    }
    if (c->dist == AC_DIST_NEEDLE) {
        st = gen_needles(c, t, err);
        if (st) goto fail;
    }
    return AC_OK;
fail:
    ac_tensors_free(t);
    return st;
}
