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
#endif
