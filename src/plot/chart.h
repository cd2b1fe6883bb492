/* Charts drawn with base/svg.h: line panels (several series against a shared x axis, nice or
 * log ticks, legend, optional ±band) and heat maps.  Knows nothing of where the numbers come
 * from (plot/runs.h reads run folders).
 *
 * Colours: the Okabe-Ito palette (distinguishable with the common colour-vision deficiencies),
 * line styles add a second cue when colours repeat. */
#ifndef BR_PLOT_CHART_H
#define BR_PLOT_CHART_H
#include <stdbool.h>
#include <stddef.h>

#include "base/svg.h"

#define BR_CHART_COLORS 8
extern const char *const br_chart_palette[BR_CHART_COLORS];
#define BR_CHART_DASHES 5
extern const char *const br_chart_dashes[BR_CHART_DASHES]; /* NULL (solid), "7,3", ..., "4,4" */

typedef struct {
    const char *label;       /* legend entry; NULL: no entry (a faint raw line under its mean) */
    const double *x, *y;     /* (n) points; non-finite y values are gaps */
    const double *band;      /* (n) optional half-width of a shaded band around y (a std) */
    size_t n;
    const char *color;       /* CSS colour */
    const char *dash;        /* NULL: solid */
    double width;            /* stroke width (0: 1.6) */
    double opacity;          /* 0: 1 */
    bool markers;            /* a dot on each point (sparse series such as validation) */
} br_chart_series_t;

typedef struct {
    const char *title, *xlabel, *ylabel;
    bool logx, logy;         /* log10 axis; non-positive values are left out of it */
    const br_chart_series_t *series;
    size_t n_series;
    /* after drawing: the axis ranges (tests check that the data lies inside) */
    double x0, x1, y0, y1;
} br_chart_panel_t;

/* Draws panel p in the box (x, y, w, h) of s (title and axis labels inside the box, the
 * legend in a column of width legend_w to the right of the plot area when legend_w > 0).
 * A panel without finite points draws its frame and "no data". */
void br_chart_panel(br_svg_t *s, double x, double y, double w, double h, double legend_w, br_chart_panel_t *p);

/* A rows x cols heat map of shares in [0, 1] (v[r * cols + c]) in the box (x, y, w, h): one
 * hue from white to dark blue (readable in grey too), each cell's value printed as a
 * percentage when the cell is large enough, and as a tooltip always. */
void br_chart_heatmap(br_svg_t *s, double x, double y, double w, double h, const char *title,
                      const char *const *row_labels, size_t rows, const char *const *col_labels, size_t cols,
                      const double *v);
#endif
