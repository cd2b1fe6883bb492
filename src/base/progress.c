#include "base/progress.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/timer.h"

void br_format_duration(char *buf, int cap, double s)
{
    if (s < 0 || s != s) snprintf(buf, (size_t)cap, "?");
    else if (s < 60) snprintf(buf, (size_t)cap, "%.1fs", s);
    else if (s < 3600) snprintf(buf, (size_t)cap, "%dm%02ds", (int)(s / 60), (int)s % 60);
    else snprintf(buf, (size_t)cap, "%dh%02dm", (int)(s / 3600), (int)(s / 60) % 60);
}

void br_progress_start(br_progress_t *p, const char *label, double total, const char *unit)
{
    memset(p, 0, sizeof *p);
    snprintf(p->label, sizeof p->label, "%s", label);
    snprintf(p->unit, sizeof p->unit, "%s", unit ? unit : "");
    p->total = total;
    p->t_start = p->t_last_draw = br_now();
    p->tty = isatty(STDERR_FILENO);
    const char *q = getenv("BRAID_QUIET");
    p->quiet = q && *q && strcmp(q, "0") != 0;
    p->interval = p->tty ? 0.1 : 5.0;
}

static void human(char *buf, size_t cap, double x)
{
    if (x >= 1e9) snprintf(buf, cap, "%.2fG", x / 1e9);
    else if (x >= 1e6) snprintf(buf, cap, "%.2fM", x / 1e6);
    else if (x >= 1e4) snprintf(buf, cap, "%.1fk", x / 1e3);
    else snprintf(buf, cap, "%.0f", x);
}

static void draw(br_progress_t *p, bool final)
{
    double now = br_now(), el = now - p->t_start;
    double rate = el > 0 ? p->done / el : 0;
    char done[32], tot[32], rt[32], eta[32], els[32];
    human(done, sizeof done, p->done);
    human(tot, sizeof tot, p->total);
    human(rt, sizeof rt, rate);
    br_format_duration(els, sizeof els, el);
    if (p->total > 0 && rate > 0 && !final) br_format_duration(eta, sizeof eta, (p->total - p->done) / rate);
    else snprintf(eta, sizeof eta, "-");
    const char *sep = p->extra[0] ? "  " : "";
    if (p->tty) {
        char bar[31] = {0};
        double frac = p->total > 0 ? p->done / p->total : 0;
        if (frac > 1) frac = 1;
        int fill = (int)(frac * 30);
        for (int i = 0; i < 30; i++) bar[i] = i < fill ? '#' : (p->total > 0 ? '.' : ' ');
        if (p->total > 0)
            fprintf(stderr, "\r\033[K%s [%s] %3.0f%% %s/%s %s %s/s  %s ETA %s%s%s", p->label, bar,
                    frac * 100, done, tot, p->unit, rt, els, eta, sep, p->extra);
        else
            fprintf(stderr, "\r\033[K%s %s %s %s/s %s%s%s", p->label, done, p->unit, rt, els, sep, p->extra);
        if (final) fputc('\n', stderr);
    } else {
        if (p->total > 0)
            fprintf(stderr, "%s: %s/%s %s (%.0f%%), %s/s, %s elapsed, ETA %s%s%s\n", p->label, done, tot,
                    p->unit, 100 * p->done / p->total, rt, els, eta, sep, p->extra);
        else
            fprintf(stderr, "%s: %s %s, %s/s, %s elapsed%s%s\n", p->label, done, p->unit, rt, els, sep, p->extra);
    }
    fflush(stderr);
    p->t_last_draw = now;
}

void br_progress_update(br_progress_t *p, double done)
{
    p->done = done;
    if (p->quiet) return;
    if (br_now() - p->t_last_draw >= p->interval) draw(p, false);
}

void br_progress_updatef(br_progress_t *p, double done, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->extra, sizeof p->extra, fmt, ap);
    va_end(ap);
    br_progress_update(p, done);
}

void br_progress_finish(br_progress_t *p)
{
    if (!p->quiet) draw(p, true);
}
