/* Line panels and heat maps (plot/chart.h). */
#include "plot/chart.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Okabe & Ito (2008), "Color Universal Design": black first for the main series. */
const char *const br_chart_palette[BR_CHART_COLORS] = {"#000000", "#E69F00", "#56B4E9", "#009E73",
                                                       "#0072B2", "#D55E00", "#CC79A7", "#F0E442"};
const char *const br_chart_dashes[BR_CHART_DASHES] = {NULL, "7,3", "2,2", "9,3,2,3", "4,4"};

#define AXIS "#444444"
#define GRID "#e6e6e6"
#define TEXT "#222222"

/* The plot area of a panel and its axis transforms. */
typedef struct {
    double px, py, pw, ph;    /* plot area */
    double x0, x1, y0, y1;    /* axis ranges (log10 of them on log axes) */
    bool logx, logy;
} frame_t;

static double tx(const frame_t *f, double v)
{
    if (f->logx) v = v > 0 ? log10(v) : NAN;
    return f->px + (v - f->x0) / (f->x1 - f->x0) * f->pw;
}

static double ty(const frame_t *f, double v)
{
    if (f->logy) v = v > 0 ? log10(v) : NAN;
    return f->py + f->ph - (v - f->y0) / (f->y1 - f->y0) * f->ph;
}

/* Finite (and, on a log axis, positive) data range of the panel; false when there is none. */
static bool data_range(const br_chart_panel_t *p, double *x0, double *x1, double *y0, double *y1)
{
    *x0 = *y0 = HUGE_VAL, *x1 = *y1 = -HUGE_VAL;
    for (size_t k = 0; k < p->n_series; k++) {
        const br_chart_series_t *se = &p->series[k];
        for (size_t i = 0; i < se->n; i++) {
            double x = se->x[i], y = se->y[i], b = se->band && isfinite(se->band[i]) ? fabs(se->band[i]) : 0;
            if (!isfinite(x) || !isfinite(y) || (p->logx && x <= 0)) continue;
            double lo = y - b, hi = y + b;
            if (p->logy && lo <= 0) lo = y;
            if (p->logy && y <= 0) continue;
            *x0 = fmin(*x0, x), *x1 = fmax(*x1, x), *y0 = fmin(*y0, lo), *y1 = fmax(*y1, hi);
        }
    }
    return *x0 <= *x1;
}

/* Ticks of one axis, widening [lo, hi] to them; stores log10 of the range on a log axis. */
static size_t axis_ticks(double *lo, double *hi, bool log_axis, double *t, size_t max)
{
    if (!log_axis) return br_svg_ticks(lo, hi, t, max);
    size_t n = br_svg_log_ticks(lo, hi, t, max);
    *lo = log10(*lo), *hi = log10(*hi);
    return n;
}

static void draw_axes(br_svg_t *s, const frame_t *f, const double *xt, size_t nx, const double *yt, size_t ny)
{
    char lab[32];
    for (size_t i = 0; i < ny; i++) {
        double y = ty(f, yt[i]);
        br_svg_line(s, f->px, y, f->px + f->pw, y, GRID, 1, NULL);
        br_svg_tick_label(lab, sizeof lab, yt[i]);
        br_svg_text(s, f->px - 6, y + 4, BR_SVG_END, 11, 0, TEXT, "%s", lab);
    }
    for (size_t i = 0; i < nx; i++) {
        double x = tx(f, xt[i]);
        br_svg_line(s, x, f->py, x, f->py + f->ph, GRID, 1, NULL);
        br_svg_line(s, x, f->py + f->ph, x, f->py + f->ph + 4, AXIS, 1, NULL);
        br_svg_tick_label(lab, sizeof lab, xt[i]);
        br_svg_text(s, x, f->py + f->ph + 16, BR_SVG_MIDDLE, 11, 0, TEXT, "%s", lab);
    }
    br_svg_line(s, f->px, f->py, f->px, f->py + f->ph, AXIS, 1, NULL);
    br_svg_line(s, f->px, f->py + f->ph, f->px + f->pw, f->py + f->ph, AXIS, 1, NULL);
}

/* Long series (a 100k-step run) in place: of the points that fall in one pixel column, only the
 * lowest and the highest stay, in their order, so the drawn envelope is unchanged and the file
 * stays small.  Gaps (non-finite points) are kept.  Returns the new count. */
static size_t decimate(double *xs, double *ys, size_t n)
{
    size_t m = 0, i = 0;
    while (i < n) {
        if (!isfinite(xs[i]) || !isfinite(ys[i])) {
            xs[m] = xs[i], ys[m++] = ys[i++];
            continue;
        }
        size_t lo = i, hi = i, j = i + 1;
        for (; j < n && isfinite(xs[j]) && isfinite(ys[j]) && floor(xs[j]) == floor(xs[i]); j++) {
            if (ys[j] < ys[lo]) lo = j;
            if (ys[j] > ys[hi]) hi = j;
        }
        size_t a = lo < hi ? lo : hi, b = lo < hi ? hi : lo;
        double xb = xs[b], yb = ys[b];
        xs[m] = xs[a], ys[m++] = ys[a];
        if (b != a) xs[m] = xb, ys[m++] = yb;
        i = j;
    }
    return m;
}

/* The series in screen coordinates: a band polygon, the line, optional markers. */
static void draw_series(br_svg_t *s, const frame_t *f, const br_chart_series_t *se)
{
    double *xs = malloc((2 * se->n + 1) * sizeof *xs), *ys = malloc((2 * se->n + 1) * sizeof *ys);
    if (!xs || !ys) {
        free(xs), free(ys);
        s->err = s->err ? s->err : br_error(BR_ENOMEM, "out of memory drawing a chart");
        return;
    }
    size_t m = 0;
    if (se->band) {
        for (size_t i = 0; i < se->n; i++)
            if (isfinite(se->band[i]) && isfinite(tx(f, se->x[i])) && isfinite(ty(f, se->y[i])))
                xs[m] = tx(f, se->x[i]), ys[m++] = ty(f, se->y[i] + fabs(se->band[i]));
        for (size_t i = se->n; i-- > 0;)
            if (isfinite(se->band[i]) && isfinite(tx(f, se->x[i])) && isfinite(ty(f, se->y[i])))
                xs[m] = tx(f, se->x[i]), ys[m++] = ty(f, fmax(se->y[i] - fabs(se->band[i]), f->logy ? se->y[i] : -HUGE_VAL));
        if (m > 2) br_svg_polygon(s, xs, ys, m, se->color, 0.15);
    }
    for (size_t i = 0; i < se->n; i++) xs[i] = tx(f, se->x[i]), ys[i] = ty(f, se->y[i]);
    size_t n = se->n > 4 * (size_t)f->pw ? decimate(xs, ys, se->n) : se->n;
    br_svg_polyline(s, xs, ys, n, se->color, se->width > 0 ? se->width : 1.6, se->dash, se->opacity > 0 ? se->opacity : 1);
    for (size_t i = 0; se->markers && i < n; i++)
        if (isfinite(xs[i]) && isfinite(ys[i])) br_svg_circle(s, xs[i], ys[i], 2.6, se->color);
    free(xs);
    free(ys);
}

static void draw_legend(br_svg_t *s, double x, double y, double w, double h, const br_chart_panel_t *p)
{
    size_t rows = (size_t)fmax(1, floor((h - 4) / 16)), shown = 0, entries = 0;
    for (size_t k = 0; k < p->n_series; k++) entries += p->series[k].label != NULL;
    br_svg_group(s, "legend");
    for (size_t k = 0; k < p->n_series; k++) {
        const br_chart_series_t *se = &p->series[k];
        if (!se->label) continue;
        if (shown + 1 == rows && entries > rows) {
            br_svg_text(s, x, y + 16.0 * (double)shown + 12, BR_SVG_START, 11, 0, TEXT, "+%zu more", entries - shown);
            break;
        }
        double ly = y + 16.0 * (double)shown + 8;
        br_svg_line(s, x, ly, x + 22, ly, se->color, 2, se->dash);
        if (se->markers) br_svg_circle(s, x + 11, ly, 2.6, se->color);
        size_t fit = (size_t)fmax(4, (w - 28) / 6.5); /* ~6.5 px per character at 11 px */
        int len = (int)strlen(se->label);
        if ((size_t)len > fit) br_svg_text(s, x + 28, ly + 4, BR_SVG_START, 11, 0, TEXT, "%.*s...", (int)fit - 3, se->label);
        else br_svg_text(s, x + 28, ly + 4, BR_SVG_START, 11, 0, TEXT, "%s", se->label);
        shown++;
    }
    br_svg_group_end(s);
}

void br_chart_panel(br_svg_t *s, double x, double y, double w, double h, double legend_w, br_chart_panel_t *p)
{
    frame_t f = {.px = x + 76, .py = y + 26, .logx = p->logx, .logy = p->logy}; /* room for "0.00075" */
    f.pw = w - 76 - (legend_w > 0 ? legend_w + 12 : 12), f.ph = h - 26 - 38;
    br_svg_group(s, "panel");
    if (p->title) br_svg_text(s, f.px + f.pw / 2, y + 16, BR_SVG_MIDDLE, 13, 0, TEXT, "%s", p->title);
    if (p->xlabel)
        br_svg_text(s, f.px + f.pw / 2, y + h - 4, BR_SVG_MIDDLE, 11, 0, TEXT, "%s%s", p->xlabel,
                    p->logx ? " (log scale)" : "");
    if (p->ylabel) br_svg_text(s, x + 14, f.py + f.ph / 2, BR_SVG_MIDDLE, 11, -90, TEXT, "%s", p->ylabel);
    double x0, x1, y0, y1, xt[32], yt[32];
    if (!data_range(p, &x0, &x1, &y0, &y1)) {
        br_svg_rect(s, f.px, f.py, f.pw, f.ph, "none", GRID);
        br_svg_text(s, f.px + f.pw / 2, f.py + f.ph / 2, BR_SVG_MIDDLE, 12, 0, "#888888", "no data");
        p->x0 = p->x1 = p->y0 = p->y1 = NAN;
        br_svg_group_end(s);
        return;
    }
    /* about one tick per 90 px across and per 45 px up */
    size_t nx = axis_ticks(&x0, &x1, p->logx, xt, (size_t)fmin(16, fmax(3, f.pw / 90))),
           ny = axis_ticks(&y0, &y1, p->logy, yt, (size_t)fmin(16, fmax(3, f.ph / 45)));
    f.x0 = x0, f.x1 = x1, f.y0 = y0, f.y1 = y1;
    p->x0 = p->logx ? pow(10, x0) : x0, p->x1 = p->logx ? pow(10, x1) : x1;
    p->y0 = p->logy ? pow(10, y0) : y0, p->y1 = p->logy ? pow(10, y1) : y1;
    draw_axes(s, &f, xt, nx, yt, ny);
    for (size_t k = 0; k < p->n_series; k++) {
        br_svg_group(s, p->series[k].label ? "series" : "series-raw");
        draw_series(s, &f, &p->series[k]);
        br_svg_group_end(s);
    }
    if (legend_w > 0) draw_legend(s, f.px + f.pw + 14, f.py, legend_w, f.ph + 30, p);
    br_svg_group_end(s);
}

/* White (0) to dark blue (1), readable without colour: the value is printed in the cell. */
static void shade(char *out, size_t cap, double v)
{
    v = isfinite(v) ? fmin(1, fmax(0, v)) : 0;
    int r = (int)lround(247 + (8 - 247) * v), g = (int)lround(251 + (48 - 251) * v), b = (int)lround(255 + (107 - 255) * v);
    snprintf(out, cap, "#%02x%02x%02x", r, g, b);
}

void br_chart_heatmap(br_svg_t *s, double x, double y, double w, double h, const char *title,
                      const char *const *row_labels, size_t rows, const char *const *col_labels, size_t cols,
                      const double *v)
{
    if (!rows || !cols) return;
    /* cells at most 90 px wide: a map of few experts stays compact */
    double lx = 78, px = x + lx, py = y + 40, cw = fmin(90, (w - lx - 8) / (double)cols), chh = (h - 44) / (double)rows;
    br_svg_group(s, "heatmap");
    if (title) br_svg_text(s, px + cw * (double)cols / 2, y + 14, BR_SVG_MIDDLE, 12, 0, TEXT, "%s", title);
    for (size_t c = 0; c < cols; c++)
        br_svg_text(s, px + cw * ((double)c + 0.5), py - 6, BR_SVG_MIDDLE, 10, 0, TEXT, "%.16s", col_labels[c]);
    char fill[16], tip[160];
    for (size_t r = 0; r < rows; r++) {
        double cy = py + chh * (double)r;
        br_svg_text(s, px - 6, cy + chh / 2 + 4, BR_SVG_END, 10, 0, TEXT, "%.12s", row_labels[r]);
        for (size_t c = 0; c < cols; c++) {
            double val = v[r * cols + c];
            shade(fill, sizeof fill, val);
            snprintf(tip, sizeof tip, "%s -> %s: %.1f%%", row_labels[r], col_labels[c], 100 * val);
            br_svg_cell(s, px + cw * (double)c, cy, cw - 1, chh - 1, fill, tip);
            if (chh >= 12 && cw >= 26)
                br_svg_text(s, px + cw * ((double)c + 0.5), cy + chh / 2 + 4, BR_SVG_MIDDLE, 10, 0,
                            isfinite(val) && val > 0.5 ? "#ffffff" : TEXT, "%.0f%%", 100 * val);
        }
    }
    br_svg_group_end(s);
}
