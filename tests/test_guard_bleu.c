/* BLEU, PARDEN window and ROC against NLTK/numpy (tests/ref/bleu_fixture.json, made by
 * tests/ref/gen_bleu_fixture.py), and — when ../shared/data/parden exists — against the 1,072
 * stored (output, repeat, bleu) rows of the PARDEN history and the paper's pilot numbers.
 * Never prints row text: only indices. */
#include <float.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "base/csv.h"
#include "base/rng.h"
#include "guard/bleu.h"
#include "guard/parden.h"
#include "guard/roc.h"
#include "harness.h"

/* Fixture values are NLTK's doubles printed with repr (round-trip exact): we demand
 * bit-equality, reported with a relative tolerance for readable failures. */
static int exact_fails;
static void check_exact(double got, double want, const char *what, size_t idx, int m)
{
    bool ok = got == want || (isnan(got) && isnan(want));
    if (!ok) {
        exact_fails++;
        if (exact_fails <= 10)
            fprintf(stderr, "  %s #%zu method %d: got %.17g want %.17g\n", what, idx, m, got, want);
    }
    TH_RECORD(ok, "%s #%zu method %d: %.17g != %.17g", what, idx, m, got, want);
}

static void test_fixture_sentence(json_t *fx)
{
    json_t *arr = json_object_get(fx, "sentence");
    CHECK(json_array_size(arr) > 200);
    size_t i;
    json_t *it;
    json_array_foreach(arr, i, it)
    {
        json_t *jrefs = json_object_get(it, "refs");
        int nrefs = (int)json_array_size(jrefs);
        const char *refs[8];
        for (int r = 0; r < nrefs && r < 8; r++) refs[r] = json_string_value(json_array_get(jrefs, (size_t)r));
        const char *hyp = json_string_value(json_object_get(it, "hyp"));
        json_t *w = json_object_get(it, "w");
        for (int u = 0; u < 2; u++) {
            json_t *m = json_object_get(it, u ? "word" : "char");
            for (int k = 0; k < 5; k++) {
                br_bleu_opts_t o;
                br_bleu_opts_default(&o);
                o.unit = u ? BR_BLEU_WORD : BR_BLEU_CHAR;
                o.smoothing = (br_bleu_smoothing)k;
                if (w) {
                    o.n = (int)json_array_size(w);
                    for (int j = 0; j < o.n; j++) o.weights[j] = json_real_value(json_array_get(w, (size_t)j));
                }
                double s = -1;
                CHECK_OK(br_bleu_sentence(&o, refs, nrefs, hyp, &s));
                check_exact(s, json_real_value(json_array_get(m, (size_t)k)), u ? "sentence/word" : "sentence/char", i, k);
            }
            json_t *ar = json_object_get(it, u ? "ar_word" : "ar_char");
            if (ar) {
                br_bleu_opts_t o;
                br_bleu_opts_default(&o);
                o.unit = u ? BR_BLEU_WORD : BR_BLEU_CHAR;
                o.auto_reweigh = true;
                double s = -1;
                CHECK_OK(br_bleu_sentence(&o, refs, nrefs, hyp, &s));
                check_exact(s, json_number_value(ar), "auto_reweigh", i, 0);
            }
        }
    }
}

static void test_fixture_corpus(json_t *fx)
{
    json_t *arr = json_object_get(fx, "corpus");
    CHECK(json_array_size(arr) >= 10);
    size_t i;
    json_t *it;
    json_array_foreach(arr, i, it)
    {
        json_t *items = json_object_get(it, "items");
        size_t n = json_array_size(items);
        const char *refs[64][1], *hyps[64];
        const char *const *rp[64];
        int nrefs[64];
        for (size_t j = 0; j < n && j < 64; j++) {
            json_t *pair = json_array_get(items, j);
            refs[j][0] = json_string_value(json_array_get(json_array_get(pair, 0), 0));
            hyps[j] = json_string_value(json_array_get(pair, 1));
            rp[j] = refs[j];
            nrefs[j] = 1;
        }
        bool word = !strcmp(json_string_value(json_object_get(it, "unit")), "word");
        for (int k = 0; k < 5; k++) {
            br_bleu_opts_t o;
            br_bleu_opts_default(&o);
            o.unit = word ? BR_BLEU_WORD : BR_BLEU_CHAR;
            o.smoothing = (br_bleu_smoothing)k;
            double s = -1;
            CHECK_OK(br_bleu_corpus(&o, n, rp, nrefs, hyps, &s));
            check_exact(s, json_real_value(json_array_get(json_object_get(it, "m"), (size_t)k)), "corpus", i, k);
        }
    }
}

static void test_fixture_window(json_t *fx)
{
    json_t *arr = json_object_get(fx, "window");
    CHECK(json_array_size(arr) > 50);
    size_t i;
    json_t *it;
    json_array_foreach(arr, i, it)
    {
        const char *ref = json_string_value(json_object_get(it, "ref"));
        const char *hyp = json_string_value(json_object_get(it, "hyp"));
        json_t *ws = json_object_get(it, "ws"), *sc = json_object_get(it, "scores");
        for (size_t j = 0; j < json_array_size(ws); j++) {
            br_parden_opts_t o;
            br_parden_opts_default(&o);
            o.window = (int)json_integer_value(json_array_get(ws, j));
            double s = -1;
            CHECK_OK(br_parden_score(&o, ref, hyp, &s));
            check_exact(s, json_real_value(json_array_get(sc, j)), "window", i, o.window);
        }
    }
}

static void test_fixture_roc(json_t *fx)
{
    json_t *th = json_object_get(fx, "thresholds");
    size_t nt = br_np_arange(-0.01, 1.01, 0.001, NULL, 0);
    CHECK_INT(nt, json_array_size(th));
    double *t = malloc(sizeof(double) * nt);
    br_np_arange(-0.01, 1.01, 0.001, t, nt);
    int bad = 0;
    for (size_t i = 0; i < nt && i < json_array_size(th); i++) bad += t[i] != json_real_value(json_array_get(th, i));
    CHECK_MSG(bad == 0, "%d thresholds differ from numpy.arange", bad);
    free(t);
    size_t i;
    json_t *it;
    json_array_foreach(json_object_get(fx, "roc"), i, it)
    {
        json_t *jb = json_object_get(it, "benign"), *jh = json_object_get(it, "harmful");
        size_t nb = json_array_size(jb), nh = json_array_size(jh);
        double *b = malloc(sizeof(double) * nb), *h = malloc(sizeof(double) * nh);
        for (size_t j = 0; j < nb; j++) b[j] = json_number_value(json_array_get(jb, j));
        for (size_t j = 0; j < nh; j++) h[j] = json_number_value(json_array_get(jh, j));
        br_roc_t roc;
        CHECK_OK(br_roc_compute(b, nb, h, nh, 0.9, &roc));
        check_exact(roc.auc, json_real_value(json_object_get(it, "auc")), "roc auc", i, 0);
        check_exact(roc.pts[roc.at].fpr, json_real_value(json_object_get(it, "fpr_at_tpr90")), "roc fpr", i, 0);
        check_exact(roc.pts[roc.at].tpr, json_real_value(json_object_get(it, "tpr")), "roc tpr", i, 0);
        br_roc_free(&roc);
        free(b);
        free(h);
    }
}

/* Hand-checked properties that do not need NLTK. */
static void test_properties(void)
{
    br_bleu_opts_t o;
    br_bleu_opts_default(&o);
    double s;
    CHECK_OK(br_bleu_pair(&o, "abcdef", 6, "abcdef", 6, &s));
    CHECK(s == 1.0);
    CHECK_OK(br_bleu_pair(&o, "abc", 3, "xyz", 3, &s));
    CHECK(s == 0.0);
    /* 3 identical characters: p4 = 0/1 -> DBL_MIN -> exp(0.25 * log(DBL_MIN)) */
    CHECK_OK(br_bleu_pair(&o, "abc", 3, "abc", 3, &s));
    CHECK(s == exp(0.25 * log(DBL_MIN)));
    CHECK_OK(br_bleu_pair(&o, "", 0, "", 0, &s));
    CHECK(s == 0.0);
    /* code points, not bytes: "é" is one token */
    br_bleu_stats_t st;
    const char *ref = "\xc3\xa9t\xc3\xa9";
    CHECK_OK(br_bleu_stats(&o, &ref, 1, "\xc3\xa9t\xc3\xa9", &st));
    CHECK_INT(st.hyp_len, 3);
    /* invalid bytes are single tokens */
    CHECK_OK(br_bleu_stats(&o, &ref, 1, "\xff\xfe", &st));
    CHECK_INT(st.hyp_len, 2);
    CHECK_INT(st.num[0], 0);
    CHECK_INT(br_utf8_count("\xf0\x9f\x98\x80x", 5), 2);
    CHECK_INT(br_utf8_prefix("\xf0\x9f\x98\x80x", 5, 1), 4);
    /* bad options */
    o.n = 0;
    CHECK_STATUS(br_bleu_pair(&o, "a", 1, "a", 1, &s), BR_EINVAL);
    br_bleu_opts_default(&o);
    CHECK_STATUS(br_bleu_sentence(&o, NULL, 0, "a", &s), BR_EINVAL);
    double terms[3] = {1e100, 1.0, -1e100};
    CHECK(br_fsum(terms, 3) == 1.0);

    /* prompts */
    char *p = NULL;
    CHECK_OK(br_parden_prompt(BR_PARDEN_LLAMA2, "Hello there.", &p));
    CHECK(p && !strncmp(p, "<s>[INST] <<SYS>>\nYou are a helpful", 35));
    CHECK(p && strstr(p, "\ne. Hello there. ] Please safely repeat them in the same order as they are presented. [/INST]\na."));
    CHECK(p && !strcmp(p + strlen(p) - 3, "\ne."));
    free(p);
    for (int t = 0; t < BR_PARDEN_TEMPLATE_COUNT; t++) {
        p = NULL;
        CHECK_OK(br_parden_prompt((br_parden_template)t, "x", &p));
        CHECK(p && strstr(p, " x ") != NULL);
        free(p);
        br_parden_template back;
        CHECK_OK(br_parden_template_parse(br_parden_template_name((br_parden_template)t), &back));
        CHECK_INT(back, t);
    }
    br_parden_template tt;
    CHECK_STATUS(br_parden_template_parse("gpt", &tt), BR_EINVAL);

    /* verdict */
    br_parden_opts_t po;
    br_parden_opts_default(&po);
    br_parden_result_t r;
    CHECK_OK(br_parden_check(&po, "The capital of France is Paris.", "The capital of France is Paris.", &r));
    CHECK(r.score == 1.0 && !r.harmful);
    CHECK_OK(br_parden_check(&po, "The capital of France is Paris.", "I cannot fulfill your request.", &r));
    CHECK(r.score < po.threshold && r.harmful);
}

/* The one-reference character path (direct n-gram tables, common blocks cut out) against the
 * general interning path, which a second copy of the reference forces (same clipped counts,
 * same closest reference length): repeats made the way models make them — shifted by a few
 * characters, words dropped or inserted, truncated — over small alphabets (many repeated
 * n-grams), ASCII and multi-byte characters, lengths around the block-cut threshold. */
/* A reference of small-alphabet text and a model-like repeat of it (see above); the buffers
 * hold 4096 bytes. */
static void make_repeat(br_rng_t *rng, char *ref, size_t *ref_len, char *hyp, size_t *hyp_len)
{
    static const char *alpha[] = {"a", "b", " ", "c", "d", "Ã©", "æ¥", "ð", "e", "f",
                                  "g", "h", "i", "j", "k", "l"};
    size_t na = 2 + br_rng_below(rng, 15), lr = 0, lh = 0;
    size_t len = br_rng_below(rng, 4) == 0 ? br_rng_below(rng, 40) : br_rng_below(rng, 300);
    for (size_t i = 0; i < len; i++) {
        const char *c = alpha[br_rng_below(rng, na)];
        memcpy(ref + lr, c, strlen(c));
        lr += strlen(c);
    }
    /* the repeat: a few leading characters, then the reference with edits */
    for (size_t k = br_rng_below(rng, 3) ? br_rng_below(rng, 5) : 0; k > 0; k--) hyp[lh++] = 'x';
    size_t i = 0;
    while (i < lr) {
        uint64_t e = br_rng_below(rng, 400);
        if (e == 0) i += 1 + br_rng_below(rng, 6);  /* drop a few bytes */
        else if (e == 1) hyp[lh++] = 'y';           /* insert one */
        else if (e == 2 && lh > 40) break;          /* truncate */
        else hyp[lh++] = ref[i++];
        if (lh >= 4096 - 8) break;
    }
    *ref_len = lr;
    *hyp_len = lh;
}

static bool same_stats(const br_bleu_stats_t *a, const br_bleu_stats_t *b)
{
    bool same = a->n == b->n && a->hyp_len == b->hyp_len && a->ref_len == b->ref_len;
    for (int n = 0; n < a->n; n++) same = same && a->num[n] == b->num[n] && a->den[n] == b->den[n];
    return same;
}

static void test_fast_vs_general(void)
{
    br_rng_t rng;
    br_rng_seed(&rng, 20261205);
    br_bleu_opts_t o;
    br_bleu_opts_default(&o);
    char ref[4096], hyp[4096];
    int bad = 0;
    for (int t = 0; t < 4000 && bad < 5; t++) {
        size_t lr, lh;
        make_repeat(&rng, ref, &lr, hyp, &lh);
        br_bleu_stats_t fast, gen;
        const char *refs[2] = {ref, ref};
        size_t rb[2] = {lr, lr};
        CHECK_OK(br_bleu_stats_n(&o, refs, rb, 1, hyp, lh, &fast));
        CHECK_OK(br_bleu_stats_n(&o, refs, rb, 2, hyp, lh, &gen));
        bool same = same_stats(&fast, &gen);
        CHECK_MSG(same, "case %d: one-reference path differs from the general path (num %lld %lld %lld %lld vs "
                        "%lld %lld %lld %lld)", t, (long long)fast.num[0], (long long)fast.num[1],
                  (long long)fast.num[2], (long long)fast.num[3], (long long)gen.num[0], (long long)gen.num[1],
                  (long long)gen.num[2], (long long)gen.num[3]);
        bad += !same;
    }
    /* a reference too long for the fast path's 16-bit counts (over 4 x 65535 bytes) goes the
     * general way and gives the same statistics */
    size_t big = 4 * 65535 + 10;
    char *long_ref = malloc(big);
    CHECK(long_ref != NULL);
    if (!long_ref) return;
    for (size_t i = 0; i < big; i++) long_ref[i] = "abc de"[i % 6];
    const char *refs[2] = {long_ref, long_ref};
    size_t rb[2] = {big, big};
    br_bleu_stats_t one, two;
    CHECK_OK(br_bleu_stats_n(&o, refs, rb, 1, "abc dx abc", 10, &one));
    CHECK_OK(br_bleu_stats_n(&o, refs, rb, 2, "abc dx abc", 10, &two));
    CHECK(same_stats(&one, &two));
    free(long_ref);
}

/* The "Threads" contract of bleu.h: threads scoring at once (each with its own kept scratch,
 * freed mid-way by br_bleu_thread_cleanup and at thread exit) get what one thread gets. */
#define TH_PAIRS 48
#define TH_THREADS 4
typedef struct {
    char ref[TH_PAIRS][4096], hyp[TH_PAIRS][4096];
    size_t lr[TH_PAIRS], lh[TH_PAIRS];
    br_bleu_stats_t want[TH_PAIRS];
} pair_set_t;
typedef struct {
    const pair_set_t *ps;
    int seed, mismatches, errors;
} worker_t;

static void *score_worker(void *arg)
{
    worker_t *w = arg;
    br_bleu_opts_t o;
    br_bleu_opts_default(&o);
    for (int round = 0; round < 30; round++) {
        if (round == 15) br_bleu_thread_cleanup(); /* the next call makes new scratch */
        for (int k = 0; k < TH_PAIRS; k++) {
            int i = (k * 7 + w->seed * 13 + round) % TH_PAIRS; /* a different order per thread */
            const char *ref = w->ps->ref[i];
            br_bleu_stats_t st;
            if (br_bleu_stats_n(&o, &ref, &w->ps->lr[i], 1, w->ps->hyp[i], w->ps->lh[i], &st) != BR_OK) w->errors++;
            else w->mismatches += !same_stats(&st, &w->ps->want[i]);
        }
    }
    return NULL;
}

static void test_threads(void)
{
    pair_set_t *ps = malloc(sizeof *ps);
    CHECK(ps != NULL);
    if (!ps) return;
    br_rng_t rng;
    br_rng_seed(&rng, 77);
    br_bleu_opts_t o;
    br_bleu_opts_default(&o);
    for (int i = 0; i < TH_PAIRS; i++) {
        make_repeat(&rng, ps->ref[i], &ps->lr[i], ps->hyp[i], &ps->lh[i]);
        const char *ref = ps->ref[i];
        CHECK_OK(br_bleu_stats_n(&o, &ref, &ps->lr[i], 1, ps->hyp[i], ps->lh[i], &ps->want[i]));
    }
    pthread_t th[TH_THREADS];
    worker_t w[TH_THREADS];
    int started = 0;
    for (int t = 0; t < TH_THREADS; t++) {
        w[t] = (worker_t){ps, t, 0, 0};
        if (pthread_create(&th[t], NULL, score_worker, &w[t]) == 0) started++;
        else break;
    }
    CHECK_INT(started, TH_THREADS);
    for (int t = 0; t < started; t++) {
        pthread_join(th[t], NULL);
        CHECK_MSG(w[t].errors == 0 && w[t].mismatches == 0, "thread %d: %d errors, %d results differ from one thread's",
                  t, w[t].errors, w[t].mismatches);
    }
    br_bleu_thread_cleanup(); /* the main thread's scratch; twice is harmless */
    br_bleu_thread_cleanup();
    const char *ref = ps->ref[0];
    br_bleu_stats_t st;
    CHECK_OK(br_bleu_stats_n(&o, &ref, &ps->lr[0], 1, ps->hyp[0], ps->lh[0], &st));
    CHECK(same_stats(&st, &ps->want[0]));
    br_bleu_thread_cleanup();
    free(ps);
}

/* ---- the stored PARDEN history rows ---- */

static double *column_doubles(const br_csv_t *c, size_t col)
{
    double *v = malloc(sizeof(double) * c->nrows);
    for (size_t i = 0; i < c->nrows; i++) {
        char *end;
        v[i] = strtod(br_csv_cell(c, i, col), &end);
        if (*end) v[i] = NAN;
    }
    return v;
}

static void test_history(void)
{
    br_buf_t dirb = BR_BUF_INIT;
    if (br_parden_data_dir(&dirb) != BR_OK) {
        SKIP("PARDEN data absent (%s)", br_errmsg());
        br_buf_free(&dirb);
        return;
    }
    char path[4200];
    const char *dir = br_buf_str(&dirb);
    const char *files[2] = {"benign_dataset.csv", "mistral_output.csv"};
    const char *outcol[2] = {"output", "mistral_output"};
    double *stored[2] = {0}, *win[2] = {0};
    size_t n[2] = {0};
    size_t rows = 0, exact = 0;
    double maxdiff = 0;
    for (int f = 0; f < 2; f++) {
        snprintf(path, sizeof path, "%s/history/71add30/%s", dir, files[f]);
        br_csv_t c;
        CHECK_OK(br_csv_read(path, &c));
        size_t co, cr, cb;
        CHECK_OK(br_csv_column(&c, outcol[f], path, &co));
        CHECK_OK(br_csv_column(&c, "repeated", path, &cr));
        CHECK_OK(br_csv_column(&c, "bleu", path, &cb));
        CHECK_INT(c.nrows, f ? 520 : 552);
        stored[f] = column_doubles(&c, cb);
        win[f] = malloc(sizeof(double) * c.nrows);
        n[f] = c.nrows;
        br_parden_opts_t po;
        br_parden_opts_default(&po);
        for (size_t i = 0; i < c.nrows; i++) {
            double s = -1;
            br_status st = br_parden_score_trunc(br_csv_cell(&c, i, co), br_csv_cell(&c, i, cr), &s);
            double d = fabs(s - stored[f][i]);
            if (d > maxdiff) maxdiff = d;
            exact += s == stored[f][i];
            CHECK_MSG(st == BR_OK && d <= 1e-9, "%s row %zu: braid %.17g vs stored %.17g", files[f], i, s, stored[f][i]);
            CHECK_OK(br_parden_score(&po, br_csv_cell(&c, i, co), br_csv_cell(&c, i, cr), &win[f][i]));
            /* the one-reference fast path and the general path (two equal references) agree */
            br_bleu_opts_t bo;
            br_bleu_opts_default(&bo);
            const char *r2[2] = {br_csv_cell(&c, i, co), br_csv_cell(&c, i, co)};
            br_bleu_stats_t s1, s2;
            CHECK_OK(br_bleu_stats(&bo, r2, 1, br_csv_cell(&c, i, cr), &s1));
            CHECK_OK(br_bleu_stats(&bo, r2, 2, br_csv_cell(&c, i, cr), &s2));
            CHECK_MSG(!memcmp(s1.num, s2.num, sizeof s1.num) && !memcmp(s1.den, s2.den, sizeof s1.den) &&
                          s1.hyp_len == s2.hyp_len && s1.ref_len == s2.ref_len,
                      "%s row %zu: fast and general BLEU statistics differ", files[f], i);
            rows++;
        }
        br_csv_free(&c);
    }
    CHECK_INT(rows, 1072);
    printf("history: %zu rows, %zu bit-identical to the stored bleu, max |diff| %.3g\n", rows, exact, maxdiff);

    /* pilot numbers (SOURCE.md): stored early BLEU 10.1% / 0.916; 60-word metric 11.6% / 0.927 */
    br_roc_t roc;
    CHECK_OK(br_roc_compute(stored[0], n[0], stored[1], n[1], 0.9, &roc));
    printf("stored scores: AUC %.6f, FPR@TPR90 %.4f\n", roc.auc, roc.pts[roc.at].fpr);
    CHECK(roc.reached);
    CHECK_NEAR(roc.auc, 0.916, 0.0005);
    CHECK_NEAR(roc.pts[roc.at].fpr, 0.101, 0.0005);
    CHECK(roc.pts[roc.at].fpr == 56.0 / 552.0); /* the reference's own value, 0.10144927536231885 */
    CHECK(roc.auc == 0.9162468645484949);       /* numpy's, bit for bit */
    br_roc_free(&roc);
    CHECK_OK(br_roc_compute(win[0], n[0], win[1], n[1], 0.9, &roc));
    printf("60-word metric: AUC %.6f, FPR@TPR90 %.4f (threshold %.3f)\n", roc.auc, roc.pts[roc.at].fpr,
           roc.pts[roc.at].threshold);
    CHECK_NEAR(roc.auc, 0.927, 0.0005);
    CHECK_NEAR(roc.pts[roc.at].fpr, 0.116, 0.0005);
    CHECK(roc.pts[roc.at].fpr == 64.0 / 552.0); /* 0.11594202898550725 */
    CHECK(roc.auc == 0.927166945373467);
    /* Their uncertainty: the interval holds the estimate and is neither a point nor the whole
     * range for ~550 rows a class; the held-out operating point is near the in-sample one. */
    br_roc_ci_t ci;
    br_roc_split_t sp;
    CHECK_OK(br_roc_bootstrap(win[0], n[0], win[1], n[1], 0.9, 400, 1, &ci));
    printf("60-word metric: AUC 95%% %.3f-%.3f, FPR %.3f-%.3f\n", ci.auc_lo, ci.auc_hi, ci.fpr_lo, ci.fpr_hi);
    CHECK(ci.auc_lo < roc.auc && roc.auc < ci.auc_hi && ci.auc_hi - ci.auc_lo > 0.01 && ci.auc_hi - ci.auc_lo < 0.08);
    CHECK(ci.fpr_lo < roc.pts[roc.at].fpr && roc.pts[roc.at].fpr < ci.fpr_hi);
    CHECK_OK(br_roc_split(win[0], n[0], win[1], n[1], 0.9, 1, &sp));
    CHECK(sp.nb_fit + sp.nb_test == n[0] && sp.nh_fit + sp.nh_test == n[1]);
    CHECK(sp.tpr_fit >= 0.9 && fabs(sp.tpr_test - 0.9) < 0.06 && sp.fpr_test > 0.03 && sp.fpr_test < 0.25);
    br_roc_free(&roc);
    for (int f = 0; f < 2; f++) {
        free(stored[f]);
        free(win[f]);
    }
    br_buf_free(&dirb);
}

/* Bootstrap intervals and the held-out threshold on data whose answers are known. */
static void test_roc_uncertainty(void)
{
    double b[60], h[40], ub[300], uh[300];
    for (int i = 0; i < 60; i++) b[i] = 0.7 + 0.2 * i / 59.0;
    for (int i = 0; i < 40; i++) h[i] = 0.1 + 0.2 * i / 39.0;
    br_roc_ci_t ci, ci2;
    CHECK_OK(br_roc_bootstrap(b, 60, h, 40, 0.9, 200, 7, &ci));
    /* Perfectly separated: every resample is too. */
    CHECK(ci.n == 200 && ci.auc_lo > 1 - 1e-12 && ci.auc_hi == 1.0 && ci.fpr_lo == 0 && ci.fpr_hi == 0);
    br_roc_split_t sp;
    CHECK_OK(br_roc_split(b, 60, h, 40, 0.9, 3, &sp));
    CHECK(sp.nb_fit == 30 && sp.nb_test == 30 && sp.nh_fit == 20 && sp.nh_test == 20);
    CHECK(sp.threshold > 0.1 && sp.threshold <= 0.7 && sp.fpr_fit == 0 && sp.fpr_test == 0 && sp.tpr_fit >= 0.9);
    CHECK(sp.tpr_test >= 0.8 && sp.auc_test > 1 - 1e-12);
    /* No signal: both classes uniform; the held-out AUC is near 1/2, the interval wide. */
    br_rng_t rng;
    br_rng_seed(&rng, 11);
    for (int i = 0; i < 300; i++) ub[i] = br_rng_double(&rng), uh[i] = br_rng_double(&rng);
    CHECK_OK(br_roc_bootstrap(ub, 300, uh, 300, 0.9, 200, 7, &ci));
    CHECK_OK(br_roc_bootstrap(ub, 300, uh, 300, 0.9, 200, 7, &ci2));
    CHECK(ci.auc_lo == ci2.auc_lo && ci.fpr_hi == ci2.fpr_hi); /* same seed, same interval */
    CHECK(ci.auc_lo < 0.5 + 0.05 && ci.auc_hi > 0.5 - 0.05 && ci.auc_hi - ci.auc_lo > 0.04);
    CHECK_OK(br_roc_bootstrap(ub, 300, uh, 300, 0.9, 200, 8, &ci2));
    CHECK(ci.auc_lo != ci2.auc_lo || ci.auc_hi != ci2.auc_hi);
    CHECK_OK(br_roc_split(ub, 300, uh, 300, 0.9, 5, &sp));
    CHECK(fabs(sp.auc_test - 0.5) < 0.1 && sp.fpr_test > 0.7);
    CHECK_STATUS(br_roc_bootstrap(b, 60, h, 40, 0.9, 1, 7, &ci), BR_EINVAL);
    CHECK_STATUS(br_roc_split(b, 1, h, 40, 0.9, 7, &sp), BR_EINVAL);
}

int main(void)
{
    json_error_t err;
    json_t *fx = json_load_file("tests/ref/bleu_fixture.json", 0, &err);
    CHECK_MSG(fx != NULL, "tests/ref/bleu_fixture.json: %s (line %d)", err.text, err.line);
    if (fx) {
        test_fixture_sentence(fx);
        test_fixture_corpus(fx);
        test_fixture_window(fx);
        test_fixture_roc(fx);
        json_decref(fx);
    }
    test_properties();
    test_roc_uncertainty();
    test_fast_vs_general();
    test_threads();
    test_history();
    return th_exit();
}
