/* A minimal SVG writer: the one place braid emits SVG (plot/chart.h draws charts with it).
 *
 * The document is built in memory and written atomically by br_svg_save.  Drawing calls
 * return nothing: the first failure (out of memory) is kept and returned by br_svg_save, so a
 * chart is a plain sequence of calls.  Text is XML-escaped; numbers are written with two
 * decimals (crisp at any zoom, small files).  Colours are CSS strings ("#0072b2", "none").
 *
 *     br_svg_t s;
 *     br_svg_begin(&s, 640, 400);
 *     br_svg_line(&s, 10, 10, 100, 10, "#000", 1, NULL);
 *     br_svg_text(&s, 50, 30, BR_SVG_MIDDLE, 12, 0, "#000", "loss %s", "train");
 *     br_status st = br_svg_save(&s, "plot.svg");   (frees s in every case)
 */
#ifndef BR_BASE_SVG_H
#define BR_BASE_SVG_H
#include <stddef.h>

#include "base/buf.h"
#include "base/status.h"

typedef struct {
    br_buf_t b;
    br_status err; /* first failure; BR_OK while every call succeeded */
    double w, h;
} br_svg_t;

typedef enum { BR_SVG_START, BR_SVG_MIDDLE, BR_SVG_END } br_svg_anchor;

/* Starts a w x h document (pixels) with a white background and a sans-serif font. */
void br_svg_begin(br_svg_t *s, double w, double h);
/* dash: NULL for a solid line, else an SVG dash array ("6,3"). */
void br_svg_line(br_svg_t *s, double x1, double y1, double x2, double y2, const char *stroke, double width,
                 const char *dash);
void br_svg_rect(br_svg_t *s, double x, double y, double w, double h, const char *fill, const char *stroke);
/* A rectangle with a fill opacity (heat map cells, bands); a <title> tooltip when title != NULL. */
void br_svg_cell(br_svg_t *s, double x, double y, double w, double h, const char *fill, const char *title);
/* n points (xs[i], ys[i]); points that are not finite break the line into pieces. */
void br_svg_polyline(br_svg_t *s, const double *xs, const double *ys, size_t n, const char *stroke, double width,
                     const char *dash, double opacity);
/* A closed filled shape (a ±std band: the upper edge then the lower edge reversed). */
void br_svg_polygon(br_svg_t *s, const double *xs, const double *ys, size_t n, const char *fill, double opacity);
void br_svg_circle(br_svg_t *s, double cx, double cy, double r, const char *fill);
/* Text at (x, y) (baseline), rotated by `rotate` degrees about that point; fmt is printf. */
void br_svg_text(br_svg_t *s, double x, double y, br_svg_anchor anchor, double size, double rotate,
                 const char *fill, const char *fmt, ...) __attribute__((format(printf, 8, 9)));
/* Opens a group with a class (and closes it): lets tests and readers find chart parts. */
void br_svg_group(br_svg_t *s, const char *cls);
void br_svg_group_end(br_svg_t *s);
/* Ends the document and writes it atomically to path; frees s whatever happens. */
br_status br_svg_save(br_svg_t *s, const char *path);
/* Frees s without writing (an error path). NULL-safe fields: may be called twice. */
void br_svg_free(br_svg_t *s);

/* Axis ticks at "nice" steps (1, 2, 2.5 or 5 x 10^k) covering [lo, hi] with at most max ticks
 * (max >= 2): writes them to t and returns their count (>= 2).  *lo and *hi are widened to the
 * outer ticks (a single value gets a range around it). */
size_t br_svg_ticks(double *lo, double *hi, double *t, size_t max);
/* Ticks of a log10 axis over [lo, hi] (0 < lo): the powers of ten inside it, and 2 and 5 times
 * them when it spans three decades or fewer; the ends themselves when fewer than two fall
 * inside.  The range is not widened (decades would waste most of the width). */
size_t br_svg_log_ticks(double *lo, double *hi, double *t, size_t max);
/* A short label for a tick value: 0.0005, 2.5, 40k, 1.2M, 3e-05 (out: at least 16 bytes). */
void br_svg_tick_label(char *out, size_t cap, double v);
#endif
