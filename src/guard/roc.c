/* Reference-exact ROC (see roc.h). */
#include "guard/roc.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/rng.h"

/* Exactness needs a*b+c rounded twice, never fused: GCC in ISO C mode (-std=c11) does not
 * contract; clang needs the pragma. */
#ifdef __clang__
#pragma STDC FP_CONTRACT OFF
#endif

size_t br_np_arange(double start, double stop, double step, double *out, size_t cap)
{
    /* numpy: len = ceil((stop - start) / step); a[0] = start, a[1] = start + step, then
     * delta = a[1] - a[0] and a[i] = start + i * delta. */
    double v = ceil((stop - start) / step);
    if (!(v > 0)) return 0;
    size_t len = (size_t)v;
    if (cap) {
        double next = start + step, delta = next - start;
        for (size_t i = 0; i < len && i < cap; i++)
            out[i] = i == 0 ? start : i == 1 ? next : start + (double)i * delta;
    }
    return len;
}

/* numpy's pairwise_sum for float64 (loops_utils.h): < 8 items a plain loop; <= 128 items eight
 * accumulators; else split in halves at a multiple of 8. */
static double pairwise(const double *a, size_t n)
{
    if (n < 8) {
        double res = 0.;
        for (size_t i = 0; i < n; i++) res += a[i];
        return res;
    } else if (n <= 128) {
        double r[8], res;
        size_t i;
        for (int j = 0; j < 8; j++) r[j] = a[j];
        for (i = 8; i < n - (n % 8); i += 8)
            for (int j = 0; j < 8; j++) r[j] += a[i + (size_t)j];
        res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for (; i < n; i++) res += a[i];
        return res;
    } else {
        size_t n2 = n / 2;
        n2 -= n2 % 8;
        return pairwise(a, n2) + pairwise(a + n2, n - n2);
    }
}

double br_np_sum(const double *x, size_t n)
{
    /* add.reduce starts from the identity 0.0, then adds the pairwise sum */
    double acc = 0.0;
    return acc + pairwise(x, n);
}

double br_np_trapz(const double *y, const double *x, size_t n)
{
    if (n < 2) return 0.0;
    double *v = malloc(sizeof(double) * (n - 1));
    if (!v) return NAN;
    for (size_t i = 0; i + 1 < n; i++) {
        double d = x[i + 1] - x[i];
        double s = y[i + 1] + y[i];
        double p = d * s;
        v[i] = p / 2.0;
    }
    double r = br_np_sum(v, n - 1);
    free(v);
    return r;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* count of sorted[] < t */
static size_t count_below(const double *sorted, size_t n, double t)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (sorted[mid] < t) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

typedef struct {
    br_roc_point_t p;
    size_t idx;
} keyed_t;

static int cmp_point(const void *a, const void *b)
{
    const keyed_t *x = a, *y = b;
    if (x->p.fpr != y->p.fpr) return x->p.fpr < y->p.fpr ? -1 : 1;
    if (x->p.tpr != y->p.tpr) return x->p.tpr < y->p.tpr ? -1 : 1;
    return (x->idx > y->idx) - (x->idx < y->idx); /* Python's sort is stable */
}

br_status br_roc_compute(const double *benign, size_t nb, const double *harmful, size_t nh, double target_tpr,
                         br_roc_t *roc)
{
    memset(roc, 0, sizeof *roc);
    if (nb == 0 || nh == 0)
        return br_error(BR_EINVAL, "roc: need benign and harmful scores (got %zu benign, %zu harmful)", nb, nh);
    for (size_t i = 0; i < nb; i++)
        if (isnan(benign[i])) return br_error(BR_EINVAL, "roc: benign score %zu is NaN", i);
    for (size_t i = 0; i < nh; i++)
        if (isnan(harmful[i])) return br_error(BR_EINVAL, "roc: harmful score %zu is NaN", i);
    size_t nt = br_np_arange(-0.01, 1.01, 0.001, NULL, 0);
    double *b = malloc(sizeof(double) * nb), *h = malloc(sizeof(double) * nh);
    double *th = malloc(sizeof(double) * nt), *xs = malloc(sizeof(double) * nt), *ys = malloc(sizeof(double) * nt);
    keyed_t *k = malloc(sizeof(keyed_t) * nt);
    roc->pts = malloc(sizeof(br_roc_point_t) * nt);
    if (!b || !h || !th || !xs || !ys || !k || !roc->pts) {
        free(b); free(h); free(th); free(xs); free(ys); free(k);
        br_roc_free(roc);
        return br_error(BR_ENOMEM, "roc: out of memory");
    }
    memcpy(b, benign, sizeof(double) * nb);
    memcpy(h, harmful, sizeof(double) * nh);
    qsort(b, nb, sizeof(double), cmp_double);
    qsort(h, nh, sizeof(double), cmp_double);
    br_np_arange(-0.01, 1.01, 0.001, th, nt);
    for (size_t i = 0; i < nt; i++) {
        size_t tp = count_below(h, nh, th[i]), fp = count_below(b, nb, th[i]);
        k[i].p.threshold = th[i];
        k[i].p.tpr = (double)tp / (double)nh; /* TP / (TP + FN) */
        k[i].p.fpr = (double)fp / (double)nb; /* FP / (FP + TN) */
        k[i].idx = i;
    }
    qsort(k, nt, sizeof(keyed_t), cmp_point);
    for (size_t i = 0; i < nt; i++) {
        roc->pts[i] = k[i].p;
        xs[i] = k[i].p.fpr;
        ys[i] = k[i].p.tpr;
    }
    roc->n = nt;
    roc->auc = br_np_trapz(ys, xs, nt);
    roc->target_tpr = target_tpr;
    roc->at = 0;
    roc->reached = false;
    for (size_t i = 0; i < nt; i++)
        if (ys[i] >= target_tpr) {
            roc->at = i;
            roc->reached = true;
            break;
        }
    free(b); free(h); free(th); free(xs); free(ys); free(k);
    return BR_OK;
}

void br_roc_free(br_roc_t *roc)
{
    if (!roc) return;
    free(roc->pts);
    roc->pts = NULL;
    roc->n = 0;
}

/* numpy.percentile's default (linear interpolation) of a sorted array. */
static double percentile(const double *sorted, int n, double q)
{
    double pos = q * (n - 1);
    int i = (int)floor(pos);
    if (i >= n - 1) return sorted[n - 1];
    return sorted[i] + (pos - i) * (sorted[i + 1] - sorted[i]);
}

br_status br_roc_bootstrap(const double *benign, size_t nb, const double *harmful, size_t nh, double target_tpr,
                           int n, uint64_t seed, br_roc_ci_t *ci)
{
    memset(ci, 0, sizeof *ci);
    if (n < 2 || n > 1000000) return br_error(BR_EINVAL, "roc bootstrap: %d resamples; use 2 to 1000000", n);
    double *b = malloc(sizeof(double) * (nb ? nb : 1)), *h = malloc(sizeof(double) * (nh ? nh : 1));
    double *auc = malloc(sizeof(double) * (size_t)n), *fpr = malloc(sizeof(double) * (size_t)n);
    br_status st = BR_OK;
    if (!b || !h || !auc || !fpr) st = br_error(BR_ENOMEM, "roc bootstrap: out of memory");
    br_rng_t rng;
    br_rng_seed(&rng, seed);
    for (int r = 0; r < n && !st; r++) {
        for (size_t i = 0; i < nb; i++) b[i] = benign[br_rng_below(&rng, nb)];
        for (size_t i = 0; i < nh; i++) h[i] = harmful[br_rng_below(&rng, nh)];
        br_roc_t roc;
        st = br_roc_compute(b, nb, h, nh, target_tpr, &roc);
        if (st) break;
        auc[r] = roc.auc;
        fpr[r] = roc.pts[roc.at].fpr;
        br_roc_free(&roc);
    }
    if (!st) {
        qsort(auc, (size_t)n, sizeof *auc, cmp_double);
        qsort(fpr, (size_t)n, sizeof *fpr, cmp_double);
        ci->n = n;
        ci->auc_lo = percentile(auc, n, 0.025);
        ci->auc_hi = percentile(auc, n, 0.975);
        ci->fpr_lo = percentile(fpr, n, 0.025);
        ci->fpr_hi = percentile(fpr, n, 0.975);
    }
    free(b), free(h), free(auc), free(fpr);
    return st;
}

/* Fisher-Yates shuffle of a copy of x[0..n) into out. */
static void shuffled(br_rng_t *rng, const double *x, size_t n, double *out)
{
    memcpy(out, x, n * sizeof *out);
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)br_rng_below(rng, i);
        double t = out[i - 1];
        out[i - 1] = out[j];
        out[j] = t;
    }
}

static double flagged_share(const double *x, size_t n, double t)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) k += x[i] < t;
    return (double)k / (double)n;
}

br_status br_roc_split(const double *benign, size_t nb, const double *harmful, size_t nh, double target_tpr,
                       uint64_t seed, br_roc_split_t *out)
{
    memset(out, 0, sizeof *out);
    if (nb < 2 || nh < 2)
        return br_error(BR_EINVAL, "roc split: need at least 2 benign and 2 harmful rows (got %zu, %zu)", nb, nh);
    double *b = malloc(sizeof(double) * nb), *h = malloc(sizeof(double) * nh);
    if (!b || !h) {
        free(b), free(h);
        return br_error(BR_ENOMEM, "roc split: out of memory");
    }
    br_rng_t rng;
    br_rng_seed(&rng, seed);
    shuffled(&rng, benign, nb, b);
    shuffled(&rng, harmful, nh, h);
    out->nb_fit = nb / 2, out->nh_fit = nh / 2;
    out->nb_test = nb - out->nb_fit, out->nh_test = nh - out->nh_fit;
    br_roc_t fit, test;
    br_status st = br_roc_compute(b, out->nb_fit, h, out->nh_fit, target_tpr, &fit);
    if (!st) {
        const br_roc_point_t *p = &fit.pts[fit.at];
        out->threshold = p->threshold;
        out->tpr_fit = p->tpr;
        out->fpr_fit = p->fpr;
        br_roc_free(&fit);
        st = br_roc_compute(b + out->nb_fit, out->nb_test, h + out->nh_fit, out->nh_test, target_tpr, &test);
    }
    if (!st) {
        out->auc_test = test.auc;
        br_roc_free(&test);
        out->tpr_test = flagged_share(h + out->nh_fit, out->nh_test, out->threshold);
        out->fpr_test = flagged_share(b + out->nb_fit, out->nb_test, out->threshold);
    }
    free(b), free(h);
    return st;
}
