/* Levelled logging to stderr.  The level is process-wide and set once at start-up (by the CLI
 * from -v/-q or BRAID_LOG=debug|info|warn|error); logging itself is thread-safe (one fprintf
 * per line). */
#ifndef BR_BASE_LOG_H
#define BR_BASE_LOG_H
typedef enum { BR_LOG_DEBUG, BR_LOG_INFO, BR_LOG_WARN, BR_LOG_ERROR, BR_LOG_OFF } br_log_level;

void br_log_set_level(br_log_level level);
br_log_level br_log_get_level(void);
/* Reads BRAID_LOG if set; returns 0, or -1 when its value is not a level name. */
int br_log_level_from_env(void);
void br_log(br_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define BR_DEBUG(...) br_log(BR_LOG_DEBUG, __VA_ARGS__)
#define BR_INFO(...) br_log(BR_LOG_INFO, __VA_ARGS__)
#define BR_WARN(...) br_log(BR_LOG_WARN, __VA_ARGS__)
#define BR_ERROR(...) br_log(BR_LOG_ERROR, __VA_ARGS__)
#endif
