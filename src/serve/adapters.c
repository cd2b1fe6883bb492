#include "serve/adapters.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "base/buf.h"
#include "base/fileio.h"
#include "base/log.h"
#include "base/timer.h"
#include "lm/peft.h"
#include "serve/util.h"

enum { ST_UNLOADED, ST_QUEUED, ST_LOADING, ST_READY, ST_FAILED };
#define NBUCKETS 1024
#define FAIL_MEMORY_S 3.0   /* a failed load is reported this long before a retry */
#define DEFER_RETRY_S 0.05  /* a load that did not fit the budget is retried after this */

typedef struct entry {
    struct entry *next;     /* hash chain */
    struct entry *qnext;    /* load queue */
    char name[128];
    char *path;             /* the adapter folder (heap) */
    char owner[64];
    bool dynamic;           /* registered at run time (POST) */
    bool doomed;            /* unload when the last pin goes */
    int state;
    br_lora_adapter_t *a;
    size_t bytes;
    int pins;
    double last_used, requested_at, failed_at, retry_at;
    br_status err_code;
    char err[512];
} entry_t;

struct br_adapters {
    br_adapters_opts_t o;
    char *dir;               /* --adapters folder (heap), NULL when none */
    char *root;              /* realpath of opts.root (heap), NULL when run-time loads are refused */
    pthread_mutex_t mu;
    pthread_cond_t wake;
    pthread_t loader;
    bool loader_started, stop;
    entry_t *buckets[NBUCKETS];
    entry_t *qhead, *qtail;
    size_t used_bytes, nloaded;
    br_metric_t *m_loaded, *m_bytes, *m_loads, *m_evict, *m_cold;
};

br_lora_shapes_t br_lora_shapes_from_config(const br_model_config_t *c)
{
    br_lora_shapes_t s = {.n_layers = c->num_hidden_layers};
    size_t C = (size_t)c->hidden_size, F = (size_t)c->intermediate_size;
    size_t hd = (size_t)(c->head_dim ? c->head_dim : c->hidden_size / (c->num_attention_heads ? c->num_attention_heads : 1));
    size_t Dq = (size_t)c->num_attention_heads * hd, Dkv = (size_t)c->num_key_value_heads * hd;
    size_t in[BR_PROJ_COUNT] = {C, C, C, Dq, C, C, F};
    size_t out[BR_PROJ_COUNT] = {Dq, Dkv, Dkv, C, F, F, C};
    memcpy(s.in, in, sizeof in);
    memcpy(s.out, out, sizeof out);
    /* mixtures: the routed experts replace the plain FFN (the shared expert is not adapted);
     * BAM's attention experts replace q/o, and k/v too unless they are shared */
    if (c->num_local_experts > 1) { /* br_config_has_moe_ffn */
        s.n_experts = c->num_local_experts;
        s.absent |= (1u << BR_PROJ_GATE) | (1u << BR_PROJ_UP) | (1u << BR_PROJ_DOWN);
    }
    if (c->num_attention_experts > 1) { /* br_config_has_moa */
        s.n_attn_experts = c->num_attention_experts;
        s.absent |= (1u << BR_PROJ_Q) | (1u << BR_PROJ_O);
        if (!c->attention_shared_kv) s.absent |= (1u << BR_PROJ_K) | (1u << BR_PROJ_V);
    }
    return s;
}

/* The weight matrix of projection p in layer l (dense blocks). */
static float *proj_weight(br_model_t *m, int l, br_proj p)
{
    br_layer_weights_t *w = &m->w.layers[l];
    switch (p) {
    case BR_PROJ_Q: return w->attn.wq;
    case BR_PROJ_K: return w->attn.wk;
    case BR_PROJ_V: return w->attn.wv;
    case BR_PROJ_O: return w->attn.wo;
    case BR_PROJ_GATE: return w->ffn.gate;
    case BR_PROJ_UP: return w->ffn.up;
    default: return w->ffn.down;
    }
}

void br_lora_merge_into_model(br_model_t *m, const br_lora_adapter_t *a, float sign)
{
    for (int l = 0; l < m->cfg.num_hidden_layers && l < a->shapes.n_layers; l++)
        for (int p = 0; p < BR_PROJ_COUNT; p++) {
            if (br_lora_module(a, l, (br_proj)p)->rank) br_lora_merge(proj_weight(m, l, (br_proj)p), a, l, (br_proj)p, sign);
            /* experts are stacked expert-major: expert e's matrix is e * in * out floats on */
            size_t sz = a->shapes.in[p] * a->shapes.out[p];
            for (int e = 0; e < br_lora_site_experts(&a->shapes, (br_proj)p); e++)
                if (br_lora_xmodule(a, l, e, (br_proj)p)->rank)
                    br_lora_merge_expert(proj_weight(m, l, (br_proj)p) + (size_t)e * sz, a, l, e, (br_proj)p, sign);
        }
}

static size_t hash_name(const char *s)
{
    size_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h % NBUCKETS;
}

static entry_t *find(br_adapters_t *r, const char *name)
{
    for (entry_t *e = r->buckets[hash_name(name)]; e; e = e->next)
        if (!strcmp(e->name, name)) return e;
    return NULL;
}

static void remove_entry(br_adapters_t *r, entry_t *e)
{
    entry_t **pp = &r->buckets[hash_name(e->name)];
    while (*pp && *pp != e) pp = &(*pp)->next;
    if (*pp) *pp = e->next;
    free(e->path);
    free(e);
}

/* Is dir/name an adapter folder (it holds adapter_config.json)?  *path (may be NULL) receives
 * the folder on the heap. */
static bool folder_has_adapter(const char *dir, const char *name, char **path)
{
    if (path) *path = NULL;
    if (!dir) return false;
    br_buf_t folder = BR_BUF_INIT, cfg = BR_BUF_INIT;
    bool yes = !br_buf_path(&folder, dir, name) && !br_buf_path(&cfg, br_buf_str(&folder), "adapter_config.json") &&
               br_file_exists(br_buf_str(&cfg));
    br_buf_free(&cfg);
    if (yes && path) *path = folder.data;
    else br_buf_free(&folder);
    return yes;
}

/* Caller holds mu.  Finds or creates the entry of a valid name; NULL when unknown. */
static entry_t *get_entry(br_adapters_t *r, const char *name)
{
    entry_t *e = find(r, name);
    if (e) return e;
    char *path;
    if (!folder_has_adapter(r->dir, name, &path)) return NULL;
    e = calloc(1, sizeof *e);
    if (!e) {
        free(path);
        return NULL;
    }
    snprintf(e->name, sizeof e->name, "%s", name); /* check_name: at most 100 bytes */
    e->path = path;
    size_t h = hash_name(name);
    e->next = r->buckets[h];
    r->buckets[h] = e;
    return e;
}

static void publish_gauges(br_adapters_t *r)
{
    br_metric_set(r->m_loaded, (double)r->nloaded);
    br_metric_set(r->m_bytes, (double)r->used_bytes);
}

/* Caller holds mu. Frees the weights of a READY unpinned entry. */
static void drop(br_adapters_t *r, entry_t *e, const char *reason)
{
    BR_ASSERT(e->state == ST_READY && e->pins == 0);
    br_lora_free(e->a);
    e->a = NULL;
    r->used_bytes -= e->bytes;
    r->nloaded--;
    e->bytes = 0;
    e->state = ST_UNLOADED;
    br_metric_add(r->m_evict, 1, reason);
    BR_INFO("adapter %s unloaded (%s)", e->name, reason);
    publish_gauges(r);
}

/* Caller holds mu.  Evicts least recently used unpinned adapters until `need` more bytes fit.
 * Returns whether they fit. */
static bool make_room(br_adapters_t *r, size_t need)
{
    if (!r->o.mem_budget) return true;
    while (r->used_bytes + need > r->o.mem_budget) {
        entry_t *lru = NULL;
        for (size_t b = 0; b < NBUCKETS; b++)
            for (entry_t *e = r->buckets[b]; e; e = e->next)
                if (e->state == ST_READY && e->pins == 0 && (!lru || e->last_used < lru->last_used)) lru = e;
        if (!lru) return false;
        drop(r, lru, "lru");
    }
    return true;
}

static void enqueue(br_adapters_t *r, entry_t *e, double now)
{
    e->state = ST_QUEUED;
    if (e->requested_at <= 0) e->requested_at = now;
    e->qnext = NULL;
    if (r->qtail) r->qtail->qnext = e;
    else r->qhead = e;
    r->qtail = e;
    pthread_cond_signal(&r->wake);
}

/* Caller holds mu.  Installs a freshly loaded adapter or records why it cannot be. */
static void install(br_adapters_t *r, entry_t *e, br_lora_adapter_t *a, br_status rc, const char *msg, double now)
{
    if (rc == BR_OK) {
        size_t bytes = br_lora_bytes(a);
        if (r->o.mem_budget && bytes > r->o.mem_budget) {
            rc = br_error(BR_ENOMEM, "adapter '%s' needs %.1f MB, more than --adapter-mem (%.1f MB)", e->name,
                          bytes / 1e6, r->o.mem_budget / 1e6);
            msg = br_errmsg();
        } else if (!make_room(r, bytes)) {
            /* every loaded adapter is pinned by running requests: try again shortly */
            br_lora_free(a);
            e->state = ST_UNLOADED;
            e->retry_at = now + DEFER_RETRY_S;
            br_metric_add(r->m_loads, 1, "deferred");
            return;
        } else {
            snprintf(a->name, sizeof a->name, "%s", e->name);
            e->a = a;
            e->bytes = bytes;
            e->state = ST_READY;
            e->last_used = now;
            r->used_bytes += bytes;
            r->nloaded++;
            double cold = now - e->requested_at;
            br_metric_observe(r->m_cold, cold);
            br_metric_add(r->m_loads, 1, "ok");
            BR_INFO("adapter %s loaded in %.3f s (%.2f MB)", e->name, cold, bytes / 1e6);
            e->requested_at = 0;
            publish_gauges(r);
            return;
        }
    }
    br_lora_free(a);
    e->state = ST_FAILED;
    e->err_code = rc;
    snprintf(e->err, sizeof e->err, "%s", msg);
    e->failed_at = now;
    e->requested_at = 0;
    br_metric_add(r->m_loads, 1, "error");
    BR_WARN("adapter %s: %s", e->name, e->err);
}

static void *loader_main(void *arg)
{
    br_adapters_t *r = arg;
    pthread_mutex_lock(&r->mu);
    while (!r->stop) {
        entry_t *e = r->qhead;
        if (!e) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_sec += 1;
            pthread_cond_timedwait(&r->wake, &r->mu, &ts);
            pthread_mutex_unlock(&r->mu);
            br_adapters_expire(r, br_now());
            pthread_mutex_lock(&r->mu);
            continue;
        }
        r->qhead = e->qnext;
        if (!r->qhead) r->qtail = NULL;
        if (e->doomed) {
            e->state = ST_UNLOADED;
            if (e->dynamic) remove_entry(r, e);
            continue;
        }
        e->state = ST_LOADING;
        char *path = strdup(e->path); /* e->path may go once mu is released (a dynamic entry) */
        pthread_mutex_unlock(&r->mu);
        br_lora_adapter_t *a = NULL;
        br_status rc = path ? br_lora_load(&a, path, &r->o.shapes) : br_error(BR_ENOMEM, "adapters: out of memory");
        free(path);
        char msg[512];
        snprintf(msg, sizeof msg, "%s", rc == BR_OK ? "" : br_errmsg());
        pthread_mutex_lock(&r->mu);
        install(r, e, a, rc, msg, br_now());
        if (e->doomed && e->pins == 0) {
            if (e->state == ST_READY) drop(r, e, "unload");
            if (e->dynamic) remove_entry(r, e);
        }
    }
    pthread_mutex_unlock(&r->mu);
    return NULL;
}

br_status br_adapters_create(br_adapters_t **out, const br_adapters_opts_t *o)
{
    *out = NULL;
    br_adapters_t *r = calloc(1, sizeof *r);
    if (!r) return br_error(BR_ENOMEM, "adapters: out of memory");
    r->o = *o;
    if (o->dir) {
        if (!br_dir_exists(o->dir)) {
            free(r);
            return br_error(BR_ENOTFOUND, "--adapters %s: no such folder", o->dir);
        }
        if (!(r->dir = strdup(o->dir))) {
            free(r);
            return br_error(BR_ENOMEM, "adapters: out of memory");
        }
    }
    r->o.dir = r->dir;
    if (o->root && !(r->root = realpath(o->root, NULL))) {
        br_status st = br_error(BR_ENOTFOUND, "--adapter-root %s: no such folder (%s)", o->root, strerror(errno));
        free(r->dir);
        free(r);
        return st;
    }
    r->o.root = r->root;
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->wake, NULL);
    if (o->metrics) {
        static const double cold_bounds[] = {0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
        r->m_loaded = br_metrics_gauge(o->metrics, "braid_adapters_loaded", "LoRA adapters in memory", "");
        r->m_bytes = br_metrics_gauge(o->metrics, "braid_adapter_memory_bytes", "Bytes held by loaded adapters", "");
        r->m_loads = br_metrics_counter(o->metrics, "braid_adapter_loads_total",
                                        "Adapter loads by result (ok, error, deferred: budget full of pinned adapters)",
                                        "result");
        r->m_evict = br_metrics_counter(o->metrics, "braid_adapter_evictions_total",
                                        "Adapters unloaded by reason (lru, idle, unload)", "reason");
        r->m_cold = br_metrics_histogram(o->metrics, "braid_adapter_cold_start_seconds",
                                         "Seconds from the first request for an adapter to its weights in memory", "",
                                         cold_bounds, (int)(sizeof cold_bounds / sizeof *cold_bounds));
        publish_gauges(r);
    }
    if (pthread_create(&r->loader, NULL, loader_main, r)) {
        br_adapters_free(r);
        return br_error(BR_ENOMEM, "adapters: cannot start the loader thread");
    }
    r->loader_started = true;
    *out = r;
    return BR_OK;
}

void br_adapters_free(br_adapters_t *r)
{
    if (!r) return;
    if (r->loader_started) {
        pthread_mutex_lock(&r->mu);
        r->stop = true;
        pthread_cond_signal(&r->wake);
        pthread_mutex_unlock(&r->mu);
        pthread_join(r->loader, NULL);
    }
    for (size_t b = 0; b < NBUCKETS; b++) {
        entry_t *e = r->buckets[b];
        while (e) {
            entry_t *n = e->next;
            br_lora_free(e->a);
            free(e->path);
            free(e);
            e = n;
        }
    }
    pthread_cond_destroy(&r->wake);
    pthread_mutex_destroy(&r->mu);
    free(r->dir);
    free(r->root);
    free(r);
}

static br_status check_name(const char *name)
{
    if (!br_serve_name_ok(name, 100))
        return br_error(BR_EINVAL, "adapter name '%.100s' must be [A-Za-z0-9_.-]{1,100}", name);
    return BR_OK;
}

br_status br_adapters_lookup(br_adapters_t *r, const char *name)
{
    BR_TRY(check_name(name));
    pthread_mutex_lock(&r->mu);
    entry_t *e = get_entry(r, name);
    pthread_mutex_unlock(&r->mu);
    return e ? BR_OK : br_error(BR_ENOTFOUND, "adapter '%s' does not exist", name);
}

/* Caller holds mu. */
static void request_load(br_adapters_t *r, entry_t *e, double now)
{
    if (e->state == ST_FAILED && now - e->failed_at >= FAIL_MEMORY_S) e->state = ST_UNLOADED;
    if (e->state == ST_UNLOADED && !e->doomed) {
        if (now < e->retry_at) {
            if (e->requested_at <= 0) e->requested_at = now;
            return;
        }
        enqueue(r, e, now);
    }
}

void br_adapters_prefetch(br_adapters_t *r, const char *name)
{
    if (check_name(name) != BR_OK) return;
    pthread_mutex_lock(&r->mu);
    entry_t *e = get_entry(r, name);
    if (e) request_load(r, e, br_now());
    pthread_mutex_unlock(&r->mu);
}

br_status br_adapters_acquire(br_adapters_t *r, const char *name, const br_lora_adapter_t **out)
{
    *out = NULL;
    BR_TRY(check_name(name));
    double now = br_now();
    pthread_mutex_lock(&r->mu);
    entry_t *e = get_entry(r, name);
    br_status rc;
    if (!e || e->doomed) {
        rc = br_error(BR_ENOTFOUND, "adapter '%s' does not exist", name);
    } else {
        request_load(r, e, now);
        if (e->state == ST_READY) {
            e->pins++;
            e->last_used = now;
            *out = e->a;
            rc = BR_OK;
        } else if (e->state == ST_FAILED) {
            rc = br_error(e->err_code, "%s", e->err);
        } else {
            rc = BR_EBUSY;
        }
    }
    pthread_mutex_unlock(&r->mu);
    return rc;
}

void br_adapters_release(br_adapters_t *r, const char *name)
{
    pthread_mutex_lock(&r->mu);
    entry_t *e = find(r, name);
    if (e && e->pins > 0) {
        e->pins--;
        e->last_used = br_now();
        if (e->pins == 0 && e->doomed) {
            if (e->state == ST_READY) drop(r, e, "unload");
            if (e->state != ST_QUEUED && e->state != ST_LOADING) {
                if (e->dynamic) remove_entry(r, e);
                else e->doomed = false;
            }
        }
    }
    pthread_mutex_unlock(&r->mu);
}

/* Is `file` in folder `dir` a regular file (not a link, not a folder)? */
static bool plain_file(const char *dir, const char *file)
{
    br_buf_t p = BR_BUF_INIT;
    struct stat st;
    bool yes = !br_buf_path(&p, dir, file) && lstat(br_buf_str(&p), &st) == 0 && S_ISREG(st.st_mode);
    br_buf_free(&p);
    return yes;
}

/* The folder `path` names (relative: to the root), resolved into *out (heap): it must lie
 * inside the root and hold the adapter's two files as regular files.  One message for every
 * refusal, so that the answer does not tell an existing folder from a missing one. */
static br_status resolve_in_root(const br_adapters_t *r, const char *path, char **out)
{
    *out = NULL;
    if (!r->root)
        return br_error(BR_EINVAL, "loading adapters at run time is off: start the server with --adapters DIR or "
                                   "--adapter-root DIR");
    br_buf_t joined = BR_BUF_INIT;
    br_status st = path[0] == '/' ? br_buf_puts(&joined, path) : br_buf_path(&joined, r->root, path);
    char *real = st == BR_OK ? realpath(br_buf_str(&joined), NULL) : NULL;
    br_buf_free(&joined);
    size_t lr = strlen(r->root);
    bool inside = real && strlen(real) > lr && !strncmp(real, r->root, lr) &&
                  (real[lr] == '/' || r->root[lr - 1] == '/') && br_dir_exists(real) &&
                  plain_file(real, "adapter_config.json") && plain_file(real, "adapter_model.safetensors");
    if (!inside) {
        free(real);
        return br_error(BR_ENOTFOUND,
                        "'%.200s' is not a PEFT adapter folder inside the adapter root (--adapter-root): give a folder "
                        "under it holding adapter_config.json and adapter_model.safetensors as regular files (links "
                        "are not followed)",
                        path);
    }
    *out = real;
    return BR_OK;
}

/* The loader's message with any quoted file content cut: jansson's "... near 'TEXT'" quotes
 * the bytes where parsing stopped, and a registration must not echo a file's content. */
static br_status without_content(br_status st)
{
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", br_errmsg());
    char *near = strstr(msg, " near '");
    if (near) *near = 0;
    return br_error(st, "%s", msg);
}

/* br_adapters_register once the path is resolved (rc: how resolving went; path "" if it failed). */
static br_status register_resolved(br_adapters_t *r, const char *name, const char *path, br_status rc,
                                   const char *owner)
{
    char why[1024];
    snprintf(why, sizeof why, "%s", rc == BR_OK ? "" : br_errmsg());
    pthread_mutex_lock(&r->mu);
    entry_t *e = get_entry(r, name);
    if (rc != BR_OK && !e) /* a taken name is the first thing to report */
        rc = br_error(rc, "%s", why);
    else if (e && (rc != BR_OK || strcmp(e->path, path)))
        rc = br_error(BR_EBUSY, "adapter name '%s' is already taken by %s", name, e->path);
    else if (e && e->doomed)
        rc = br_error(BR_EBUSY, "adapter '%s' is being unloaded; try again", name);
    pthread_mutex_unlock(&r->mu);
    if (rc != BR_OK) return rc;
    /* validate and load here (the HTTP thread), not on the scheduler */
    double t0 = br_now();
    br_lora_adapter_t *a = NULL;
    br_status lst = br_lora_load_flags(&a, path, &r->o.shapes, BR_OPEN_NOFOLLOW);
    if (lst != BR_OK) return without_content(lst);
    pthread_mutex_lock(&r->mu);
    e = find(r, name);
    bool created = !e;
    if (!e) {
        e = calloc(1, sizeof *e);
        if (!e) {
            pthread_mutex_unlock(&r->mu);
            br_lora_free(a);
            return br_error(BR_ENOMEM, "adapters: out of memory");
        }
        snprintf(e->name, sizeof e->name, "%s", name); /* check_name: at most 100 bytes */
        if (!(e->path = strdup(path))) {
            free(e);
            pthread_mutex_unlock(&r->mu);
            br_lora_free(a);
            return br_error(BR_ENOMEM, "adapters: out of memory");
        }
        e->dynamic = !folder_has_adapter(r->dir, name, NULL);
        size_t h = hash_name(name);
        e->next = r->buckets[h];
        r->buckets[h] = e;
    } else if (strcmp(e->path, path)) {
        pthread_mutex_unlock(&r->mu);
        br_lora_free(a);
        return br_error(BR_EBUSY, "adapter name '%s' is already taken by %s", name, e->path);
    }
    snprintf(e->owner, sizeof e->owner, "%s", owner ? owner : "");
    if (e->state == ST_READY || e->state == ST_QUEUED || e->state == ST_LOADING) {
        br_lora_free(a); /* already (being) loaded from the same folder */
    } else {
        e->requested_at = t0;
        install(r, e, a, BR_OK, "", br_now());
        if (e->state != ST_READY) {
            rc = e->state == ST_FAILED ? br_error(e->err_code, "%s", e->err)
                                       : br_error(BR_ENOMEM, "adapter memory is full of adapters in use; try again");
            /* a registration that did not load leaves no name behind (it would block the next one) */
            if (created && e->dynamic && e->pins == 0) remove_entry(r, e);
        }
    }
    pthread_mutex_unlock(&r->mu);
    return rc;
}

br_status br_adapters_register(br_adapters_t *r, const char *name, const char *path_in, const char *owner)
{
    BR_TRY(check_name(name));
    char *path = NULL;
    br_status rc = resolve_in_root(r, path_in, &path);
    rc = register_resolved(r, name, path ? path : "", rc, owner);
    free(path);
    return rc;
}

br_status br_adapters_unload(br_adapters_t *r, const char *name)
{
    BR_TRY(check_name(name));
    pthread_mutex_lock(&r->mu);
    entry_t *e = find(r, name);
    br_status rc = BR_OK;
    if (!e) {
        rc = folder_has_adapter(r->dir, name, NULL)
                 ? BR_OK /* known but not loaded: nothing to do */
                 : br_error(BR_ENOTFOUND, "adapter '%s' does not exist", name);
    } else if (e->pins > 0 || e->state == ST_QUEUED || e->state == ST_LOADING) {
        e->doomed = true; /* the last release (or the loader) finishes the job */
    } else {
        if (e->state == ST_READY) drop(r, e, "unload");
        if (e->dynamic) remove_entry(r, e);
        else e->state = ST_UNLOADED;
    }
    pthread_mutex_unlock(&r->mu);
    return rc;
}

void br_adapters_owner(br_adapters_t *r, const char *name, char *buf, size_t cap)
{
    buf[0] = 0;
    pthread_mutex_lock(&r->mu);
    entry_t *e = find(r, name);
    if (e) snprintf(buf, cap, "%s", e->owner);
    pthread_mutex_unlock(&r->mu);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

br_status br_adapters_list(br_adapters_t *r, char ***names, size_t *n)
{
    *names = NULL;
    *n = 0;
    size_t cap = 64, cnt = 0;
    char **v = malloc(cap * sizeof *v);
    if (!v) return br_error(BR_ENOMEM, "adapters: out of memory");
    bool oom = false;
#define PUSH(s)                                                    \
    do {                                                           \
        if (cnt == cap) {                                          \
            char **nv = realloc(v, 2 * cap * sizeof *v);           \
            if (!nv) { oom = true; break; }                        \
            v = nv;                                                \
            cap *= 2;                                              \
        }                                                          \
        if (!(v[cnt] = strdup(s))) { oom = true; break; }          \
        cnt++;                                                     \
    } while (0)
    if (r->dir) {
        DIR *d = opendir(r->dir);
        struct dirent *de;
        while (d && !oom && (de = readdir(d))) {
            if (!br_serve_name_ok(de->d_name, 100)) continue;
            if (folder_has_adapter(r->dir, de->d_name, NULL)) PUSH(de->d_name);
        }
        if (d) closedir(d);
    }
    pthread_mutex_lock(&r->mu);
    for (size_t b = 0; b < NBUCKETS && !oom; b++)
        for (entry_t *e = r->buckets[b]; e && !oom; e = e->next)
            if (e->dynamic && !e->doomed) PUSH(e->name);
    pthread_mutex_unlock(&r->mu);
#undef PUSH
    if (oom) {
        br_adapters_free_names(v, cnt);
        return br_error(BR_ENOMEM, "adapters: out of memory");
    }
    qsort(v, cnt, sizeof *v, cmp_str);
    *names = v;
    *n = cnt;
    return BR_OK;
}

void br_adapters_free_names(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++) free(names[i]);
    free(names);
}

void br_adapters_stats(br_adapters_t *r, size_t *loaded, size_t *bytes)
{
    pthread_mutex_lock(&r->mu);
    *loaded = r->nloaded;
    *bytes = r->used_bytes;
    pthread_mutex_unlock(&r->mu);
}

void br_adapters_info(br_adapters_t *r, const char *name, br_adapter_info_t *out)
{
    static const char *names[] = {"unloaded", "loading", "loading", "ready", "failed"};
    *out = (br_adapter_info_t){.state = "unloaded"};
    double now = br_now();
    pthread_mutex_lock(&r->mu);
    entry_t *e = find(r, name);
    if (e) {
        out->state = e->state >= 0 && e->state <= ST_FAILED ? names[e->state] : "unloaded";
        out->bytes = e->state == ST_READY ? e->bytes : 0;
        out->pins = e->pins;
        out->idle_s = e->last_used > 0 ? now - e->last_used : 0;
    }
    pthread_mutex_unlock(&r->mu);
}

void br_adapters_expire(br_adapters_t *r, double now)
{
    if (r->o.idle_s <= 0) return;
    pthread_mutex_lock(&r->mu);
    for (size_t b = 0; b < NBUCKETS; b++)
        for (entry_t *e = r->buckets[b]; e; e = e->next)
            if (e->state == ST_READY && e->pins == 0 && now - e->last_used >= r->o.idle_s) drop(r, e, "idle");
    pthread_mutex_unlock(&r->mu);
}
