/* The oracle against answers known in closed form (SEMANTICS.md), in both
 * modes: uniform attention at scale 0, a single key, equal logits, a dominant
 * key, empty rows, causal bounds, GQA, paging, NaN in unread slots, combine
 * identities, base-2 LSE and the store; and the features: a window leaving
 * one key, softcap on two keys, signed ALiBi (exact at large distances), a
 * sink on n equal logits, an empty row with a sink. */
#include <criterion/criterion.h>
#include <math.h>
#include <mpfr.h>
#include <string.h>

#include "../oracle/tools/oracle_testgen.h"
#include "oracle.h"
#include "oracle_internal.h"

static const ac_oracle_mode modes[2] = {AC_ORACLE_FAST, AC_ORACLE_MPFR};

static void run_ok(const ac_case *c, const ac_tensors *t, ac_oracle_mode mode, int base2, ac_oracle_result *res)
{
    ac_oracle_opts o = {.mode = mode, .lse_base2 = base2, .threads = 2};
    ac_error err = {0};
    ac_status st = ac_oracle_run(c, t, &o, res, &err);
    cr_assert_eq(st, AC_OK, "oracle failed: %s %s", ac_status_name(st), err.msg);
}

/* One sequence, contiguous, Hq = Hkv = 1. */
static void simple_case(ac_case *c, ac_dtype dt, int32_t lq, int32_t lk, int32_t D)
{
    ac_case_init(c);
    c->dtype = dt;
    cr_assert_eq(ac_case_set_batch(c, 1, NULL), AC_OK);
    c->seqlen_q[0] = lq;
    c->seqlen_k[0] = lk;
    c->head_dim = D;
}

static double hv(const ac_case *c, uint16_t h) { return ac_half_bits_to_double(c->dtype, h); }
static int ac_half_isnan_local(ac_dtype dt, uint16_t h) { return isnan(ac_half_bits_to_double(dt, h)); }

Test(oracle_analytic, scale_zero_gives_mean_of_allowed_v)
{
    for (int dt = 0; dt < 2; dt++)
        for (int m = 0; m < 2; m++) {
            ac_case c;
            ac_tensors t;
            simple_case(&c, (ac_dtype)dt, 3, 13, 8);
            c.scale_given = 1;
            c.scale = 0.0f;
            c.causal = AC_CAUSAL_BOTTOM_RIGHT;
            cr_assert_eq(tg_fill(&c, &t, 7 + dt, (tg_range){-3, 2}, 0), 0);
            ac_oracle_result res;
            run_ok(&c, &t, modes[m], 0, &res);
            mpfr_t sum;
            mpfr_init2(sum, 200);
            for (int32_t i = 0; i < 3; i++) {
                int32_t n = ac_causal_end(AC_CAUSAL_BOTTOM_RIGHT, i, 3, 13);
                cr_assert_eq(res.n_allowed[i], n);
                cr_assert_float_eq(res.lse[i], log((double)n), 1e-15, "lse = ln n");
                for (int32_t d = 0; d < 8; d++) {
                    mpfr_set_zero(sum, 1);
                    for (int32_t j = 0; j < n; j++) mpfr_add_d(sum, sum, hv(&c, t.v[j * 8 + d]), MPFR_RNDN);
                    mpfr_div_ui(sum, sum, (unsigned long)n, MPFR_RNDN);
                    float want = mpfr_get_flt(sum, MPFR_RNDN);
                    cr_assert(res.o_f32[i * 8 + d] == want, "row %d d %d: %a vs mean %a", i, d,
                              (double)res.o_f32[i * 8 + d], (double)want);
                }
            }
            mpfr_clear(sum);
            ac_oracle_result_free(&res);
            ac_tensors_free(&t);
            ac_case_free(&c);
        }
}

Test(oracle_analytic, single_key_gives_its_v_and_lse_is_the_logit)
{
    for (int dt = 0; dt < 2; dt++)
        for (int m = 0; m < 2; m++) {
            ac_case c;
            ac_tensors t;
            simple_case(&c, (ac_dtype)dt, 1, 1, 16);
            cr_assert_eq(tg_fill(&c, &t, 11, (tg_range){-2, 2}, 0), 0);
            ac_oracle_result res;
            run_ok(&c, &t, modes[m], 0, &res);
            mpfr_t s;
            mpfr_init2(s, 200);
            mpfr_set_zero(s, 1);
            for (int d = 0; d < 16; d++) {
                cr_assert(res.o_f32[d] == (float)hv(&c, t.v[d]), "O = v exactly");
                cr_assert(res.o_half[d] == t.v[d] || (hv(&c, t.v[d]) == 0 && hv(&c, res.o_half[d]) == 0));
                mpfr_add_d(s, s, hv(&c, t.q[d]) * hv(&c, t.k[d]), MPFR_RNDN);
            }
            mpfr_mul_d(s, s, (double)ac_case_scale(&c), MPFR_RNDN);
            cr_assert(res.lse[0] == mpfr_get_d(s, MPFR_RNDN), "lse %a vs s %a", res.lse[0], mpfr_get_d(s, MPFR_RNDN));
            mpfr_clear(s);
            ac_oracle_result_free(&res);
            ac_tensors_free(&t);
            ac_case_free(&c);
        }
}

Test(oracle_analytic, equal_logits_give_ln_n_plus_s)
{
    for (int m = 0; m < 2; m++) {
        ac_case c;
        ac_tensors t;
        simple_case(&c, AC_BF16, 1, 29, 8);
        cr_assert_eq(tg_fill(&c, &t, 5, (tg_range){-2, 2}, 0), 0);
        for (int32_t j = 1; j < 29; j++) memcpy(t.k + j * 8, t.k, 8 * sizeof(uint16_t)); /* same key everywhere */
        ac_oracle_result res;
        run_ok(&c, &t, modes[m], 0, &res);
        mpfr_t s;
        mpfr_init2(s, 200);
        mpfr_set_zero(s, 1);
        for (int d = 0; d < 8; d++) mpfr_add_d(s, s, hv(&c, t.q[d]) * hv(&c, t.k[d]), MPFR_RNDN);
        mpfr_mul_d(s, s, (double)ac_case_scale(&c), MPFR_RNDN);
        double want = mpfr_get_d(s, MPFR_RNDN) + log(29.0);
        cr_assert(fabs(res.lse[0] - want) <= 4e-16 * fabs(want) + 1e-300, "lse %a vs %a", res.lse[0], want);
        mpfr_clear(s);
        ac_oracle_result_free(&res);
        ac_tensors_free(&t);
        ac_case_free(&c);
    }
}

Test(oracle_analytic, dominant_key_gives_its_v)
{
    for (int m = 0; m < 2; m++) {
        ac_case c;
        ac_tensors t;
        simple_case(&c, AC_FP16, 1, 17, 4);
        c.scale_given = 1;
        c.scale = 1.0f;
        cr_assert_eq(tg_fill(&c, &t, 3, (tg_range){-2, 2}, 0), 0);
        /* q = (64, 0, 0, 0); key 9 has k0 = 64 (logit 4096), the others k0 = 0 (logit 0):
           their weight e^-4096 is far below half an fp32 ulp. */
        for (int d = 0; d < 4; d++) t.q[d] = d == 0 ? 0x5400u : 0; /* 64 in fp16 */
        for (int32_t j = 0; j < 17; j++) t.k[j * 4] = j == 9 ? 0x5400u : 0;
        ac_oracle_result res;
        run_ok(&c, &t, modes[m], 0, &res);
        for (int d = 0; d < 4; d++) cr_assert(res.o_f32[d] == (float)hv(&c, t.v[9 * 4 + d]));
        cr_assert(res.lse[0] == 4096.0, "lse %a", res.lse[0]);
        ac_oracle_result_free(&res);
        ac_tensors_free(&t);
        ac_case_free(&c);
    }
}

Test(oracle_analytic, empty_rows_give_zero_and_minus_inf)
{
    for (int m = 0; m < 2; m++)
        for (int kind = 0; kind < 2; kind++) {
            ac_case c;
            ac_tensors t;
            simple_case(&c, AC_BF16, 4, 6, 8);
            c.mask = kind ? AC_MASK_ADDITIVE : AC_MASK_BOOL;
            c.mask_density = 0.0f; /* every entry false / -inf */
            cr_assert_eq(tg_fill(&c, &t, 9, (tg_range){-2, 2}, 0), 0);
            ac_oracle_result res;
            run_ok(&c, &t, modes[m], 0, &res);
            for (int i = 0; i < 4; i++) {
                cr_assert_eq(res.n_allowed[i], 0);
                cr_assert(res.lse[i] == -INFINITY);
                for (int d = 0; d < 8; d++) cr_assert(res.o_f32[i * 8 + d] == 0.0f && res.o_half[i * 8 + d] == 0);
            }
            ac_oracle_result_free(&res);
            ac_tensors_free(&t);
            ac_case_free(&c);
        }
}

Test(oracle_analytic, causal_bounds_and_fully_masked_leading_rows)
{
    for (int cm = 0; cm < 3; cm++) {
        ac_case c;
        ac_tensors t;
        simple_case(&c, AC_FP16, 9, 5, 3); /* Lq > Lk: BR masks the leading 4 rows */
        c.causal = (ac_causal)cm;
        cr_assert_eq(tg_fill(&c, &t, 21, (tg_range){-2, 2}, 0), 0);
        ac_oracle_result res;
        run_ok(&c, &t, AC_ORACLE_FAST, 0, &res);
        for (int i = 0; i < 9; i++) {
            int want = cm == 0 ? 5 : cm == 1 ? (i + 1 < 5 ? i + 1 : 5) : (i - 4 < 0 ? 0 : i - 4 + 1);
            if (want > 5) want = 5;
            cr_assert_eq(res.n_allowed[i], want, "causal %d row %d", cm, i);
            if (want == 0) cr_assert(res.lse[i] == -INFINITY && res.o_f32[i * 3] == 0.0f);
            else cr_assert(isfinite(res.lse[i]));
        }
        ac_oracle_result_free(&res);
        ac_tensors_free(&t);
        ac_case_free(&c);
    }
}

/* Result of the case restricted to query head h against KV head kvh, as a
   one-head case built from the same data. */
static void one_head(const ac_case *c, const ac_tensors *t, int32_t h, int32_t kvh, ac_oracle_result *res)
{
    ac_case c1;
    ac_tensors t1;
    cr_assert_eq(ac_case_copy(&c1, c, NULL), AC_OK);
    c1.heads_q = c1.heads_kv = 1;
    memset(&t1, 0, sizeof t1);
    int32_t D = c->head_dim;
    int64_t tq = ac_case_total_q(c), tk = ac_case_total_k(c);
    t1.q = malloc(sizeof(uint16_t) * (size_t)(tq * D));
    t1.k = malloc(sizeof(uint16_t) * (size_t)(tk * D));
    t1.v = malloc(sizeof(uint16_t) * (size_t)(tk * D));
    t1.kv_elems = tk * D;
    for (int64_t i = 0; i < tq; i++) memcpy(t1.q + i * D, t->q + ac_thd_offset(i, h, c->heads_q, D), 2 * (size_t)D);
    for (int64_t p = 0; p < tk; p++) {
        memcpy(t1.k + p * D, t->k + ac_thd_offset(p, kvh, c->heads_kv, D), 2 * (size_t)D);
        memcpy(t1.v + p * D, t->v + ac_thd_offset(p, kvh, c->heads_kv, D), 2 * (size_t)D);
    }
    run_ok(&c1, &t1, AC_ORACLE_FAST, 0, res);
    ac_tensors_free(&t1);
    ac_case_free(&c1);
}

Test(oracle_analytic, gqa_reads_kv_head_h_over_group)
{
    ac_case c;
    ac_tensors t;
    simple_case(&c, AC_BF16, 5, 7, 8);
    c.heads_q = 4;
    c.heads_kv = 2;
    c.causal = AC_CAUSAL_TOP_LEFT;
    cr_assert_eq(tg_fill(&c, &t, 33, (tg_range){-2, 2}, 0), 0); /* KV heads hold distinct data */
    ac_oracle_result res;
    run_ok(&c, &t, AC_ORACLE_FAST, 0, &res);
    for (int32_t h = 0; h < 4; h++) {
        ac_oracle_result right, wrong;
        one_head(&c, &t, h, h / 2, &right);
        one_head(&c, &t, h, h % 2, &wrong);
        int differs = 0;
        for (int32_t i = 0; i < 5; i++) {
            cr_assert(res.lse[i * 4 + h] == right.lse[i] || (isinf(res.lse[i * 4 + h]) && isinf(right.lse[i])));
            cr_assert(memcmp(res.o_f32 + (i * 4 + h) * 8, right.o_f32 + i * 8, 8 * sizeof(float)) == 0,
                      "head %d row %d uses the wrong KV head", h, i);
            differs |= memcmp(right.o_f32 + i * 8, wrong.o_f32 + i * 8, 8 * sizeof(float)) != 0;
        }
        if (h / 2 != h % 2) cr_assert(differs, "the data cannot tell h/2 from h%%2 for head %d", h);
        ac_oracle_result_free(&right);
        ac_oracle_result_free(&wrong);
    }
    ac_oracle_result_free(&res);
    ac_tensors_free(&t);
    ac_case_free(&c);
}

static void assert_same(const ac_oracle_result *a, const ac_oracle_result *b, const char *what)
{
    cr_assert_eq(a->rows, b->rows);
    int64_t n = a->rows * a->head_dim;
    cr_assert(memcmp(a->o_f32, b->o_f32, sizeof(float) * (size_t)n) == 0, "%s: o_f32 differs", what);
    cr_assert(memcmp(a->o_half, b->o_half, sizeof(uint16_t) * (size_t)n) == 0, "%s: o_half differs", what);
    cr_assert(memcmp(a->lse, b->lse, sizeof(double) * (size_t)a->rows) == 0, "%s: lse differs", what);
    cr_assert(memcmp(a->n_allowed, b->n_allowed, sizeof(int32_t) * (size_t)a->rows) == 0, "%s: n differs", what);
}

Test(oracle_analytic, paged_equals_contiguous_and_unread_nan_is_harmless)
{
    for (uint64_t seed = 1; seed <= 12; seed++) {
        ac_case c;
        ac_tensors t;
        cr_assert_eq(tg_random_case(AC_OP_PREFILL, seed * 977, &c, &t), 0);
        if (!c.paged) cr_assert_eq(tg_page(&c, 1 + (int32_t)(seed % 5), 2, seed, 1), 0);
        ac_tensors_free(&t);
        cr_assert_eq(tg_fill(&c, &t, seed, (tg_range){-4, 2}, 1), 0); /* NaN in every unread slot */
        /* Contiguous copy of the same logical data. */
        ac_case cc;
        ac_tensors tc;
        cr_assert_eq(ac_case_copy(&cc, &c, NULL), AC_OK);
        cc.paged = 0;
        tc = t;
        int64_t row = (int64_t)c.heads_kv * c.head_dim, tk = ac_case_total_k(&c);
        tc.k = malloc(sizeof(uint16_t) * (size_t)(tk * row + 1));
        tc.v = malloc(sizeof(uint16_t) * (size_t)(tk * row + 1));
        tc.kv_elems = tk * row;
        for (int32_t b = 0, k0 = 0; b < c.batch; k0 += c.seqlen_k[b], b++)
            for (int32_t p = 0; p < c.seqlen_k[b]; p++) {
                int64_t s = ac_pos_slot(c.block_table + (int64_t)b * c.max_blocks_per_seq, p, c.block_size);
                memcpy(tc.k + (k0 + p) * row, t.k + s * row, 2 * (size_t)row);
                memcpy(tc.v + (k0 + p) * row, t.v + s * row, 2 * (size_t)row);
            }
        for (int m = 0; m < 2; m++) {
            ac_oracle_result rp, rc;
            run_ok(&c, &t, modes[m], 0, &rp);
            run_ok(&cc, &tc, modes[m], 0, &rc);
            assert_same(&rp, &rc, "paged vs contiguous");
            ac_oracle_result_free(&rc);
            /* Finite garbage instead of NaN in the unread slots: same bits. */
            uint16_t *k2 = malloc(2 * (size_t)t.kv_elems), *v2 = malloc(2 * (size_t)t.kv_elems);
            for (int64_t i = 0; i < t.kv_elems; i++) {
                k2[i] = ac_half_isnan_local(c.dtype, t.k[i]) ? 0x3f80u : t.k[i];
                v2[i] = ac_half_isnan_local(c.dtype, t.v[i]) ? 0x3f80u : t.v[i];
            }
            ac_tensors t2 = t;
            t2.k = k2;
            t2.v = v2;
            run_ok(&c, &t2, modes[m], 0, &rc);
            assert_same(&rp, &rc, "NaN vs finite in unread slots");
            free(k2);
            free(v2);
            ac_oracle_result_free(&rp);
            ac_oracle_result_free(&rc);
        }
        free(tc.k);
        free(tc.v);
        ac_case_free(&cc);
        ac_tensors_free(&t);
        ac_case_free(&c);
    }
}

Test(oracle_analytic, nan_in_a_read_value_is_a_numeric_error)
{
    ac_case c;
    ac_tensors t;
    simple_case(&c, AC_BF16, 2, 4, 8);
    cr_assert_eq(tg_fill(&c, &t, 1, (tg_range){-2, 2}, 0), 0);
    for (int m = 0; m < 2; m++)
        for (int which = 0; which < 3; which++) {
            uint16_t *p = which == 0 ? &t.q[8 + 3] : which == 1 ? &t.k[2 * 8 + 5] : &t.v[3 * 8];
            uint16_t keep = *p;
            *p = 0x7fc1u;
            ac_oracle_opts o = {.mode = modes[m]};
            ac_oracle_result res;
            ac_error err = {0};
            cr_assert_eq(ac_oracle_run(&c, &t, &o, &res, &err), AC_ERR_NUMERIC, "case %d: %s", which, err.msg);
            cr_assert(strstr(err.msg, which == 0 ? "q[token 1, head 0, dim 3]" : "position"), "%s", err.msg);
            *p = keep;
        }
    ac_tensors_free(&t);
    ac_case_free(&c);
}

Test(oracle_analytic, combine_of_one_split_is_the_identity)
{
    for (int m = 0; m < 2; m++) {
        ac_case c;
        ac_tensors t;
        simple_case(&c, AC_BF16, 6, 0, 16);
        c.op = AC_OP_COMBINE;
        c.heads_q = c.heads_kv = 2;
        c.num_splits = 1;
        cr_assert_eq(tg_fill(&c, &t, 4, (tg_range){-8, 3}, 1), 0);
        ac_oracle_result res;
        run_ok(&c, &t, modes[m], 0, &res);
        for (int64_t r = 0; r < 12; r++) {
            if (t.lse_part[r] == -INFINITY) {
                cr_assert(res.lse[r] == -INFINITY && res.n_allowed[r] == 0);
                for (int d = 0; d < 16; d++) cr_assert(res.o_f32[r * 16 + d] == 0.0f);
                continue;
            }
            cr_assert(res.lse[r] == (double)t.lse_part[r]);
            cr_assert(memcmp(res.o_f32 + r * 16, t.o_part + r * 16, 16 * sizeof(float)) == 0, "row %lld",
                      (long long)r);
        }
        ac_oracle_result_free(&res);
        ac_tensors_free(&t);
        ac_case_free(&c);
    }
}

/* FlashInfer's merge_state convention: split LSEs in base 2, LSE out in base 2.
   Two splits with LSE_s = l and l + 1 (base 2) weigh 1/3 and 2/3 and merge to
   LSE = l + log2(3); the base-2 identity holds only if the inputs are read
   as base 2 (an outside cross-check found them read as natural logs). */
Test(oracle_analytic, combine_base2_reads_and_returns_base2)
{
    for (int m = 0; m < 2; m++) {
        ac_case c;
        ac_tensors t;
        simple_case(&c, AC_BF16, 2, 0, 4);
        c.op = AC_OP_COMBINE;
        c.num_splits = 2;
        cr_assert_eq(tg_fill(&c, &t, 4, (tg_range){-8, 3}, 1), 0);
        for (int r = 0; r < 2; r++) {
            float l = r ? -3.0f : 5.5f;
            t.lse_part[r * 2] = l;
            t.lse_part[r * 2 + 1] = l + 1.0f;
            for (int d = 0; d < 4; d++) {
                t.o_part[(r * 2) * 4 + d] = 3.0f; /* 1/3 * 3 + 2/3 * 6 = 5 */
                t.o_part[(r * 2 + 1) * 4 + d] = 6.0f;
            }
        }
        ac_oracle_result res;
        run_ok(&c, &t, modes[m], 1, &res);
        for (int r = 0; r < 2; r++) {
            double want = (r ? -3.0 : 5.5) + log2(3.0);
            cr_assert(fabs(res.lse[r] - want) <= 4e-16 * fabs(want), "row %d: lse %a, want %a", r, res.lse[r], want);
            for (int d = 0; d < 4; d++) cr_assert(res.o_f32[r * 4 + d] == 5.0f, "row %d: o %a", r, res.o_f32[r * 4 + d]);
        }
        ac_oracle_result_free(&res);
        ac_tensors_free(&t);
        ac_case_free(&c);
    }
}

Test(oracle_analytic, combine_of_empty_splits_gives_zero_and_minus_inf)
{
    for (int m = 0; m < 2; m++) {
        ac_case c;
        ac_tensors t;
        simple_case(&c, AC_FP16, 3, 0, 8);
        c.op = AC_OP_COMBINE;
        c.num_splits = 4;
        cr_assert_eq(tg_fill(&c, &t, 4, (tg_range){-8, 3}, 1), 0);
        for (int i = 0; i < 12; i++) t.lse_part[i] = -INFINITY;
        for (int i = 0; i < 12 * 8; i++) t.o_part[i] = NAN;
        ac_oracle_result res;
        run_ok(&c, &t, modes[m], 0, &res);
        for (int r = 0; r < 3; r++) {
            cr_assert(res.lse[r] == -INFINITY && res.n_allowed[r] == 0);
            for (int d = 0; d < 8; d++) cr_assert(res.o_f32[r * 8 + d] == 0.0f && res.o_half[r * 8 + d] == 0);
        }
        ac_oracle_result_free(&res);
        ac_tensors_free(&t);
        ac_case_free(&c);
    }
}

Test(oracle_analytic, base2_lse_is_natural_over_ln2)
{
    for (int m = 0; m < 2; m++) {
        ac_case c;
        ac_tensors t;
        cr_assert_eq(tg_random_case(AC_OP_PREFILL, 4242, &c, &t), 0);
        ac_oracle_result rn, r2;
        run_ok(&c, &t, modes[m], 0, &rn);
        run_ok(&c, &t, modes[m], 1, &r2);
        for (int64_t r = 0; r < rn.rows; r++) {
            if (isinf(rn.lse[r])) {
                cr_assert(r2.lse[r] == -INFINITY);
                continue;
            }
            double want = rn.lse[r] / log(2.0);
            cr_assert(fabs(r2.lse[r] - want) <= 4e-16 * fabs(want), "%a vs %a", r2.lse[r], want);
        }
        ac_oracle_result_free(&rn);
        ac_oracle_result_free(&r2);
        ac_tensors_free(&t);
        ac_case_free(&c);
    }
}

Test(oracle_analytic, store_writes_the_mapped_slots_and_skips_padding)
{
    ac_case c;
    ac_tensors t;
    simple_case(&c, AC_BF16, 0, 0, 4);
    c.op = AC_OP_STORE;
    c.heads_kv = c.heads_q = 2;
    c.paged = 1;
    c.block_size = 4;
    c.num_blocks = 3;
    cr_assert_eq(ac_case_alloc_table(&c, 1, NULL), AC_OK);
    cr_assert_eq(ac_case_alloc_slots(&c, 5, NULL), AC_OK);
    int64_t slots[5] = {7, -1, 0, 11, -1};
    memcpy(c.slot_mapping, slots, sizeof slots);
    cr_assert_eq(tg_fill(&c, &t, 8, (tg_range){-2, 2}, 0), 0);
    ac_oracle_opts o = {0};
    ac_oracle_result res;
    ac_error err = {0};
    cr_assert_eq(ac_oracle_run(&c, &t, &o, &res, &err), AC_OK, "%s", err.msg);
    int64_t row = 8; /* Hkv * D */
    for (int64_t s = 0; s < 12; s++) {
        int tok = -1;
        for (int i = 0; i < 5; i++)
            if (slots[i] == s) tok = i;
        const uint16_t *wk = tok >= 0 ? t.k_new + tok * row : t.k + s * row;
        const uint16_t *wv = tok >= 0 ? t.v_new + tok * row : t.v + s * row;
        cr_assert(memcmp(res.k_cache + s * row, wk, 2 * row) == 0, "k slot %lld", (long long)s);
        cr_assert(memcmp(res.v_cache + s * row, wv, 2 * row) == 0, "v slot %lld", (long long)s);
    }
    ac_oracle_result_free(&res);
    /* A collision is the validator's error, reported before anything. */
    c.slot_mapping[1] = 7;
    cr_assert_eq(ac_oracle_run(&c, &t, &o, &res, &err), AC_ERR_SLOT);
    ac_tensors_free(&t);
    ac_case_free(&c);
}

Test(oracle_analytic, sampling_and_threads_change_nothing_but_coverage)
{
    ac_case c;
    ac_tensors t;
    cr_assert_eq(tg_random_case(AC_OP_DECODE, 99, &c, &t), 0);
    ac_oracle_opts o1 = {.threads = 1}, o2 = {.threads = 2, .max_rows = 3, .sample_seed = 5};
    ac_oracle_result full, part;
    ac_error err = {0};
    cr_assert_eq(ac_oracle_run(&c, &t, &o1, &full, &err), AC_OK, "%s", err.msg);
    cr_assert_eq(ac_oracle_run(&c, &t, &o2, &part, &err), AC_OK, "%s", err.msg);
    cr_assert_eq(full.rows_checked, full.rows);
    cr_assert_eq(part.rows_checked, full.rows < 3 ? full.rows : 3);
    int64_t marked = 0, D = c.head_dim;
    for (int64_t r = 0; r < full.rows; r++) {
        if (!part.checked[r]) {
            cr_assert(isnan(part.lse[r]) && isnan(part.o_f32[r * D]) && part.n_allowed[r] == -1);
            continue;
        }
        marked++;
        cr_assert(memcmp(part.o_f32 + r * D, full.o_f32 + r * D, sizeof(float) * (size_t)D) == 0);
        cr_assert(part.lse[r] == full.lse[r] || (isinf(part.lse[r]) && isinf(full.lse[r])));
    }
    cr_assert_eq(marked, part.rows_checked);
    ac_oracle_result_free(&full);
    ac_oracle_result_free(&part);
    ac_tensors_free(&t);
    ac_case_free(&c);
}

/* ---- the features (docs/CONTRACT.md, "Windows, softcap, ALiBi and sinks") ---- */

/* D = 1, q = 1 and scale 1, so the raw logit of key j is k[j] exactly; V is
   v[j]. Values must be exact in bf16. Contiguous, one head, no causal mode. */
static void known_logits(ac_case *c, ac_tensors *t, int32_t lq, int32_t lk, const float *k, const float *v)
{
    simple_case(c, AC_BF16, lq, lk, 1);
    c->scale_given = 1;
    c->scale = 1.0f;
    cr_assert_eq(tg_fill(c, t, 3, (tg_range){-2, 2}, 0), 0);
    for (int32_t i = 0; i < lq; i++) t->q[i] = ac_f32_to_half(AC_BF16, 1.0f);
    for (int32_t j = 0; j < lk; j++) {
        t->k[j] = ac_f32_to_half(AC_BF16, k[j]);
        t->v[j] = ac_f32_to_half(AC_BF16, v[j]);
        cr_assert_eq(ac_half_to_f32(AC_BF16, t->k[j]), k[j]);
        cr_assert_eq(ac_half_to_f32(AC_BF16, t->v[j]), v[j]);
    }
}

/* The exact softmax of logits s[0..n) (MPFR, 200 bits) with an optional
   sink: LSE and O = sum_j exp(s_j - LSE) v_j, rounded once to fp32 / double. */
static void exact_softmax(const double *s, const float *v, int n, double sink, double *lse, float *o32)
{
    mpfr_t sum, num, e;
    mpfr_inits2(200, sum, num, e, (mpfr_ptr)0);
    mpfr_set_zero(sum, 1);
    mpfr_set_zero(num, 1);
    for (int j = 0; j < n; j++) {
        mpfr_set_d(e, s[j], MPFR_RNDN);
        mpfr_exp(e, e, MPFR_RNDN);
        mpfr_add(sum, sum, e, MPFR_RNDN);
        mpfr_mul_d(e, e, (double)v[j], MPFR_RNDN);
        mpfr_add(num, num, e, MPFR_RNDN);
    }
    if (sink > -INFINITY) {
        mpfr_set_d(e, sink, MPFR_RNDN);
        mpfr_exp(e, e, MPFR_RNDN);
        mpfr_add(sum, sum, e, MPFR_RNDN);
    }
    mpfr_div(num, num, sum, MPFR_RNDN);
    *o32 = mpfr_get_flt(num, MPFR_RNDN);
    mpfr_log(sum, sum, MPFR_RNDN);
    *lse = mpfr_get_d(sum, MPFR_RNDN);
    mpfr_clears(sum, num, e, (mpfr_ptr)0);
}

Test(oracle_analytic, window_leaving_one_key_gives_its_v_and_logit)
{
    const float k[6] = {3.0f, -1.0f, 0.5f, 2.0f, -2.5f, 1.25f}, v[6] = {1, 2, 3, 4, 5, 6};
    for (int m = 0; m < 2; m++) {
        ac_case c;
        ac_tensors t;
        /* Lq = 2, Lk = 6 (off = 4), window (0, 0): row i sees only key i + 4. */
        known_logits(&c, &t, 2, 6, k, v);
        c.window_left = c.window_right = 0;
        ac_oracle_result res;
        run_ok(&c, &t, modes[m], 0, &res);
        for (int i = 0; i < 2; i++) {
            cr_assert_eq(res.n_allowed[i], 1);
            cr_assert(res.o_f32[i] == v[i + 4], "row %d: O %a, v %a", i, (double)res.o_f32[i], (double)v[i + 4]);
            cr_assert(res.lse[i] == (double)k[i + 4], "row %d: LSE %a vs s %a", i, res.lse[i], (double)k[i + 4]);
        }
        ac_oracle_result_free(&res);
        /* The allowed counts of a window (2, 1) alone and under causal BR. */
        c.window_left = 2;
        c.window_right = 1;
        run_ok(&c, &t, modes[m], 0, &res);
        cr_assert(res.n_allowed[0] == 4 && res.n_allowed[1] == 3, "window (2,1): %d %d", res.n_allowed[0],
                  res.n_allowed[1]); /* keys 2..5, 3..5 (clamped at Lk) */
        ac_oracle_result_free(&res);
        c.causal = AC_CAUSAL_BOTTOM_RIGHT;
        run_ok(&c, &t, modes[m], 0, &res);
        cr_assert(res.n_allowed[0] == 3 && res.n_allowed[1] == 3, "window (2,1) + BR: %d %d", res.n_allowed[0],
                  res.n_allowed[1]); /* keys 2..4, 3..5 */
        ac_oracle_result_free(&res);
        /* Left 0, right unbounded, no causal mode: row 0 sees keys 4 and 5. */
        c.causal = AC_CAUSAL_NONE;
        c.window_left = 0;
        c.window_right = -1;
        run_ok(&c, &t, modes[m], 0, &res);
        cr_assert_eq(res.n_allowed[0], 2);
        double s[2] = {k[4], k[5]}, lse;
        float o;
        exact_softmax(s, v + 4, 2, -INFINITY, &lse, &o);
        cr_assert(res.o_f32[0] == o && fabs(res.lse[0] - lse) <= 0x1p-50 * fabs(lse));
        ac_oracle_result_free(&res);
        ac_tensors_free(&t);
        ac_case_free(&c);
    }
}

Test(oracle_analytic, softcap_on_two_keys_is_c_tanh_s_over_c)
{
    const float k[2] = {6.0f, -1.5f}, v[2] = {2.0f, -3.0f};
    const float caps[3] = {1.5f, 30.0f, 0.25f};
    for (int m = 0; m < 2; m++)
        for (int ci = 0; ci < 3; ci++) {
            ac_case c;
            ac_tensors t;
            known_logits(&c, &t, 1, 2, k, v);
            c.softcap = caps[ci];
            ac_oracle_result res;
            run_ok(&c, &t, modes[m], 0, &res);
            double s[2];
            for (int j = 0; j < 2; j++) { /* c tanh(k / c) at 200 bits, then to double */
                mpfr_t x;
                mpfr_init2(x, 200);
                mpfr_set_d(x, (double)k[j], MPFR_RNDN);
                mpfr_div_d(x, x, (double)caps[ci], MPFR_RNDN);
                mpfr_tanh(x, x, MPFR_RNDN);
                mpfr_mul_d(x, x, (double)caps[ci], MPFR_RNDN);
                s[j] = mpfr_get_d(x, MPFR_RNDN);
                mpfr_clear(x);
            }
            double lse;
            float o;
            exact_softmax(s, v, 2, -INFINITY, &lse, &o);
            cr_assert(res.o_f32[0] == o, "cap %g: O %a vs %a", (double)caps[ci], (double)res.o_f32[0], (double)o);
            cr_assert(fabs(res.lse[0] - lse) <= 0x1p-50 * fabs(lse), "cap %g: LSE %a vs %a", (double)caps[ci],
                      res.lse[0], lse);
            /* The verdict's magnitude: |c tanh(6 / c)| is the largest capped logit. */
            cr_assert(fabs(res.capped_abs[0] - s[0]) <= 0x1p-50 * s[0]);
            cr_assert(res.alibi_abs[0] == 0.0);
            ac_oracle_result_free(&res);
            ac_tensors_free(&t);
            ac_case_free(&c);
        }
}

Test(oracle_analytic, alibi_on_two_keys_is_signed_and_after_softcap)
{
    const float k[2] = {0.0f, 0.0f}, v[2] = {1.0f, 5.0f};
    for (int m = 0; m < 2; m++) {
        ac_case c;
        ac_tensors t;
        /* Lq = Lk = 2, no causal mode: row 0 sees key 1 at distance +1 (the
           contract's signed bias: +slope there; flash-attn's -|d| would give
           -slope), row 1 sees key 0 at distance -1. */
        known_logits(&c, &t, 2, 2, k, v);
        const float slope = 0.375f;
        cr_assert_eq(ac_case_set_alibi(&c, &slope, 1, NULL), AC_OK);
        ac_oracle_result res;
        run_ok(&c, &t, modes[m], 0, &res);
        double s0[2] = {0.0, 0.375}, s1[2] = {-0.375, 0.0}, lse;
        float o;
        exact_softmax(s0, v, 2, -INFINITY, &lse, &o);
        cr_assert(res.o_f32[0] == o && fabs(res.lse[0] - lse) <= 0x1p-50 * lse, "row 0: O %a vs %a, LSE %a vs %a",
                  (double)res.o_f32[0], (double)o, res.lse[0], lse);
        exact_softmax(s1, v, 2, -INFINITY, &lse, &o);
        cr_assert(res.o_f32[1] == o && fabs(res.lse[1] - lse) <= 0x1p-50 * lse, "row 1: O %a vs %a", (double)res.o_f32[1],
                  (double)o);
        cr_assert(res.alibi_abs[0] == 0.375 && res.alibi_abs[1] == 0.375);
        ac_oracle_result_free(&res);
        /* With a softcap the bias is added after the cap, uncapped: a cap of
           0.25 on logits 0 leaves the ALiBi term 0.375 whole. */
        c.softcap = 0.25f;
        run_ok(&c, &t, modes[m], 0, &res);
        exact_softmax(s0, v, 2, -INFINITY, &lse, &o);
        cr_assert(res.o_f32[0] == o && fabs(res.lse[0] - lse) <= 0x1p-50 * lse);
        ac_oracle_result_free(&res);
        ac_tensors_free(&t);
        ac_case_free(&c);
    }
}

Test(oracle_analytic, alibi_product_is_exact_at_large_distances)
{
    /* slope = 1 + 2^-23 (24 bits) times the distance -(2^20 + 1) (21 bits)
       needs 45 bits: an fp32 product would round it. Row 0 of Lq = 1 sees
       only key 0 (a bool mask), at distance -(Lk - 1), with scale 0: its LSE
       is the bias, exact in double. */
    for (int m = 0; m < 2; m++) {
        ac_case c;
        ac_tensors t;
        const int32_t lk = (1 << 20) + 2;
        simple_case(&c, AC_BF16, 1, lk, 1);
        c.scale_given = 1;
        c.scale = 0.0f;
        c.mask = AC_MASK_BOOL;
        cr_assert_eq(tg_fill(&c, &t, 3, (tg_range){-2, 2}, 0), 0);
        for (int32_t j = 0; j < lk; j++) t.mask_bool[j] = j == 0;
        const float slope = 1.0f + 0x1p-23f;
        cr_assert_eq(ac_case_set_alibi(&c, &slope, 1, NULL), AC_OK);
        ac_oracle_result res;
        run_ok(&c, &t, modes[m], 0, &res);
        double want = (double)slope * -(double)(lk - 1);
        cr_assert(res.lse[0] == want, "LSE %a, want %a (fp32 product: %a)", res.lse[0], want,
                  (double)(slope * (float)-(lk - 1)));
        cr_assert(res.alibi_abs[0] == -want);
        ac_oracle_result_free(&res);
        ac_tensors_free(&t);
        ac_case_free(&c);
    }
}

Test(oracle_analytic, sink_on_n_equal_logits_adds_to_the_denominator_only)
{
    enum { N = 7 };
    float k[N], v[N];
    for (int j = 0; j < N; j++) {
        k[j] = 1.5f;
        v[j] = (float)(j - 3);
    }
    v[0] = 10.0f;
    const float sinks[3] = {0.0f, 4.0f, -INFINITY};
    for (int m = 0; m < 2; m++)
        for (int si = 0; si < 3; si++) {
            ac_case c;
            ac_tensors t;
            known_logits(&c, &t, 1, N, k, v);
            cr_assert_eq(ac_case_set_sinks(&c, &sinks[si], 1, NULL), AC_OK);
            ac_oracle_result res;
            run_ok(&c, &t, modes[m], 0, &res);
            /* LSE = ln(n e^s + e^sink); O = e^s sum_j v_j / (n e^s + e^sink). */
            double s[N], lse;
            float o;
            for (int j = 0; j < N; j++) s[j] = 1.5;
            exact_softmax(s, v, N, (double)sinks[si], &lse, &o);
            double closed = sinks[si] > -INFINITY ? log(N * exp(1.5) + exp((double)sinks[si])) : 1.5 + log((double)N);
            cr_assert(fabs(lse - closed) <= 1e-15 * fabs(closed));
            cr_assert(fabs(res.lse[0] - lse) <= 0x1p-50 * fabs(lse), "sink %g: LSE %a vs %a", (double)sinks[si],
                      res.lse[0], lse);
            cr_assert(res.o_f32[0] == o, "sink %g: O %a vs %a", (double)sinks[si], (double)res.o_f32[0], (double)o);
            cr_assert_eq(res.n_allowed[0], N);
            if (si == 1) cr_assert(res.logit_abs[0] == 4.0, "the sink's |logit| is in logit_abs");
            ac_oracle_result_free(&res);
            ac_tensors_free(&t);
            ac_case_free(&c);
        }
}

Test(oracle_analytic, empty_row_with_a_sink_gives_zero_and_the_sink)
{
    const float k[1] = {0.75f}, v[1] = {2.0f};
    for (int m = 0; m < 2; m++)
        for (int base2 = 0; base2 < 2; base2++) {
            ac_case c;
            ac_tensors t;
            /* Lq = 3, Lk = 1, causal BR: rows 0 and 1 see no key. */
            known_logits(&c, &t, 3, 1, k, v);
            c.causal = AC_CAUSAL_BOTTOM_RIGHT;
            const float sink = 1.25f;
            cr_assert_eq(ac_case_set_sinks(&c, &sink, 1, NULL), AC_OK);
            ac_oracle_result res;
            run_ok(&c, &t, modes[m], base2, &res);
            double want_sink = base2 ? 1.25 / log(2.0) : 1.25;
            for (int i = 0; i < 2; i++) {
                cr_assert_eq(res.n_allowed[i], 0);
                cr_assert(res.o_f32[i] == 0.0f && res.o[i] == 0.0);
                cr_assert(fabs(res.lse[i] - want_sink) <= 1e-15 * want_sink, "row %d: LSE %a, want the sink %a", i,
                          res.lse[i], want_sink);
            }
            double s[1] = {0.75}, lse;
            float o;
            exact_softmax(s, v, 1, 1.25, &lse, &o);
            if (base2) lse /= log(2.0);
            cr_assert(res.o_f32[2] == o && fabs(res.lse[2] - lse) <= 1e-15 * lse);
            ac_oracle_result_free(&res);
            /* Without a sink (-inf) the old contract: LSE = -inf. */
            const float none = -INFINITY;
            cr_assert_eq(ac_case_set_sinks(&c, &none, 1, NULL), AC_OK);
            run_ok(&c, &t, modes[m], base2, &res);
            cr_assert(res.lse[0] == -INFINITY && res.lse[1] == -INFINITY);
            ac_oracle_result_free(&res);
            ac_tensors_free(&t);
            ac_case_free(&c);
        }
}

/* --- the K/V storage (docs/CONTRACT.md section 13) ---------------------------- */

/* An FP8 cache: one allowed key gives O = decode(v) * v_scale exactly and
   LSE = scale * q * decode(k) * k_scale exactly; with two keys the softmax
   uses the dequantised values (per-head scales pick the KV head's). */
Test(oracle_analytic, fp8_cache_dequantises_with_the_heads_scales)
{
    for (int m = 0; m < 2; m++)
        for (int f = AC_KV_E4M3; f <= AC_KV_E5M2; f++) {
            ac_case c;
            ac_tensors t;
            simple_case(&c, AC_BF16, 1, 2, 1);
            c.heads_q = c.heads_kv = 2;
            c.scale_given = 1;
            c.scale = 1.0f;
            c.kv_format = (ac_kv_format)f;
            const float ks[2] = {0.375f, 3.0f}, vs[2] = {0.1f, 40.0f}; /* 0.1: not a power of two */
            cr_assert_eq(ac_case_set_kv_scales(&c, ks, vs, 2, NULL), AC_OK);
            c.window_left = c.window_right = 0; /* row 0 sees key 1 only */
            cr_assert_eq(tg_fill(&c, &t, 3, (tg_range){-2, 2}, 0), 0);
            const float kval[2] = {1.5f, -2.0f}, vval[2] = {-3.0f, 0.625f};
            for (int32_t h = 0; h < 2; h++) {
                t.q[h] = ac_f32_to_half(AC_BF16, 1.0f);
                for (int32_t j = 0; j < 2; j++) { /* contiguous [Lk, Hkv, 1] */
                    t.k[j * 2 + h] = ac_f32_to_fp8((ac_kv_format)f, kval[j] * (float)(h + 1));
                    t.v[j * 2 + h] = ac_f32_to_fp8((ac_kv_format)f, vval[j]);
                }
            }
            ac_oracle_result res;
            run_ok(&c, &t, modes[m], 0, &res);
            for (int32_t h = 0; h < 2; h++) {
                double kd = (double)kval[1] * (h + 1) * ks[h], vd = (double)vval[1] * vs[h];
                cr_assert(res.lse[h] == kd, "%s head %d: LSE %a, want %a", ac_kv_format_name(c.kv_format), h,
                          res.lse[h], kd);
                cr_assert(res.o_f32[h] == (float)vd, "head %d: O %a, want %a", h, (double)res.o_f32[h], vd);
            }
            ac_oracle_result_free(&res);
            /* Both keys: the exact softmax of the dequantised logits and values
               (V scales that keep decode(v) * scale exact in fp32 for the check). */
            c.window_left = c.window_right = -1;
            const float vs2[2] = {0.25f, 48.0f};
            cr_assert_eq(ac_case_set_kv_scales(&c, ks, vs2, 2, NULL), AC_OK);
            run_ok(&c, &t, modes[m], 0, &res);
            for (int32_t h = 0; h < 2; h++) {
                double s[2] = {(double)kval[0] * (h + 1) * ks[h], (double)kval[1] * (h + 1) * ks[h]}, lse;
                float v2[2] = {vval[0] * vs2[h], vval[1] * vs2[h]}, o;
                exact_softmax(s, v2, 2, -INFINITY, &lse, &o);
                cr_assert(res.o_f32[h] == o, "head %d: O %a vs %a", h, (double)res.o_f32[h], (double)o);
                cr_assert(fabs(res.lse[h] - lse) <= 0x1p-50 * fabs(lse));
            }
            ac_oracle_result_free(&res);
            ac_tensors_free(&t);
            ac_case_free(&c);
        }
}

/* D_v != D_qk: q.k over D_qk, O with D_v columns equal to the one allowed
   key's V row; the default scale stays 1/sqrt(D_qk). */
Test(oracle_analytic, dv_output_has_v_columns_and_scale_of_dqk)
{
    for (int m = 0; m < 2; m++) {
        ac_case c;
        ac_tensors t;
        simple_case(&c, AC_FP16, 1, 3, 4);
        c.head_dim_v = 3;
        c.window_left = c.window_right = 0; /* key 2 only */
        cr_assert_eq(tg_fill(&c, &t, 5, (tg_range){-2, 2}, 0), 0);
        cr_assert_eq(t.kv_elems, 12);
        cr_assert_eq(t.v_elems, 9);
        ac_oracle_result res;
        run_ok(&c, &t, modes[m], 0, &res);
        cr_assert_eq(res.head_dim, 3);
        for (int32_t d = 0; d < 3; d++)
            cr_assert(res.o_f32[d] == ac_half_to_f32(AC_FP16, t.v[2 * 3 + d]), "d %d", d);
        double dot = 0.0;
        for (int32_t d = 0; d < 4; d++)
            dot += (double)ac_half_to_f32(AC_FP16, t.q[d]) * (double)ac_half_to_f32(AC_FP16, t.k[2 * 4 + d]);
        cr_assert(res.lse[0] == (double)(1.0f / sqrtf(4.0f)) * dot, "LSE %a vs %a", res.lse[0], 0.5 * dot);
        ac_oracle_result_free(&res);
        ac_tensors_free(&t);
        ac_case_free(&c);
    }
}

/* A store into an FP8 cache quantises fl32(x / scale) to nearest even,
   saturating; with D_v != D the V rows have their own width. */
Test(oracle_analytic, fp8_store_quantises_with_the_heads_scale)
{
    ac_case c;
    ac_tensors t;
    simple_case(&c, AC_BF16, 0, 0, 2);
    c.op = AC_OP_STORE;
    c.head_dim_v = 1;
    c.paged = 1;
    c.block_size = 2;
    c.num_blocks = 2;
    c.kv_format = AC_KV_E4M3;
    const float ks[1] = {0.5f}, vs[1] = {0.25f};
    cr_assert_eq(ac_case_set_kv_scales(&c, ks, vs, 1, NULL), AC_OK);
    cr_assert_eq(ac_case_alloc_table(&c, 1, NULL), AC_OK);
    cr_assert_eq(ac_case_alloc_slots(&c, 2, NULL), AC_OK);
    c.slot_mapping[0] = 3;
    c.slot_mapping[1] = -1;
    cr_assert_eq(tg_fill(&c, &t, 9, (tg_range){-2, 2}, 0), 0);
    cr_assert_eq(t.v_elems, 4);
    t.k_new[0] = ac_f32_to_half(AC_BF16, 3.0f);   /* 3 / 0.5 = 6: exact */
    t.k_new[1] = ac_f32_to_half(AC_BF16, 300.0f); /* 600: past 448, saturates */
    t.v_new[0] = ac_f32_to_half(AC_BF16, -1.0625f); /* -4.25: between -4 and -4.5, ties to even -4 */
    ac_oracle_opts o = {0};
    ac_oracle_result res;
    ac_error err = {0};
    cr_assert_eq(ac_oracle_run(&c, &t, &o, &res, &err), AC_OK, "%s", err.msg);
    cr_assert_eq(res.k_cache[3 * 2 + 0], 0x4c); /* 6 = 1.5 * 2^2: exponent 9, mantissa 4 */
    cr_assert_eq(res.k_cache[3 * 2 + 1], 0x7e); /* 448 */
    cr_assert_eq(res.v_cache[3], 0xc8);         /* -4 */
    cr_assert_eq(res.v_cache[0], t.v[0]);       /* untouched slot */
    ac_oracle_result_free(&res);
    ac_tensors_free(&t);
    ac_case_free(&c);
}
