/* A minimal SVG writer (base/svg.h). */
#include "base/svg.h"

#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "base/fileio.h"

static void put(br_svg_t *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(br_svg_t *s, const char *fmt, ...)
{
    if (s->err) return;
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof tmp) { /* every format here is short: a bug, not input */
        s->err = br_error(BR_ERANGE, "svg: element too long");
        return;
    }
    s->err = br_buf_append(&s->b, tmp, (size_t)n);
}

/* XML text content / attribute value: & < > " escaped. */
static void put_escaped(br_svg_t *s, const char *t)
{
    for (; *t && !s->err; t++) {
        switch (*t) {
        case '&': s->err = br_buf_puts(&s->b, "&amp;"); break;
        case '<': s->err = br_buf_puts(&s->b, "&lt;"); break;
        case '>': s->err = br_buf_puts(&s->b, "&gt;"); break;
        case '"': s->err = br_buf_puts(&s->b, "&quot;"); break;
        default:
            /* control characters are not allowed in XML 1.0 */
            s->err = br_buf_append(&s->b, (unsigned char)*t < 0x20 ? " " : t, 1);
        }
    }
}

void br_svg_begin(br_svg_t *s, double w, double h)
{
    br_buf_init(&s->b);
    s->err = BR_OK;
    s->w = w, s->h = h;
    put(s, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
           "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" "
           "font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\" font-size=\"12\">\n",
        w, h, w, h);
    put(s, "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n");
}

static void put_dash(br_svg_t *s, const char *dash)
{
    if (dash && *dash) {
        put(s, " stroke-dasharray=\"");
        put_escaped(s, dash);
        put(s, "\"");
    }
}

void br_svg_line(br_svg_t *s, double x1, double y1, double x2, double y2, const char *stroke, double width,
                 const char *dash)
{
    put(s, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\" stroke=\"", x1, y1, x2, y2);
    put_escaped(s, stroke);
    put(s, "\" stroke-width=\"%.2g\"", width);
    put_dash(s, dash);
    put(s, "/>\n");
}

void br_svg_rect(br_svg_t *s, double x, double y, double w, double h, const char *fill, const char *stroke)
{
    put(s, "<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" fill=\"", x, y, w, h);
    put_escaped(s, fill);
    put(s, "\" stroke=\"");
    put_escaped(s, stroke ? stroke : "none");
    put(s, "\"/>\n");
}

void br_svg_cell(br_svg_t *s, double x, double y, double w, double h, const char *fill, const char *title)
{
    put(s, "<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" fill=\"", x, y, w, h);
    put_escaped(s, fill);
    if (!title) {
        put(s, "\"/>\n");
        return;
    }
    put(s, "\"><title>");
    put_escaped(s, title);
    put(s, "</title></rect>\n");
}

/* " x,y x,y ..." of the finite points [i, j) */
static void put_points(br_svg_t *s, const double *xs, const double *ys, size_t i, size_t j)
{
    for (; i < j; i++) put(s, " %.2f,%.2f", xs[i], ys[i]);
}

void br_svg_polyline(br_svg_t *s, const double *xs, const double *ys, size_t n, const char *stroke, double width,
                     const char *dash, double opacity)
{
    size_t i = 0;
    while (i < n) {
        while (i < n && !(isfinite(xs[i]) && isfinite(ys[i]))) i++;
        size_t j = i;
        while (j < n && isfinite(xs[j]) && isfinite(ys[j])) j++;
        if (j == i) break;
        put(s, "<polyline fill=\"none\" stroke=\"");
        put_escaped(s, stroke);
        put(s, "\" stroke-width=\"%.2g\" stroke-linejoin=\"round\"", width);
        if (opacity < 1) put(s, " stroke-opacity=\"%.2f\"", opacity);
        put_dash(s, dash);
        put(s, " points=\"");
        put_points(s, xs, ys, i, j);
        put(s, "\"/>\n");
        i = j;
    }
}

void br_svg_polygon(br_svg_t *s, const double *xs, const double *ys, size_t n, const char *fill, double opacity)
{
    put(s, "<polygon stroke=\"none\" fill=\"");
    put_escaped(s, fill);
    put(s, "\" fill-opacity=\"%.2f\" points=\"", opacity);
    put_points(s, xs, ys, 0, n);
    put(s, "\"/>\n");
}

void br_svg_circle(br_svg_t *s, double cx, double cy, double r, const char *fill)
{
    put(s, "<circle cx=\"%.2f\" cy=\"%.2f\" r=\"%.2f\" fill=\"", cx, cy, r);
    put_escaped(s, fill);
    put(s, "\"/>\n");
}

void br_svg_text(br_svg_t *s, double x, double y, br_svg_anchor anchor, double size, double rotate,
                 const char *fill, const char *fmt, ...)
{
    static const char *const anchors[] = {"start", "middle", "end"};
    char text[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap); /* a longer label is cut: it would not fit a chart */
    va_end(ap);
    put(s, "<text x=\"%.2f\" y=\"%.2f\" text-anchor=\"%s\" font-size=\"%.3g\"", x, y, anchors[anchor], size);
    if (rotate != 0) put(s, " transform=\"rotate(%.3g %.2f %.2f)\"", rotate, x, y);
    put(s, " fill=\"");
    put_escaped(s, fill);
    put(s, "\">");
    put_escaped(s, text);
    put(s, "</text>\n");
}

void br_svg_group(br_svg_t *s, const char *cls)
{
    put(s, "<g class=\"");
    put_escaped(s, cls);
    put(s, "\">\n");
}

void br_svg_group_end(br_svg_t *s) { put(s, "</g>\n"); }

void br_svg_free(br_svg_t *s) { br_buf_free(&s->b); }

br_status br_svg_save(br_svg_t *s, const char *path)
{
    put(s, "</svg>\n");
    br_status st = s->err ? s->err : br_write_file_atomic(path, br_buf_str(&s->b), s->b.len);
    br_svg_free(s);
    return st;
}

size_t br_svg_ticks(double *lo, double *hi, double *t, size_t max)
{
    if (max < 2) return 0;
    if (!(*hi > *lo)) { /* one value: a unit-wide range around it */
        double pad = *lo != 0 ? fabs(*lo) * 0.1 : 1;
        *lo -= pad, *hi += pad;
    }
    size_t want = max;
    double raw = (*hi - *lo) / (double)(want - 1), mag = pow(10, floor(log10(raw))), step = 10 * mag;
    static const double nice[] = {1, 2, 2.5, 5, 10};
    for (size_t i = 0; i < sizeof nice / sizeof *nice; i++) {
        double st = nice[i] * mag;
        if (ceil(*hi / st - 1e-9) - floor(*lo / st + 1e-9) + 1 <= (double)want) {
            step = st;
            break;
        }
    }
    double a = floor(*lo / step + 1e-9) * step, b = ceil(*hi / step - 1e-9) * step;
    size_t n = 0;
    for (double v = a; v <= b + step * 1e-6 && n < max; v = a + (double)n * step) t[n++] = fabs(v) < step * 1e-9 ? 0 : v;
    *lo = a, *hi = t[n - 1];
    return n;
}

size_t br_svg_log_ticks(double *lo, double *hi, double *t, size_t max)
{
    if (!(*hi > *lo)) *lo /= 2, *hi *= 2; /* one value: an octave either side */
    double a = floor(log10(*lo) + 1e-9), b = ceil(log10(*hi) - 1e-9);
    static const double all[] = {1, 2, 5}, ones[] = {1};
    const double *m = b - a <= 3 ? all : ones;
    size_t nm = b - a <= 3 ? 3 : 1, n = 0;
    for (double e = a; e <= b; e++)
        for (size_t i = 0; i < nm && n < max; i++) {
            double v = m[i] * pow(10, e);
            if (v >= *lo * (1 - 1e-9) && v <= *hi * (1 + 1e-9)) t[n++] = v;
        }
    if (n < 2 && max >= 2) t[0] = *lo, t[1] = *hi, n = 2; /* within one 1-2-5 step: the ends */
    return n;
}

void br_svg_tick_label(char *out, size_t cap, double v)
{
    double a = fabs(v);
    if (a == 0) snprintf(out, cap, "0");
    else if (a >= 1e9) snprintf(out, cap, "%gG", v / 1e9);
    else if (a >= 1e6) snprintf(out, cap, "%gM", v / 1e6);
    else if (a >= 1e4) snprintf(out, cap, "%gk", v / 1e3);
    else if (a >= 1e-4) snprintf(out, cap, "%.4g", v);
    else snprintf(out, cap, "%.0e", v);
}
