/* Status codes and the message that goes with them.
 *
 * Every fallible library call returns br_status.  On failure it also leaves a human-readable
 * message in a thread-local buffer, read with br_errmsg() on the same thread before the next
 * failing call.  The library never exits or aborts on bad input; BR_ASSERT is for broken
 * invariants (programmer bugs) only. */
#ifndef BR_BASE_STATUS_H
#define BR_BASE_STATUS_H

typedef enum {
    BR_OK = 0,
    BR_EINVAL,       /* bad argument, flag or request */
    BR_ENOMEM,       /* allocation failed or a budget would be exceeded */
    BR_EIO,          /* the OS refused a read/write/open */
    BR_EFORMAT,      /* a file or message is malformed */
    BR_ENOTFOUND,    /* a named thing (file, tensor, column, adapter) does not exist */
    BR_ERANGE,       /* a value is outside what is allowed (token id >= vocab, ...) */
    BR_EUNSUPPORTED, /* well-formed but not something braid handles (dtype, arch...) */
    BR_EBUSY,        /* try again later (pool full, rate limited) */
    BR_ECANCELED,    /* the caller or client went away */
    BR_ETIMEOUT,     /* a deadline passed (network) */
    BR_ENET,         /* a network peer failed or answered badly */
    BR_STATUS_COUNT
} br_status;

/* Short stable name, e.g. "EFORMAT". */
const char *br_status_name(br_status s);

/* Sets the thread's message (printf format) and returns `code`, so that a failing path reads
 *   return br_error(BR_EFORMAT, "%s: tensor '%s' ends past the file", path, name); */
br_status br_error(br_status code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Prefixes the thread's current message with more context ("loading runs/seed: ...") and
 * returns `code` unchanged. */
br_status br_error_wrap(br_status code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The thread's last message ("" when none). Valid until the next br_error on this thread. */
const char *br_errmsg(void);

/* Abort on a broken internal invariant. Never use for conditions input can cause. */
void br_assert_fail(const char *expr, const char *file, int line) __attribute__((noreturn));
#define BR_ASSERT(x) ((x) ? (void)0 : br_assert_fail(#x, __FILE__, __LINE__))

/* Propagate a failing status. */
#define BR_TRY(expr)                     \
    do {                                 \
        br_status br_try_s_ = (expr);    \
        if (br_try_s_ != BR_OK) return br_try_s_; \
    } while (0)

#endif
