/* Progress bar for long work.  On a terminal: a bar redrawn in place with count, rate and ETA
 * (at most ~10 redraws/s).  Not a terminal (CI, pipes): one plain line every few seconds.
 * Writes to stderr.  One bar per thread of control; not shared between threads. */
#ifndef BR_BASE_PROGRESS_H
#define BR_BASE_PROGRESS_H
#include <stdbool.h>
#include <stdint.h>

typedef struct {
    char label[48];
    char unit[16];      /* "tok", "MB", "step"... */
    double total;       /* 0: unknown (no bar, no ETA) */
    double done;
    double t_start, t_last_draw;
    double interval;    /* seconds between draws */
    bool tty, quiet;
    char extra[96];     /* free text shown after the rate, e.g. "loss 3.21" */
} br_progress_t;

void br_progress_start(br_progress_t *p, const char *label, double total, const char *unit);
/* Sets the absolute amount done and redraws if due. */
void br_progress_update(br_progress_t *p, double done);
/* Like update, with a short status text (printf format) shown after the rate. */
void br_progress_updatef(br_progress_t *p, double done, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Final draw and newline. */
void br_progress_finish(br_progress_t *p);
/* Formats seconds as "1h02m", "3m05s" or "12.3s". */
void br_format_duration(char *buf, int cap, double seconds);
#endif
