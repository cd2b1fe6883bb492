/* Prometheus metrics (text exposition format 0.0.4): counters, gauges and histograms, each
 * family with a fixed set of label names and any number of label-value series.  Thread-safe
 * (one mutex per registry: updates are a lookup and an add).
 *
 *   br_metrics_t *m; br_metrics_create(&m);
 *   br_metric_t *req = br_metrics_counter(m, "braid_requests_total", "Requests by tenant",
 *                                         "tenant,adapter,code");
 *   br_metric_add(req, 1, "acme", "sql", "200");   // label values in the declared order
 *   char *text = br_metrics_render(m);             // malloc'd, for GET /metrics */
#ifndef BR_SERVE_METRICS_H
#define BR_SERVE_METRICS_H
#include <stddef.h>

#include "base/status.h"

typedef struct br_metrics br_metrics_t;
typedef struct br_metric br_metric_t;

br_status br_metrics_create(br_metrics_t **out);
void br_metrics_free(br_metrics_t *m); /* NULL is a no-op */

/* Families.  labels: comma-separated label names ("" or NULL: none).  Returns NULL only when
 * out of memory; updates on a NULL family are no-ops, so callers need not check. */
br_metric_t *br_metrics_counter(br_metrics_t *m, const char *name, const char *help, const char *labels);
br_metric_t *br_metrics_gauge(br_metrics_t *m, const char *name, const char *help, const char *labels);
/* bounds: nb increasing upper bounds (the +Inf bucket is implicit). */
br_metric_t *br_metrics_histogram(br_metrics_t *m, const char *name, const char *help,
                                  const char *labels, const double *bounds, int nb);

/* Label values follow, one const char * per declared label name (values are escaped). */
void br_metric_add(br_metric_t *f, double v, ...);     /* counter or gauge += v */
void br_metric_set(br_metric_t *f, double v, ...);     /* gauge = v */
void br_metric_observe(br_metric_t *f, double v, ...); /* histogram */
/* Current value of a counter/gauge series (0 when absent), or a histogram's count. */
double br_metric_get(br_metric_t *f, ...);

/* Reading for the console's status (serve/console.h): the family called `name` (NULL when
 * absent); the sum of every series of a family whose label `label` equals `value` (label NULL:
 * every series; a histogram's counts); a histogram's per-bucket counts summed over its series
 * into counts[0..nb] (nb + 1 values, the last the +Inf bucket) and its bounds into bounds[0..nb-1]
 * when not NULL.  br_metric_buckets returns nb + 1, or 0 when f is not a histogram or cap is too
 * small. */
br_metric_t *br_metrics_find(br_metrics_t *m, const char *name);
double br_metric_sum(br_metric_t *f, const char *label, const char *value);
int br_metric_buckets(br_metric_t *f, double *bounds, double *counts, int cap);

/* The whole registry in Prometheus text format; malloc'd, NULL when out of memory. */
char *br_metrics_render(br_metrics_t *m);
#endif
