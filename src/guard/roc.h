/* ROC of a score-based detector, computed exactly as the PARDEN reference does:
 * positive = harmful, a case is flagged when score < t; thresholds t = numpy.arange(-0.01,
 * 1.01, 0.001) (numpy's own values, accumulation included); TPR = TP / (TP + FN),
 * FPR = FP / (FP + TN); the (FPR, TPR) points sorted by (FPR, TPR); AUC =
 * sklearn.metrics.auc = numpy.trapz over the sorted points (with numpy's pairwise summation);
 * FPR at a target TPR = the FPR of the first sorted point whose TPR >= target (numpy.argmax:
 * the first point when none reaches it). */
#ifndef BR_GUARD_ROC_H
#define BR_GUARD_ROC_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "base/status.h"

typedef struct {
    double threshold, tpr, fpr;
} br_roc_point_t;

typedef struct {
    br_roc_point_t *pts; /* sorted by (fpr, tpr); ties keep ascending thresholds */
    size_t n;
    double auc;
    size_t at;           /* index of the point at the target TPR */
    bool reached;        /* some point has TPR >= target */
    double target_tpr;
} br_roc_t;

/* numpy.arange(start, stop, step) for doubles: fills out (up to cap values) and returns the
 * length numpy would give (call with cap 0 to size the buffer). */
size_t br_np_arange(double start, double stop, double step, double *out, size_t cap);
/* numpy.add.reduce over a contiguous float64 array (pairwise summation, blocks of 8). */
double br_np_sum(const double *x, size_t n);
/* numpy.trapz(y, x). */
double br_np_trapz(const double *y, const double *x, size_t n);

/* The ROC with the reference thresholds. Scores must be finite (NaN is rejected, naming the
 * index). Free with br_roc_free. */
br_status br_roc_compute(const double *benign, size_t nb, const double *harmful, size_t nh, double target_tpr,
                         br_roc_t *roc);
void br_roc_free(br_roc_t *roc);

/* How far the figures of a finite sample can be trusted: n bootstrap resamples (benign and
 * harmful rows drawn with replacement separately, so both counts stay fixed), each through
 * br_roc_compute; 95% percentile intervals of the AUC and of the FPR at the target TPR. */
typedef struct {
    int n;
    double auc_lo, auc_hi;
    double fpr_lo, fpr_hi;
} br_roc_ci_t;

br_status br_roc_bootstrap(const double *benign, size_t nb, const double *harmful, size_t nh, double target_tpr,
                           int n, uint64_t seed, br_roc_ci_t *ci);

/* The threshold chosen on one half and judged on the other: each class is shuffled (seed) and
 * split in two; the threshold is the reference grid's threshold of the fit half's point at the
 * target TPR; the held-out half reports TPR and FPR at that threshold (flagged = score < t) and
 * its own AUC.  An honest operating point: choosing the threshold on the same rows it is
 * scored on flatters it. */
typedef struct {
    size_t nb_fit, nh_fit, nb_test, nh_test;
    double threshold;
    double tpr_fit, fpr_fit;
    double tpr_test, fpr_test, auc_test;
} br_roc_split_t;

br_status br_roc_split(const double *benign, size_t nb, const double *harmful, size_t nh, double target_tpr,
                       uint64_t seed, br_roc_split_t *out);
#endif
