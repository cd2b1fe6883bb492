#include "serve/metrics.h"

#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"

#define MAX_LABELS 6
/* Series per family at most: past it, new label sets are counted in one series whose every
 * label is "_other", so no client can grow the registry (or /metrics) without bound. */
#define MAX_SERIES 1024

typedef enum { M_COUNTER, M_GAUGE, M_HISTOGRAM } mkind;

typedef struct {
    char *labels;     /* rendered: tenant="a",adapter="b" ("" for none) */
    double value;     /* counter/gauge; histogram sum */
    double *buckets;  /* histogram: (nb + 1) cumulative at render, per-bucket here */
    double count;
} series_t;

struct br_metric {
    br_metrics_t *reg;
    char *name, *help;
    mkind kind;
    int nlabels;
    char *label_names[MAX_LABELS];
    double *bounds;
    int nb;
    series_t *series;
    size_t n, cap;
    uint32_t *slots;  /* open-addressing hash of series (index + 1; 0 empty), 2 * MAX_SERIES + 2 */
    size_t nslots;
};

struct br_metrics {
    pthread_mutex_t mu;
    br_metric_t **fams;
    size_t n, cap;
};

br_status br_metrics_create(br_metrics_t **out)
{
    br_metrics_t *m = calloc(1, sizeof *m);
    if (!m) return br_error(BR_ENOMEM, "metrics: out of memory");
    pthread_mutex_init(&m->mu, NULL);
    *out = m;
    return BR_OK;
}

static void family_free(br_metric_t *f)
{
    for (size_t i = 0; i < f->n; i++) {
        free(f->series[i].labels);
        free(f->series[i].buckets);
    }
    for (int i = 0; i < f->nlabels; i++) free(f->label_names[i]);
    free(f->series);
    free(f->slots);
    free(f->bounds);
    free(f->name);
    free(f->help);
    free(f);
}

void br_metrics_free(br_metrics_t *m)
{
    if (!m) return;
    for (size_t i = 0; i < m->n; i++) family_free(m->fams[i]);
    free(m->fams);
    pthread_mutex_destroy(&m->mu);
    free(m);
}

static br_metric_t *family_new(br_metrics_t *m, const char *name, const char *help, const char *labels,
                               mkind kind, const double *bounds, int nb)
{
    br_metric_t *f = calloc(1, sizeof *f);
    if (!f) return NULL;
    f->reg = m;
    f->kind = kind;
    f->name = strdup(name);
    f->help = strdup(help);
    bool ok = f->name && f->help;
    if (labels && *labels) {
        const char *p = labels;
        while (ok && *p && f->nlabels < MAX_LABELS) {
            const char *c = strchr(p, ',');
            size_t n = c ? (size_t)(c - p) : strlen(p);
            f->label_names[f->nlabels] = strndup(p, n);
            ok = f->label_names[f->nlabels++] != NULL;
            p += n + (c ? 1 : 0);
        }
    }
    f->nslots = 2 * MAX_SERIES + 2;
    f->slots = ok ? calloc(f->nslots, sizeof *f->slots) : NULL;
    ok = ok && f->slots;
    if (ok && kind == M_HISTOGRAM) {
        f->bounds = malloc((size_t)(nb > 0 ? nb : 1) * sizeof *f->bounds);
        ok = f->bounds != NULL;
        if (ok) memcpy(f->bounds, bounds, (size_t)nb * sizeof *bounds);
        f->nb = nb;
    }
    pthread_mutex_lock(&m->mu);
    if (ok && m->n == m->cap) {
        size_t nc = m->cap ? 2 * m->cap : 32;
        br_metric_t **nf = realloc(m->fams, nc * sizeof *nf);
        if (nf) {
            m->fams = nf;
            m->cap = nc;
        } else {
            ok = false;
        }
    }
    if (ok) m->fams[m->n++] = f;
    pthread_mutex_unlock(&m->mu);
    if (!ok) {
        family_free(f);
        return NULL;
    }
    return f;
}

br_metric_t *br_metrics_counter(br_metrics_t *m, const char *name, const char *help, const char *labels)
{
    return family_new(m, name, help, labels, M_COUNTER, NULL, 0);
}
br_metric_t *br_metrics_gauge(br_metrics_t *m, const char *name, const char *help, const char *labels)
{
    return family_new(m, name, help, labels, M_GAUGE, NULL, 0);
}
br_metric_t *br_metrics_histogram(br_metrics_t *m, const char *name, const char *help, const char *labels,
                                  const double *bounds, int nb)
{
    return family_new(m, name, help, labels, M_HISTOGRAM, bounds, nb);
}

/* Escapes a label value as the exposition format requires (\\, \", \n). */
static void append_escaped(char *buf, size_t cap, size_t *len, const char *v)
{
    for (; *v && *len + 3 < cap; v++) {
        if (*v == '\\' || *v == '"') {
            buf[(*len)++] = '\\';
            buf[(*len)++] = *v;
        } else if (*v == '\n') {
            buf[(*len)++] = '\\';
            buf[(*len)++] = 'n';
        } else {
            buf[(*len)++] = *v;
        }
    }
    buf[*len] = 0;
}

static void format_labels(const br_metric_t *f, va_list ap, char *buf, size_t cap)
{
    size_t len = 0;
    buf[0] = 0;
    for (int i = 0; i < f->nlabels; i++) {
        const char *v = va_arg(ap, const char *);
        len += (size_t)snprintf(buf + len, cap - len, "%s%s=\"", i ? "," : "", f->label_names[i]);
        if (len >= cap) len = cap - 1;
        append_escaped(buf, cap, &len, v ? v : "");
        if (len + 2 < cap) {
            buf[len++] = '"';
            buf[len] = 0;
        }
    }
}

static uint64_t hash_str(const char *p)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *p; p++) h = (h ^ (unsigned char)*p) * 1099511628211ull;
    return h;
}

/* The slot holding `labels`, or the empty slot where it would go.  Caller holds the mutex. */
static uint32_t *slot_of(const br_metric_t *f, const char *labels)
{
    size_t i = (size_t)(hash_str(labels) % f->nslots);
    for (;;) { /* the table is never more than half full: this ends */
        uint32_t *sl = &f->slots[i];
        if (!*sl || !strcmp(f->series[*sl - 1].labels, labels)) return sl;
        i = (i + 1) % f->nslots;
    }
}

/* Every label "_other": where series past MAX_SERIES go. */
static void overflow_labels(const br_metric_t *f, char *buf, size_t cap)
{
    size_t len = 0;
    buf[0] = 0;
    for (int i = 0; i < f->nlabels && len < cap; i++)
        len += (size_t)snprintf(buf + len, cap - len, "%s%s=\"_other\"", i ? "," : "", f->label_names[i]);
}

/* Caller holds the registry mutex.  NULL when out of memory. */
static series_t *find_series(br_metric_t *f, const char *labels)
{
    uint32_t *sl = slot_of(f, labels);
    if (*sl) return &f->series[*sl - 1];
    char other[512];
    if (f->n >= MAX_SERIES - 1) { /* full but for the overflow series' place */
        overflow_labels(f, other, sizeof other);
        labels = other;
        sl = slot_of(f, labels);
        if (*sl) return &f->series[*sl - 1];
    }
    if (f->n == f->cap) {
        size_t nc = f->cap ? 2 * f->cap : 8;
        series_t *ns = realloc(f->series, nc * sizeof *ns);
        if (!ns) return NULL;
        f->series = ns;
        f->cap = nc;
    }
    series_t *s = &f->series[f->n];
    memset(s, 0, sizeof *s);
    s->labels = strdup(labels);
    if (f->kind == M_HISTOGRAM) s->buckets = calloc((size_t)f->nb + 1, sizeof *s->buckets);
    if (!s->labels || (f->kind == M_HISTOGRAM && !s->buckets)) {
        free(s->labels);
        free(s->buckets);
        return NULL;
    }
    *sl = (uint32_t)++f->n;
    return s;
}

typedef enum { OP_ADD, OP_SET, OP_OBSERVE } op_t;

static void update(br_metric_t *f, op_t op, double v, va_list ap)
{
    char labels[1024];
    format_labels(f, ap, labels, sizeof labels);
    pthread_mutex_lock(&f->reg->mu);
    series_t *s = find_series(f, labels);
    if (s) {
        if (op == OP_ADD) s->value += v;
        else if (op == OP_SET) s->value = v;
        else {
            int b = 0;
            while (b < f->nb && v > f->bounds[b]) b++;
            s->buckets[b] += 1;
            s->count += 1;
            s->value += v;
        }
    }
    pthread_mutex_unlock(&f->reg->mu);
}

void br_metric_add(br_metric_t *f, double v, ...)
{
    if (!f) return;
    va_list ap;
    va_start(ap, v);
    update(f, OP_ADD, v, ap);
    va_end(ap);
}

void br_metric_set(br_metric_t *f, double v, ...)
{
    if (!f) return;
    va_list ap;
    va_start(ap, v);
    update(f, OP_SET, v, ap);
    va_end(ap);
}

void br_metric_observe(br_metric_t *f, double v, ...)
{
    if (!f || f->kind != M_HISTOGRAM) return;
    va_list ap;
    va_start(ap, v);
    update(f, OP_OBSERVE, v, ap);
    va_end(ap);
}

double br_metric_get(br_metric_t *f, ...)
{
    if (!f) return 0;
    char labels[1024];
    va_list ap;
    va_start(ap, f);
    format_labels(f, ap, labels, sizeof labels);
    va_end(ap);
    double r = 0;
    pthread_mutex_lock(&f->reg->mu);
    uint32_t *sl = slot_of(f, labels);
    if (*sl) r = f->kind == M_HISTOGRAM ? f->series[*sl - 1].count : f->series[*sl - 1].value;
    pthread_mutex_unlock(&f->reg->mu);
    return r;
}

br_metric_t *br_metrics_find(br_metrics_t *m, const char *name)
{
    br_metric_t *f = NULL;
    pthread_mutex_lock(&m->mu);
    for (size_t i = 0; i < m->n && !f; i++)
        if (!strcmp(m->fams[i]->name, name)) f = m->fams[i];
    pthread_mutex_unlock(&m->mu);
    return f;
}

/* Does a rendered label set hold label="value" (escaped as rendered)? */
static bool has_label(const char *labels, const char *want)
{
    size_t n = strlen(want);
    for (const char *p = labels; (p = strstr(p, want)); p++)
        if ((p == labels || p[-1] == ',') && (p[n] == ',' || !p[n])) return true;
    return false;
}

double br_metric_sum(br_metric_t *f, const char *label, const char *value)
{
    if (!f) return 0;
    char want[512] = "";
    if (label) {
        size_t len = (size_t)snprintf(want, sizeof want, "%s=\"", label);
        if (len >= sizeof want) return 0;
        append_escaped(want, sizeof want, &len, value ? value : "");
        if (len + 2 >= sizeof want) return 0;
        want[len++] = '"';
        want[len] = 0;
    }
    double r = 0;
    pthread_mutex_lock(&f->reg->mu);
    for (size_t i = 0; i < f->n; i++)
        if (!label || has_label(f->series[i].labels, want))
            r += f->kind == M_HISTOGRAM ? f->series[i].count : f->series[i].value;
    pthread_mutex_unlock(&f->reg->mu);
    return r;
}

int br_metric_buckets(br_metric_t *f, double *bounds, double *counts, int cap)
{
    if (!f || f->kind != M_HISTOGRAM || cap < f->nb + 1) return 0;
    pthread_mutex_lock(&f->reg->mu);
    for (int b = 0; b <= f->nb; b++) {
        counts[b] = 0;
        if (bounds && b < f->nb) bounds[b] = f->bounds[b];
        for (size_t i = 0; i < f->n; i++) counts[b] += f->series[i].buckets[b];
    }
    pthread_mutex_unlock(&f->reg->mu);
    return f->nb + 1;
}

/* The rendered text; the first failure sticks and the render returns NULL. */
typedef struct {
    br_buf_t buf;
    br_status st;
} render_t;

static void sb_printf(render_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(render_t *b, const char *fmt, ...)
{
    if (b->st) return;
    va_list ap;
    va_start(ap, fmt);
    b->st = br_buf_vprintf(&b->buf, fmt, ap);
    va_end(ap);
}

static void fmt_value(char *buf, size_t cap, double v)
{
    if (isinf(v)) snprintf(buf, cap, v > 0 ? "+Inf" : "-Inf");
    else if (v == floor(v) && fabs(v) < 1e15) snprintf(buf, cap, "%.0f", v);
    else snprintf(buf, cap, "%.9g", v);
}

char *br_metrics_render(br_metrics_t *m)
{
    render_t b = {BR_BUF_INIT, BR_OK};
    static const char *kinds[] = {"counter", "gauge", "histogram"};
    char v[64], le[64];
    pthread_mutex_lock(&m->mu);
    for (size_t i = 0; i < m->n; i++) {
        br_metric_t *f = m->fams[i];
        sb_printf(&b, "# HELP %s %s\n# TYPE %s %s\n", f->name, f->help, f->name, kinds[f->kind]);
        if (f->nlabels == 0 && f->n == 0 && f->kind != M_HISTOGRAM) sb_printf(&b, "%s 0\n", f->name);
        for (size_t j = 0; j < f->n; j++) {
            series_t *s = &f->series[j];
            const char *sep = s->labels[0] ? "," : "";
            if (f->kind != M_HISTOGRAM) {
                fmt_value(v, sizeof v, s->value);
                if (s->labels[0]) sb_printf(&b, "%s{%s} %s\n", f->name, s->labels, v);
                else sb_printf(&b, "%s %s\n", f->name, v);
                continue;
            }
            double cum = 0;
            for (int k = 0; k <= f->nb; k++) {
                cum += s->buckets[k];
                if (k < f->nb) fmt_value(le, sizeof le, f->bounds[k]);
                else snprintf(le, sizeof le, "+Inf");
                fmt_value(v, sizeof v, cum);
                sb_printf(&b, "%s_bucket{%s%sle=\"%s\"} %s\n", f->name, s->labels, sep, le, v);
            }
            fmt_value(v, sizeof v, s->value);
            if (s->labels[0]) sb_printf(&b, "%s_sum{%s} %s\n", f->name, s->labels, v);
            else sb_printf(&b, "%s_sum %s\n", f->name, v);
            fmt_value(v, sizeof v, s->count);
            if (s->labels[0]) sb_printf(&b, "%s_count{%s} %s\n", f->name, s->labels, v);
            else sb_printf(&b, "%s_count %s\n", f->name, v);
        }
    }
    pthread_mutex_unlock(&m->mu);
    if (b.st || br_buf_append(&b.buf, "", 0)) { /* the append: an empty registry still returns "" */
        br_buf_free(&b.buf);
        return NULL;
    }
    return b.buf.data;
}
