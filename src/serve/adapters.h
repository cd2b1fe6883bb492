/* Adapter registry: LoRA adapters loaded on demand, off the scheduler thread.
 *
 * Adapters are the PEFT folders under --adapters (named by folder) plus those registered at
 * run time (POST /v1/adapters).  br_adapters_acquire never touches the disk: the first call for
 * an adapter queues it for the loader thread and returns BR_EBUSY; once loaded, acquire pins it
 * (a pinned adapter is never evicted) until br_adapters_release.  Unpinned adapters are kept in
 * an LRU within the memory budget (--adapter-mem) and dropped after idle_s seconds without use
 * (scale to zero).  A load that fails (malformed files, shapes that do not match the base) is
 * reported to every acquire for a few seconds with its message, then retried on demand.
 *
 * Metrics (when a registry is given): braid_adapters_loaded, braid_adapter_memory_bytes,
 * braid_adapter_loads_total{result}, braid_adapter_evictions_total{reason},
 * braid_adapter_cold_start_seconds (from first request to loaded). */
#ifndef BR_SERVE_ADAPTERS_H
#define BR_SERVE_ADAPTERS_H
#include <stdbool.h>
#include <stddef.h>

#include "base/status.h"
#include "lm/model.h"
#include "nn/lora.h"
#include "serve/metrics.h"

typedef struct {
    const char *dir;          /* --adapters (NULL: only run-time registrations) */
    br_lora_shapes_t shapes;  /* of the base model */
    size_t mem_budget;        /* bytes for unpinned + pinned adapters; 0: unlimited */
    double idle_s;            /* drop after this long unused; <= 0: never */
    br_metrics_t *metrics;    /* may be NULL */
    const char *root;         /* run-time registrations must resolve inside it; NULL: refused */
} br_adapters_opts_t;

typedef struct br_adapters br_adapters_t;

/* The projection shapes of a Llama config (what every adapter must match). */
br_lora_shapes_t br_lora_shapes_from_config(const br_model_config_t *c);
/* W += sign * s B A for every module of the adapter, in the model's (dense) weights: sign 1
 * merges, -1 unmerges (the merge-per-switch baseline and the tests' reference). */
void br_lora_merge_into_model(br_model_t *m, const br_lora_adapter_t *a, float sign);

/* Starts the loader thread. */
br_status br_adapters_create(br_adapters_t **out, const br_adapters_opts_t *o);
/* Stops the loader and frees every adapter (none may be pinned any more). NULL: no-op. */
void br_adapters_free(br_adapters_t *r);

/* Is `name` an adapter (registered or a folder under dir)?  BR_ENOTFOUND otherwise; BR_EINVAL
 * for a name that is not [A-Za-z0-9_.-]{1,100}. */
br_status br_adapters_lookup(br_adapters_t *r, const char *name);
/* Starts loading `name` if it is not loaded (never blocks on disk): lets the HTTP thread warm
 * an adapter while the request is queued. */
void br_adapters_prefetch(br_adapters_t *r, const char *name);
/* BR_OK: *out is loaded and pinned.  BR_EBUSY: loading (try again after the next step).
 * Otherwise the load failed or the adapter is unknown (message set). */
br_status br_adapters_acquire(br_adapters_t *r, const char *name, const br_lora_adapter_t **out);
void br_adapters_release(br_adapters_t *r, const char *name);

/* POST /v1/adapters: registers `name` -> folder `path` (owned by tenant `owner`, "" for shared)
 * and loads it now, in the calling thread.  `path` (relative: to the root) must resolve, links
 * followed, to a folder inside opts.root whose adapter_config.json and
 * adapter_model.safetensors are regular files, not links; a path outside, missing or not a
 * folder gets one and the same message (existence is not revealed), and the PEFT validation
 * error never quotes file content.
 * BR_EBUSY (conflict) when the name is taken by another folder. */
br_status br_adapters_register(br_adapters_t *r, const char *name, const char *path, const char *owner);
/* DELETE /v1/adapters/NAME: unloads it (after its running requests finish) and forgets a run-time
 * registration.  A folder under dir stays loadable on demand. */
br_status br_adapters_unload(br_adapters_t *r, const char *name);
/* Owner recorded at registration ("" when none, i.e. decided by the tenants file). */
void br_adapters_owner(br_adapters_t *r, const char *name, char *buf, size_t cap);

/* Every known adapter name (folders under dir + registrations), sorted; *names and each
 * string are malloc'd (free with br_adapters_free_names). */
br_status br_adapters_list(br_adapters_t *r, char ***names, size_t *n);
void br_adapters_free_names(char **names, size_t n);

/* Loaded adapters and their bytes now. */
void br_adapters_stats(br_adapters_t *r, size_t *loaded, size_t *bytes);
/* One adapter as the console shows it: state "ready", "loading", "failed" or "unloaded" (also
 * for a name the registry has not seen), bytes in memory, requests pinning it, seconds since
 * last use (0 when never used). */
typedef struct {
    const char *state;
    size_t bytes;
    int pins;
    double idle_s;
} br_adapter_info_t;
void br_adapters_info(br_adapters_t *r, const char *name, br_adapter_info_t *out);

/* Runs idle expiry now (the loader thread also does it about once a second). */
void br_adapters_expire(br_adapters_t *r, double now);
#endif
