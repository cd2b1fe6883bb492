/* Plots of run folders (plot/runs.h): reading the logs, then laying out the charts. */
#include "plot/runs.h"

#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/fileio.h"
#include "base/svg.h"
#include "plot/chart.h"

#define MAX_DOMAINS 16   /* validation domains drawn per run (more are left out) */
#define MAX_EXPERTS 64
#define MAX_LAYERS 64
#define WIDTH 980.0
#define LEGEND_W 210.0

typedef struct {
    double *v;
    size_t n, cap;
} vec_t;

static bool vec_push(vec_t *a, double x)
{
    if (a->n == a->cap) {
        size_t cap = a->cap ? 2 * a->cap : 64;
        double *v = realloc(a->v, cap * sizeof *v);
        if (!v) return false;
        a->v = v, a->cap = cap;
    }
    a->v[a->n++] = x;
    return true;
}

/* One run's records as columns.  LM: x tokens, a loss, b lr, c tok/s, lb the MoE load-balancing
 * loss (NaN for a dense model; moe set when some record has it); validation at vx (tokens)
 * with the mean vmean and per domain vdom[d].  RL return: x real steps, a return, b std; rfos: x
 * meta-steps, a mean reward, b known pairs; mfos: x iteration, a shaper, b opponent. */
typedef struct {
    const char *dir;
    char name[128];
    char log[4200];
    br_run_kind kind;
    bool kind_known;
    vec_t x, a, b, c, lb, smooth;
    bool moe;
    vec_t vstep, vx, vmean;
    char *dom[MAX_DOMAINS];
    vec_t vdom[MAX_DOMAINS];
    size_t nd;
    size_t skipped, first_skipped_line;
} run_t;

static void run_free(run_t *r)
{
    vec_t *vs[] = {&r->x, &r->a, &r->b, &r->c, &r->lb, &r->smooth, &r->vstep, &r->vx, &r->vmean};
    for (size_t i = 0; i < sizeof vs / sizeof *vs; i++) free(vs[i]->v);
    for (size_t d = 0; d < r->nd; d++) free(r->dom[d]), free(r->vdom[d].v);
}

const char *br_run_kind_name(br_run_kind k)
{
    switch (k) {
    case BR_RUN_LM: return "LM training";
    case BR_RUN_RL_RETURN: return "rl vdn/qmix/marco";
    case BR_RUN_RFOS: return "rl rfos";
    case BR_RUN_MFOS: return "rl mfos";
    }
    return "?";
}

br_status br_plot_log_path(const char *dir, char *path, size_t cap)
{
    if (!br_dir_exists(dir)) return br_error(BR_ENOTFOUND, "%s: no such folder", dir);
    BR_TRY(br_path_join(path, cap, dir, "train_log.jsonl"));
    if (br_file_exists(path)) return BR_OK;
    BR_TRY(br_path_join(path, cap, dir, "log.jsonl"));
    if (br_file_exists(path)) return BR_OK;
    path[0] = 0;
    return br_error(BR_ENOTFOUND,
                    "%s is not a run folder: it has neither train_log.jsonl (braid train, branch) nor log.jsonl "
                    "(braid rl ...); give the --out folder of a run",
                    dir);
}

static bool num(json_t *o, const char *key, double *v)
{
    json_t *j = json_object_get(o, key);
    if (!json_is_number(j)) return false;
    *v = json_number_value(j);
    return isfinite(*v);
}

/* The domain's column, added (NaN for the earlier validations) the first time it is seen;
 * NULL when there are already MAX_DOMAINS or memory is short. */
static vec_t *domain_column(run_t *r, const char *name)
{
    for (size_t d = 0; d < r->nd; d++)
        if (!strcmp(r->dom[d], name)) return &r->vdom[d];
    if (r->nd == MAX_DOMAINS || !(r->dom[r->nd] = strdup(name))) return NULL;
    vec_t *v = &r->vdom[r->nd++];
    *v = (vec_t){0};
    for (size_t i = 0; i + 1 < r->vx.n; i++)
        if (!vec_push(v, NAN)) return NULL;
    return v;
}

/* A validation record {step, val_loss, val: {domain: loss}}; false when it is not one. */
static bool add_validation(run_t *r, json_t *o, bool *oom)
{
    double step, mean;
    json_t *val = json_object_get(o, "val");
    if (!num(o, "step", &step) || !num(o, "val_loss", &mean)) return false;
    if (!vec_push(&r->vstep, step) || !vec_push(&r->vx, NAN) || !vec_push(&r->vmean, mean)) return !(*oom = true);
    const char *key;
    json_t *jv;
    json_object_foreach(val, key, jv) {
        vec_t *col = domain_column(r, key);
        if (col && !vec_push(col, json_is_number(jv) ? json_number_value(jv) : NAN)) return !(*oom = true);
    }
    for (size_t d = 0; d < r->nd; d++) /* a domain missing from this record */
        if (r->vdom[d].n < r->vx.n && !vec_push(&r->vdom[d], NAN)) return !(*oom = true);
    return true;
}

/* The kind a record belongs to, from its fields; false when none fits. */
static bool record_kind(json_t *o, br_run_kind *k)
{
    double v;
    if (num(o, "step", &v) && (json_object_get(o, "loss") || json_object_get(o, "val_loss"))) *k = BR_RUN_LM;
    else if (num(o, "real_steps", &v) && num(o, "eval_return", &v)) *k = BR_RUN_RL_RETURN;
    else if (num(o, "meta_steps", &v) && num(o, "mean_reward", &v)) *k = BR_RUN_RFOS;
    else if (num(o, "iteration", &v) && num(o, "shaper", &v)) *k = BR_RUN_MFOS;
    else return false;
    return true;
}

/* One record of the run's kind into the columns; false (skipped) when fields are missing. */
static bool add_record(run_t *r, json_t *o, bool *oom)
{
    br_run_kind k;
    if (!json_is_object(o) || !record_kind(o, &k)) return false;
    if (!r->kind_known) r->kind = k, r->kind_known = true;
    if (k != r->kind) return false;
    double x, a, b = NAN, c = NAN, lb = NAN;
    bool ok;
    switch (k) {
    case BR_RUN_LM:
        if (json_object_get(o, "val_loss")) return add_validation(r, o, oom);
        ok = num(o, "tokens", &x) && num(o, "loss", &a);
        if (ok) num(o, "lr", &b), num(o, "tok_per_s", &c), r->moe |= num(o, "moe_load_balance", &lb);
        break;
    case BR_RUN_RL_RETURN:
        ok = num(o, "real_steps", &x) && num(o, "eval_return", &a);
        if (ok) num(o, "eval_std", &b);
        break;
    case BR_RUN_RFOS:
        ok = num(o, "meta_steps", &x) && num(o, "mean_reward", &a);
        if (ok) num(o, "known_pairs", &b);
        break;
    default:
        ok = num(o, "iteration", &x) && num(o, "shaper", &a);
        if (ok) num(o, "opponent", &b);
    }
    if (!ok) return false;
    if (!vec_push(&r->x, x) || !vec_push(&r->a, a) || !vec_push(&r->b, b) || !vec_push(&r->c, c) || !vec_push(&r->lb, lb))
        *oom = true;
    return true;
}

/* Validation x: the tokens of the step record of the same step (tokens per step times the step
 * when that record is missing: every step of a run has the same size). */
static void place_validations(run_t *r, const vec_t *steps)
{
    double per_step = NAN;
    for (size_t i = steps->n; i-- > 0 && !isfinite(per_step);)
        if (steps->v[i] > 0) per_step = r->x.v[i] / steps->v[i];
    for (size_t j = 0; j < r->vx.n; j++) {
        r->vx.v[j] = r->vstep.v[j] * per_step;
        for (size_t i = 0; i < steps->n; i++)
            if (steps->v[i] == r->vstep.v[j]) r->vx.v[j] = r->x.v[i];
    }
}

/* Reads the run's log line by line. */
static br_status read_run(run_t *r)
{
    BR_TRY(br_plot_log_path(r->dir, r->log, sizeof r->log));
    char *text;
    size_t size;
    BR_TRY(br_read_file(r->log, &text, &size));
    vec_t steps = {0};
    bool oom = false;
    size_t lineno = 0;
    for (char *line = text, *next; line && *line && !oom; line = next) {
        next = strchr(line, '\n');
        if (next) *next++ = 0;
        lineno++;
        if (strspn(line, " \t\r") == strlen(line)) continue;
        json_t *o = json_loads(line, 0, NULL);
        size_t nx = r->x.n;
        if (!add_record(r, o, &oom)) {
            if (!r->skipped++) r->first_skipped_line = lineno;
        } else if (r->kind == BR_RUN_LM && r->x.n > nx) {
            double st = NAN;
            num(o, "step", &st);
            oom |= !vec_push(&steps, st);
        }
        json_decref(o);
    }
    free(text);
    if (!oom && r->kind == BR_RUN_LM) place_validations(r, &steps);
    free(steps.v);
    if (oom) return br_error(BR_ENOMEM, "out of memory reading %s", r->log);
    if (!r->x.n && !r->vx.n)
        return br_error(BR_EFORMAT, "%s has no records%s%s", r->log,
                        r->skipped ? " (every line is malformed)" : " yet",
                        r->skipped ? "" : ": has the run finished its first step?");
    return BR_OK;
}

/* Debiased exponential moving average of r->a (the train loss) into r->smooth. */
static bool smooth_loss(run_t *r, double frac)
{
    double span = fmax(1, frac * (double)r->a.n), alpha = 2 / (span + 1), ema = 0, w = 0;
    for (size_t i = 0; i < r->a.n; i++) {
        ema = (1 - alpha) * ema + alpha * r->a.v[i];
        w = (1 - alpha) * w + alpha;
        if (!vec_push(&r->smooth, ema / w)) return false;
    }
    return true;
}

/* ---- layout ---- */

typedef struct {
    br_chart_series_t *s;
    size_t n, cap;
} series_list_t;

static br_chart_series_t *add_series(series_list_t *l)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 16;
        br_chart_series_t *s = realloc(l->s, cap * sizeof *s);
        if (!s) return NULL;
        l->s = s, l->cap = cap;
    }
    br_chart_series_t *s = &l->s[l->n++];
    memset(s, 0, sizeof *s);
    return s;
}

/* Series labels live as long as the plot: a fixed array (series keep pointers into it), sized
 * for every panel's series of every run. */
typedef struct {
    char text[96];
} label_t;
#define LABELS_PER_RUN (3 * (MAX_DOMAINS + 4))

typedef struct {
    run_t *runs;
    size_t n;
    const br_plot_opts_t *o;
    br_svg_t svg;
    double y;            /* next free row of the document */
    label_t *labels;     /* (n * LABELS_PER_RUN) */
    size_t nlabels;
    br_plot_info_t *info;
} plot_t;

static const char *label(plot_t *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static const char *label(plot_t *p, const char *fmt, ...)
{
    BR_ASSERT(p->nlabels < p->n * LABELS_PER_RUN);
    char *t = p->labels[p->nlabels++].text;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t, sizeof p->labels->text, fmt, ap);
    va_end(ap);
    return t;
}

static const char *run_color(size_t r) { return br_chart_palette[r % BR_CHART_COLORS]; }

/* A series' label: the run name first when several runs share the chart. */
#define RUN_LABEL(p, r, what) ((p)->n > 1 ? label((p), "%s %s", (p)->runs[r].name, (what)) : label((p), "%s", (what)))

static void panel(plot_t *p, double h, br_chart_panel_t *c)
{
    br_chart_panel(&p->svg, 0, p->y, WIDTH, h, LEGEND_W, c);
    p->y += h;
}

/* The domain's index among the distinct validation domains of all runs (first seen first), so
 * that a domain has the same colour or dash pattern in every run. */
static size_t domain_index(const plot_t *p, const char *name)
{
    size_t k = 0;
    for (size_t r = 0; r < p->n; r++)
        for (size_t d = 0; d < p->runs[r].nd; d++) {
            const char *dn = p->runs[r].dom[d];
            if (!strcmp(dn, name)) return k;
            bool seen = false;
            for (size_t q = 0; q <= r && !seen; q++)
                for (size_t e = 0; e < (q == r ? d : p->runs[q].nd) && !seen; e++) seen = !strcmp(p->runs[q].dom[e], dn);
            k += !seen;
        }
    return k;
}

/* Loss: train (smoothed over the faint raw line) and validation per domain and their mean.  One
 * run: a colour per domain; several: a colour per run and a dash pattern per domain. */
static bool loss_series(plot_t *p, series_list_t *l)
{
    for (size_t r = 0; r < p->n; r++) {
        run_t *u = &p->runs[r];
        const char *col = run_color(r);
        br_chart_series_t *s = add_series(l);
        if (!s) return false;
        *s = (br_chart_series_t){NULL, u->x.v, u->a.v, NULL, u->x.n, col, NULL, 1, 0.22, false};
        if (!(s = add_series(l))) return false;
        *s = (br_chart_series_t){RUN_LABEL(p, r, "train"), u->x.v, u->smooth.v, NULL, u->smooth.n, col, NULL, 2, 1, false};
        for (size_t d = 0; d <= u->nd; d++) {
            if (d == u->nd && u->nd == 1) break; /* the mean of one domain is that domain */
            const vec_t *v = d < u->nd ? &u->vdom[d] : &u->vmean;
            if (!v->n) continue;
            if (!(s = add_series(l))) return false;
            char what[80];
            snprintf(what, sizeof what, "val%s%s", u->nd ? " " : "", d < u->nd ? u->dom[d] : u->nd ? "mean" : "");
            size_t g = d < u->nd ? domain_index(p, u->dom[d]) : 0;
            const char *vcol = p->n > 1 ? col : d < u->nd ? br_chart_palette[1 + g % (BR_CHART_COLORS - 1)] : "#000000";
            const char *dash = d == u->nd ? br_chart_dashes[BR_CHART_DASHES - 1]
                               : p->n > 1 ? br_chart_dashes[1 + g % (BR_CHART_DASHES - 2)] : NULL;
            *s = (br_chart_series_t){RUN_LABEL(p, r, what), u->vx.v, v->v, NULL, v->n, vcol, dash, 1.6, 1, true};
        }
    }
    return true;
}

typedef enum { COL_LR, COL_TOK_PER_S, COL_LOAD_BALANCE } column_t;

/* One column of every run (MoE runs only for the load balance), one colour per run. */
static bool column_series(plot_t *p, series_list_t *l, column_t col)
{
    for (size_t r = 0; r < p->n; r++) {
        run_t *u = &p->runs[r];
        if (col == COL_LOAD_BALANCE && !u->moe) continue;
        br_chart_series_t *s = add_series(l);
        if (!s) return false;
        const double *y = col == COL_LR ? u->b.v : col == COL_TOK_PER_S ? u->c.v : u->lb.v;
        bool thin = col == COL_TOK_PER_S;
        *s = (br_chart_series_t){p->n > 1 ? label(p, "%s", u->name) : NULL, u->x.v, y, NULL, u->x.n, run_color(r), NULL,
                                 thin ? 1.2 : 1.8, thin ? 0.8 : 1, false};
    }
    return true;
}

static void count_main(plot_t *p, const br_chart_panel_t *c)
{
    for (size_t i = 0; i < c->n_series; i++) p->info->series += c->series[i].label != NULL;
    p->info->x0 = c->x0, p->info->x1 = c->x1, p->info->y0 = c->y0, p->info->y1 = c->y1;
}

static br_status draw_lm(plot_t *p)
{
    series_list_t l = {0};
    bool ok = loss_series(p, &l);
    br_chart_panel_t c = {"loss (nats/token)", "training tokens", "loss", p->o->logx, p->o->logy, l.s, l.n, 0, 0, 0, 0};
    if (ok) panel(p, 400, &c), count_main(p, &c);
    l.n = 0;
    ok = ok && column_series(p, &l, COL_LR);
    c = (br_chart_panel_t){"learning rate", "training tokens", "lr", p->o->logx, false, l.s, l.n, 0, 0, 0, 0};
    if (ok) panel(p, 190, &c);
    l.n = 0;
    ok = ok && column_series(p, &l, COL_TOK_PER_S);
    c = (br_chart_panel_t){"throughput", "training tokens", "tokens/s", p->o->logx, false, l.s, l.n, 0, 0, 0, 0};
    if (ok) panel(p, 190, &c);
    l.n = 0;
    ok = ok && column_series(p, &l, COL_LOAD_BALANCE);
    c = (br_chart_panel_t){"MoE load-balancing loss (1: tokens spread evenly over the experts)", "training tokens",
                           "load balance", p->o->logx, false, l.s, l.n, 0, 0, 0, 0};
    if (ok && l.n) panel(p, 190, &c), p->info->moe_panel = true;
    free(l.s);
    return ok ? BR_OK : br_error(BR_ENOMEM, "out of memory laying out the plot");
}

static br_status draw_rl(plot_t *p)
{
    series_list_t l = {0};
    br_run_kind k = p->runs[0].kind;
    bool ok = true, logx = p->o->logx || k == BR_RUN_RFOS;
    for (size_t r = 0; r < p->n && ok; r++) {
        run_t *u = &p->runs[r];
        br_chart_series_t *s = add_series(&l);
        const char *what = k == BR_RUN_MFOS ? "shaper" : k == BR_RUN_RFOS ? "mean reward" : "greedy return";
        if ((ok = s != NULL))
            *s = (br_chart_series_t){RUN_LABEL(p, r, what), u->x.v, u->a.v, k == BR_RUN_RL_RETURN ? u->b.v : NULL,
                                     u->x.n, run_color(r), NULL, 1.8, 1, k == BR_RUN_RL_RETURN};
        if (ok && k == BR_RUN_MFOS && (ok = (s = add_series(&l)) != NULL))
            *s = (br_chart_series_t){RUN_LABEL(p, r, "opponent"), u->x.v, u->b.v, NULL, u->x.n, run_color(r),
                                     br_chart_dashes[1], 1.8, 1, false};
    }
    static const char *const xl[] = {"", "real environment steps", "meta-steps", "iteration"};
    static const char *const yl[] = {"", "return", "mean reward", "payoff per step"};
    static const char *const tl[] = {"", "greedy return (band: ± std over evaluation episodes)",
                                     "R-FOS: mean reward of the shaper", "M-FOS: per-step payoffs"};
    br_chart_panel_t c = {tl[k], xl[k], yl[k], logx, p->o->logy, l.s, l.n, 0, 0, 0, 0};
    if (ok) panel(p, 400, &c), count_main(p, &c);
    if (ok && k == BR_RUN_RFOS) {
        l.n = 0;
        for (size_t r = 0; r < p->n && ok; r++) {
            br_chart_series_t *s = add_series(&l);
            if ((ok = s != NULL))
                *s = (br_chart_series_t){p->n > 1 ? label(p, "%s", p->runs[r].name) : NULL, p->runs[r].x.v,
                                         p->runs[r].b.v, NULL, p->runs[r].x.n, run_color(r), NULL, 1.8, 1, false};
        }
        c = (br_chart_panel_t){"known (state, action) pairs", "meta-steps", "pairs", true, false, l.s, l.n, 0, 0, 0, 0};
        if (ok) panel(p, 220, &c);
    }
    free(l.s);
    return ok ? BR_OK : br_error(BR_ENOMEM, "out of memory laying out the plot");
}

/* ---- routing heat maps (braid eval --json of an MoE) ---- */

typedef struct {
    size_t L, D, E;
    const char *dom[MAX_DOMAINS];
    char expert[MAX_EXPERTS][64];
    double *v; /* (L, D, E) */
} routing_t;

/* Checks the "routing" object of an eval JSON and copies its shares into r (v allocated). */
static br_status parse_routing(json_t *root, const char *path, routing_t *r)
{
    json_t *layers = json_object_get(json_object_get(root, "routing"), "layers");
    json_t *owners = json_object_get(json_object_get(root, "routing"), "expert_domains");
    if (!json_is_array(layers) || !json_array_size(layers))
        return br_error(BR_EFORMAT, "%s: no routing.layers (is it the --json of `braid eval` on an MoE?)", path);
    r->L = json_array_size(layers);
    json_t *doms = json_object_get(json_array_get(layers, 0), "domains");
    r->D = json_object_size(doms);
    json_t *first = json_object_iter_value(json_object_iter(doms));
    r->E = json_array_size(first);
    if (r->L > MAX_LAYERS || !r->D || r->D > MAX_DOMAINS || !r->E || r->E > MAX_EXPERTS)
        return br_error(BR_EFORMAT, "%s: routing has %zu layers, %zu domains, %zu experts (plotted: 1..%d, 1..%d, 1..%d)",
                        path, r->L, r->D, r->E, MAX_LAYERS, MAX_DOMAINS, MAX_EXPERTS);
    size_t d = 0;
    const char *key;
    json_t *jv;
    json_object_foreach(doms, key, jv) r->dom[d++] = key;
    for (size_t e = 0; e < r->E; e++) {
        const char *own = json_string_value(json_array_get(owners, e));
        snprintf(r->expert[e], sizeof r->expert[e], own ? "e%zu (%.40s)" : "e%zu", e, own);
    }
    if (!(r->v = malloc(r->L * r->D * r->E * sizeof *r->v))) return br_error(BR_ENOMEM, "out of memory");
    for (size_t l = 0; l < r->L; l++) {
        json_t *ld = json_object_get(json_array_get(layers, l), "domains");
        for (d = 0; d < r->D; d++) {
            json_t *row = json_object_get(ld, r->dom[d]);
            if (json_array_size(row) != r->E)
                return br_error(BR_EFORMAT, "%s: routing layer %zu, domain %s: expected %zu expert shares", path, l,
                                r->dom[d], r->E);
            for (size_t e = 0; e < r->E; e++) {
                json_t *x = json_array_get(row, e);
                r->v[(l * r->D + d) * r->E + e] = json_is_number(x) ? json_number_value(x) : NAN;
            }
        }
    }
    return BR_OK;
}

static br_status draw_routing(plot_t *p, const char *path)
{
    json_error_t err;
    json_t *root = json_load_file(path, 0, &err);
    if (!root) return br_error(BR_EFORMAT, "%s:%d: %s", path, err.line, err.text);
    routing_t r = {0};
    br_status s = parse_routing(root, path, &r);
    if (!s) {
        size_t per_row = r.L < 4 ? r.L : 4, rows = (r.L + per_row - 1) / per_row;
        double w = (WIDTH - 20) / (double)per_row, h = 48 + 24 * (double)r.D;
        br_svg_text(&p->svg, WIDTH / 2, p->y + 22, BR_SVG_MIDDLE, 13, 0, "#222222",
                    "MoE routing: share of each domain's tokens (rows) sent to each FFN expert (columns)");
        p->y += 30;
        const char *cols[MAX_EXPERTS];
        for (size_t e = 0; e < r.E; e++) cols[e] = r.expert[e];
        for (size_t l = 0; l < r.L; l++) {
            char title[32];
            snprintf(title, sizeof title, "layer %zu", l);
            br_chart_heatmap(&p->svg, 10 + w * (double)(l % per_row), p->y + h * (double)(l / per_row), w - 10, h - 8,
                             title, r.dom, r.D, cols, r.E, r.v + l * r.D * r.E);
            p->info->heatmaps++;
        }
        p->y += h * (double)rows + 10;
    }
    free(r.v);
    json_decref(root);
    return s;
}

/* The routing file to draw: the option, else RUN/eval.json of a single LM run when present. */
static const char *routing_path(const plot_t *p, char *buf, size_t cap)
{
    if (p->o->routing) return p->o->routing;
    if (p->n != 1 || p->runs[0].kind != BR_RUN_LM || br_path_join(buf, cap, p->runs[0].dir, "eval.json")) return NULL;
    return br_file_exists(buf) ? buf : NULL;
}

/* ---- the whole document ---- */

/* The run's short name (its folder's base name; the whole path when two runs share it). */
static void name_runs(run_t *runs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(runs[i].dir);
        while (len > 1 && runs[i].dir[len - 1] == '/') len--;
        size_t b = len;
        while (b > 0 && runs[i].dir[b - 1] != '/') b--;
        snprintf(runs[i].name, sizeof runs[i].name, "%.*s", (int)(len - b), runs[i].dir + b);
    }
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n; j++)
            if (i != j && !strcmp(runs[i].name, runs[j].name)) snprintf(runs[i].name, sizeof runs[i].name, "%s", runs[i].dir);
}

static br_status read_all(run_t *runs, size_t n, const br_plot_opts_t *o, br_plot_info_t *info)
{
    for (size_t i = 0; i < n; i++) {
        BR_TRY(read_run(&runs[i]));
        if (runs[i].kind != runs[0].kind)
            return br_error(BR_EINVAL, "cannot draw %s (%s) and %s (%s) on one chart: plot them separately",
                            runs[0].dir, br_run_kind_name(runs[0].kind), runs[i].dir, br_run_kind_name(runs[i].kind));
        if (runs[i].kind == BR_RUN_LM && !smooth_loss(&runs[i], o->smooth > 0 ? o->smooth : 0.05))
            return br_error(BR_ENOMEM, "out of memory");
        info->points += runs[i].x.n + runs[i].vx.n;
        if (runs[i].skipped && !info->skipped)
            snprintf(info->first_skipped, sizeof info->first_skipped, "%s:%zu", runs[i].log, runs[i].first_skipped_line);
        info->skipped += runs[i].skipped;
    }
    info->kind = runs[0].kind;
    info->runs = n;
    return BR_OK;
}

static br_status draw(plot_t *p)
{
    char title[600] = "", rbuf[4200];
    size_t len = 0;
    for (size_t i = 0; i < p->n && len < sizeof title; i++)
        len += (size_t)snprintf(title + len, sizeof title - len, "%s%s", i ? ", " : "", p->runs[i].name);
    const char *rpath = routing_path(p, rbuf, sizeof rbuf);
    /* the height is known only after laying out: draw into a tall document, then fix it */
    br_svg_begin(&p->svg, WIDTH, 0);
    size_t head = p->svg.b.len;
    br_svg_text(&p->svg, WIDTH / 2, 24, BR_SVG_MIDDLE, 15, 0, "#000000", "%s", p->o->title ? p->o->title : title);
    p->y = 34;
    br_status s = p->runs[0].kind == BR_RUN_LM ? draw_lm(p) : draw_rl(p);
    if (!s && rpath) s = draw_routing(p, rpath);
    if (s) return s;
    if (p->svg.err) return p->svg.err;
    /* patch the header: the begin call wrote height "0" twice (attribute and viewBox) */
    br_svg_t fixed;
    br_svg_begin(&fixed, WIDTH, ceil(p->y + 10));
    s = fixed.err ? fixed.err : br_buf_append(&fixed.b, br_buf_str(&p->svg.b) + head, p->svg.b.len - head);
    br_svg_free(&p->svg);
    p->svg = fixed;
    return s;
}

br_status br_plot_runs(const char *const *dirs, size_t n, const br_plot_opts_t *opts, br_plot_info_t *info)
{
    br_plot_info_t local;
    if (!info) info = &local;
    memset(info, 0, sizeof *info);
    if (!n) return br_error(BR_EINVAL, "no run folder to plot");
    if (!opts || !opts->out) return br_error(BR_EINVAL, "no output file for the plot");
    run_t *runs = calloc(n, sizeof *runs);
    if (!runs) return br_error(BR_ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) runs[i].dir = dirs[i];
    name_runs(runs, n);
    plot_t p = {.runs = runs, .n = n, .o = opts, .info = info, .labels = calloc(n * LABELS_PER_RUN, sizeof(label_t))};
    br_status s = p.labels ? read_all(runs, n, opts, info) : br_error(BR_ENOMEM, "out of memory");
    if (!s) s = draw(&p);
    if (!s) s = br_svg_save(&p.svg, opts->out);
    else br_svg_free(&p.svg);
    for (size_t i = 0; i < n; i++) run_free(&runs[i]);
    free(runs);
    free(p.labels);
    return s;
}
