#include "serve/sched.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/alloc.h"
#include "base/log.h"
#include "base/timer.h"
#include "guard/parden.h"
#include "lm/generate.h"
#include "serve/util.h"

/* ---- requests ---- */

br_status br_req_create(br_req_t **out, int32_t *prompt, size_t n_prompt, const br_gen_params_t *gp)
{
    *out = NULL;
    br_req_t *r = calloc(1, sizeof *r);
    if (!r) return br_error(BR_ENOMEM, "out of memory");
    r->prompt = prompt;
    r->n_prompt = n_prompt;
    r->gp = *gp;
    r->refs = 1;
    r->t_arrival = br_now();
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cv, NULL);
    *out = r;
    return BR_OK;
}

static void req_ref(br_req_t *r)
{
    pthread_mutex_lock(&r->mu);
    r->refs++;
    pthread_mutex_unlock(&r->mu);
}

void br_req_unref(br_req_t *r)
{
    if (!r) return;
    pthread_mutex_lock(&r->mu);
    int left = --r->refs;
    pthread_mutex_unlock(&r->mu);
    if (left) return;
    for (int i = 0; i < r->gp.nstop; i++) free(r->gp.stop[i]);
    free(r->prompt);
    free(r->pages);
    free(r->out);
    free(r->text);
    pthread_cond_destroy(&r->cv);
    pthread_mutex_destroy(&r->mu);
    free(r);
}

bool br_req_wait(br_req_t *r, size_t seen, double timeout_s)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    double t = ts.tv_sec + ts.tv_nsec * 1e-9 + timeout_s;
    ts.tv_sec = (time_t)t;
    ts.tv_nsec = (long)((t - (double)ts.tv_sec) * 1e9);
    pthread_mutex_lock(&r->mu);
    while (!r->done && r->text_ready <= seen)
        if (pthread_cond_timedwait(&r->cv, &r->mu, &ts) == ETIMEDOUT) break;
    bool done = r->done;
    pthread_mutex_unlock(&r->mu);
    return done;
}

void br_req_cancel(br_req_t *r)
{
    pthread_mutex_lock(&r->mu);
    r->cancelled = true;
    pthread_mutex_unlock(&r->mu);
}

static bool req_cancelled(br_req_t *r)
{
    pthread_mutex_lock(&r->mu);
    bool c = r->cancelled;
    pthread_mutex_unlock(&r->mu);
    return c;
}

/* ---- scheduler ---- */

typedef struct {
    br_req_t *head, *tail;
    size_t n;
} queue_t;

struct br_sched {
    br_sched_opts_t o;
    br_kv_pool_t *kv;
    br_lora_batch_t *lb;
    size_t V, ctx, P;
    const int32_t *stops; /* (n_stops) ids that end a generation */
    size_t n_stops;
    int32_t eos;          /* the stop id without a prompt pipeline */
    pthread_t th;
    bool started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool draining, stop;
    queue_t inbox;              /* submitted (under mu) */
    size_t n_waiting_pub, n_running_pub;
    /* scheduler thread only */
    size_t ntenants;
    queue_t *wait;              /* (ntenants) */
    double *vtc;                /* (ntenants) */
    size_t *nrun_t;             /* (ntenants) running per tenant */
    br_req_t **run;
    size_t nrun, caprun;
    size_t outstanding;         /* reserved pages not yet allocated by running requests */
    size_t rr;                  /* round-robin start for decode rows over budget */
    br_seq_t *seqs;
    br_req_t **seq_req;
    const br_lora_adapter_t **row_ad;
    float *logits;
    br_rng_t rng;
    br_parden_opts_t parden;
    const br_lora_adapter_t *merged; /* BR_SCHED_MERGE: adapter merged into the weights */
    char merged_name[128];
    double merge_seconds;
    long merges;
    /* metrics */
    br_metric_t *m_prompt_tok, *m_gen_tok, *m_queue, *m_running, *m_batch_rows, *m_batch_adapters, *m_ttft,
        *m_latency, *m_guard, *m_kv_used, *m_kv_total, *m_step, *m_finish;
};

size_t br_sched_context(const br_sched_t *s) { return s->ctx; }
size_t br_sched_pages_total(const br_sched_t *s) { return br_kv_pool_pages_total(s->kv); }

/* Positions a request may occupy at most: the prompt plus every generated token but the last
 * (which is never fed back), within the context. */
static size_t worst_positions(const br_sched_t *s, size_t n_prompt, int max_tokens)
{
    size_t n = n_prompt + (max_tokens > 0 ? (size_t)max_tokens - 1 : 0);
    return n > s->ctx ? s->ctx : n;
}

size_t br_sched_pages_needed(const br_sched_t *s, size_t n_prompt, int max_tokens)
{
    return (worst_positions(s, n_prompt, max_tokens) + s->P - 1) / s->P;
}

static void q_push(queue_t *q, br_req_t *r)
{
    r->next = NULL;
    if (q->tail) q->tail->next = r;
    else q->head = r;
    q->tail = r;
    q->n++;
}

static void q_push_front(queue_t *q, br_req_t *r)
{
    r->next = q->head;
    q->head = r;
    if (!q->tail) q->tail = r;
    q->n++;
}

static void q_remove(queue_t *q, br_req_t *prev, br_req_t *r)
{
    if (prev) prev->next = r->next;
    else q->head = r->next;
    if (q->tail == r) q->tail = prev;
    r->next = NULL;
    q->n--;
}

static void publish(br_sched_t *s)
{
    size_t w = 0;
    for (size_t t = 0; t < s->ntenants; t++) w += s->wait[t].n;
    pthread_mutex_lock(&s->mu);
    s->n_waiting_pub = w + s->inbox.n;
    s->n_running_pub = s->nrun;
    pthread_mutex_unlock(&s->mu);
    br_metric_set(s->m_queue, (double)(w + s->inbox.n));
    br_metric_set(s->m_running, (double)s->nrun);
    br_metric_set(s->m_kv_used, (double)(br_kv_pool_pages_total(s->kv) - br_kv_pool_pages_free(s->kv)));
}

static const char *adapter_label(const br_req_t *r) { return r->adapter[0] ? r->adapter : "-"; }
static const char *tenant_label(const br_req_t *r) { return r->tenant ? r->tenant->name : "-"; }

/* Marks a request finished and wakes its HTTP thread; drops the scheduler's reference.  For
 * errors, st says what failed and server_fault whose fault it was (serve/openai.h). */
static void complete(br_sched_t *s, br_req_t *r, br_finish fin, br_status st, bool server_fault, const char *msg)
{
    double now = br_now();
    pthread_mutex_lock(&r->mu);
    r->finish = fin;
    if (msg) {
        snprintf(r->errmsg, sizeof r->errmsg, "%s", msg);
        r->status = st;
        r->server_fault = server_fault;
    }
    r->text_ready = r->text_len;
    r->done = true;
    r->t_done = now;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
    if (!r->internal) {
        static const char *names[] = {"none", "stop", "length", "error", "cancelled"};
        br_metric_add(s->m_finish, 1, names[fin]);
        if (fin == BR_FINISH_STOP || fin == BR_FINISH_LENGTH)
            br_metric_observe(s->m_latency, now - r->t_arrival, tenant_label(r));
    }
    br_req_unref(r);
}

/* Frees the request's KV pages and adapter pin and removes it from the running set. */
static void retire(br_sched_t *s, size_t idx)
{
    br_req_t *r = s->run[idx];
    for (size_t i = 0; i < r->n_pages; i++) br_kv_pool_free_page(s->kv, r->pages[i]);
    s->outstanding -= r->reserved_pages - r->n_pages;
    r->n_pages = 0;
    r->reserved_pages = 0;
    if (r->lora) br_adapters_release(s->o.adapters, r->adapter);
    r->lora = NULL;
    if (r->tenant) s->nrun_t[r->tenant->index]--;
    s->run[idx] = s->run[--s->nrun];
}

static void append_text(br_req_t *r, const char *p, size_t n)
{
    if (r->text_len + n + 1 > r->text_cap) {
        size_t nc = (r->text_len + n + 1) * 2;
        char *t = realloc(r->text, nc);
        if (!t) return; /* keep what we have; the request ends soon by length */
        r->text = t;
        r->text_cap = nc;
    }
    memcpy(r->text + r->text_len, p, n);
    r->text_len += n;
    r->text[r->text_len] = 0;
}

/* Longest suffix of text that is a proper prefix of some stop string. */
static size_t stop_holdback(const br_req_t *r)
{
    size_t hold = 0;
    for (int i = 0; i < r->gp.nstop; i++) {
        size_t ls = strlen(r->gp.stop[i]);
        if (!ls) continue;
        for (size_t k = ls - 1; k > hold; k--)
            if (k <= r->text_len && !memcmp(r->text + r->text_len - k, r->gp.stop[i], k)) {
                hold = k;
                break;
            }
    }
    return hold;
}

/* The guard: builds the repeat request for a finished response. NULL when it cannot run. */
static br_req_t *guard_child(br_sched_t *s, br_req_t *r)
{
    char *out = strndup(r->text ? r->text : "", r->text_len);
    if (!out) return NULL;
    int max_new = s->o.guard_max_tokens > 0 ? s->o.guard_max_tokens : (int)r->n_out + 16;
    int32_t *ids = NULL;
    size_t n = 0;
    /* cut the output (by whole bytes, then UTF-8 boundary) until the repeat prompt fits */
    for (;;) {
        char *prompt = NULL;
        if (br_parden_prompt((br_parden_template)s->o.guard_template, out, &prompt) != BR_OK) break;
        free(ids);
        ids = NULL;
        br_status st = s->o.prompt ? br_prompt_text(s->o.prompt, prompt, strlen(prompt), &ids, &n)
                                   : br_tokenizer_encode(s->o.tok, prompt, strlen(prompt), 1, &ids, &n);
        free(prompt);
        if (st != BR_OK) break;
        if (n + (size_t)max_new <= s->ctx && n > 0) break;
        size_t len = strlen(out);
        if (len == 0 || n >= s->ctx) {
            free(ids);
            ids = NULL;
            break;
        }
        size_t cut = len * 3 / 4;
        cut = br_utf8_valid_len(out, cut);
        out[cut] = 0;
        if (n + 16 > s->ctx) continue;
        max_new = (int)(s->ctx - n);
    }
    free(out);
    if (!ids) return NULL;
    br_gen_params_t gp = {.max_tokens = max_new, .temperature = 0, .top_p = 1};
    br_req_t *c = NULL;
    if (br_req_create(&c, ids, n, &gp) != BR_OK || !c) {
        free(ids);
        return NULL;
    }
    snprintf(c->id, sizeof c->id, "%.40s-guard", r->id);
    c->tenant = r->tenant;
    snprintf(c->adapter, sizeof c->adapter, "%s", r->adapter);
    c->internal = true;
    c->guard_parent = r;
    return c;
}

static const char REFUSAL[] = "I'm sorry, but I can't help with that.";

/* A response has finished generating: the guard runs first when enabled. */
static void finish(br_sched_t *s, br_req_t *r, br_finish fin)
{
    if (r->internal && r->guard_parent) {
        br_req_t *p = r->guard_parent;
        br_parden_result_t res = {0};
        br_status st = br_parden_check(&s->parden, p->text ? p->text : "", r->text ? r->text : "", &res);
        pthread_mutex_lock(&p->mu);
        p->guarded = st == BR_OK;
        p->guard_score = res.score;
        p->guard_flagged = st != BR_OK || res.harmful; /* fail closed */
        if (p->guard_flagged) {
            p->text_len = 0;
            append_text(p, REFUSAL, sizeof REFUSAL - 1);
        }
        pthread_mutex_unlock(&p->mu);
        br_metric_add(s->m_guard, 1, st != BR_OK ? "error" : res.harmful ? "flagged" : "pass");
        complete(s, p, p->finish, BR_OK, false, NULL);
        complete(s, r, fin, BR_OK, false, NULL);
        return;
    }
    if (r->guard && fin != BR_FINISH_ERROR && fin != BR_FINISH_CANCEL) {
        r->finish = fin;
        br_req_t *c = guard_child(s, r);
        if (c) {
            r->guard_child = c;
            q_push_front(&s->wait[r->tenant ? r->tenant->index : 0], c);
            return;
        }
        /* fail closed: a response the guard could not check is not released */
        pthread_mutex_lock(&r->mu);
        r->guard_flagged = true;
        r->text_len = 0;
        append_text(r, REFUSAL, sizeof REFUSAL - 1);
        pthread_mutex_unlock(&r->mu);
        br_metric_add(s->m_guard, 1, "error");
    }
    complete(s, r, fin, BR_OK, false, NULL);
}

static bool is_stop_id(const br_sched_t *s, int32_t tok)
{
    for (size_t i = 0; i < s->n_stops; i++)
        if (s->stops[i] == tok) return true;
    return false;
}

/* Adds one sampled token; returns the finish reason (NONE: keep going). */
static br_finish add_token(br_sched_t *s, br_req_t *r, int32_t tok)
{
    if (r->n_out == r->cap_out) {
        size_t nc = r->cap_out ? 2 * r->cap_out : 64;
        int32_t *o = realloc(r->out, nc * sizeof *o);
        if (!o) return BR_FINISH_LENGTH;
        r->out = o;
        r->cap_out = nc;
    }
    double now = br_now();
    pthread_mutex_lock(&r->mu);
    if (r->n_out == 0) r->t_first_token = now;
    pthread_mutex_unlock(&r->mu);
    if (r->n_out == 0 && !r->internal) br_metric_observe(s->m_ttft, now - r->t_arrival, tenant_label(r));
    if (!r->gp.ignore_eos && is_stop_id(s, tok)) return BR_FINISH_STOP;
    r->out[r->n_out++] = tok;
    if (!r->internal) {
        br_metric_add(s->m_gen_tok, 1, tenant_label(r), adapter_label(r));
        if (r->tenant) {
            s->vtc[r->tenant->index] += 2.0 / r->tenant->weight;
            br_tenants_charge(s->o.tenants, r->tenant, now, 1);
        }
    }
    size_t plen = 0;
    const unsigned char *piece = br_tokenizer_token_bytes(s->o.tok, tok, &plen);
    br_finish fin = BR_FINISH_NONE;
    pthread_mutex_lock(&r->mu);
    if (piece) append_text(r, (const char *)piece, plen);
    for (int i = 0; i < r->gp.nstop; i++) {
        size_t ls = strlen(r->gp.stop[i]);
        size_t from = r->scan_from > ls ? r->scan_from - ls : 0;
        char *hit = r->text_len ? memmem(r->text + from, r->text_len - from, r->gp.stop[i], ls) : NULL;
        if (hit) {
            r->text_len = (size_t)(hit - r->text);
            r->text[r->text_len] = 0;
            fin = BR_FINISH_STOP;
        }
    }
    r->scan_from = r->text_len;
    if (fin == BR_FINISH_NONE && r->n_out >= (size_t)r->gp.max_tokens) fin = BR_FINISH_LENGTH;
    if (fin == BR_FINISH_NONE && r->n_prompt + r->n_out > s->ctx) fin = BR_FINISH_LENGTH;
    if (!r->guard && !r->internal) {
        size_t hold = fin ? 0 : stop_holdback(r);
        size_t tail = fin ? 0 : br_utf8_incomplete_tail(r->text, r->text_len - hold);
        size_t ready = r->text_len - hold - tail;
        if (ready > r->text_ready) {
            r->text_ready = ready;
            pthread_cond_broadcast(&r->cv);
        }
    }
    pthread_mutex_unlock(&r->mu);
    return fin;
}

/* Takes new submissions; lifts the VTC of tenants that become active. */
static void take_inbox(br_sched_t *s)
{
    pthread_mutex_lock(&s->mu);
    br_req_t *r = s->inbox.head;
    s->inbox.head = s->inbox.tail = NULL;
    s->inbox.n = 0;
    pthread_mutex_unlock(&s->mu);
    while (r) {
        br_req_t *next = r->next;
        size_t t = r->tenant ? (size_t)r->tenant->index : 0;
        if (s->wait[t].n == 0 && s->nrun_t[t] == 0) {
            double lo = INFINITY;
            for (size_t u = 0; u < s->ntenants; u++)
                if (u != t && (s->wait[u].n || s->nrun_t[u]) && s->vtc[u] < lo) lo = s->vtc[u];
            if (isfinite(lo) && s->vtc[t] < lo) s->vtc[t] = lo;
        }
        q_push(&s->wait[t], r);
        r = next;
    }
}

static void mark_admitted(br_req_t *r)
{
    pthread_mutex_lock(&r->mu);
    r->admitted = true;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
}

/* Is tenant t's queue served before tenant u's?  VTC: the smaller counter; opts.fcfs: the older
 * head request. */
static bool fairer(const br_sched_t *s, size_t t, size_t u)
{
    if (s->o.fcfs) return s->wait[t].head->t_arrival < s->wait[u].head->t_arrival;
    return s->vtc[t] < s->vtc[u];
}

/* Admission between steps (see sched.h). */
static void admit(br_sched_t *s)
{
    size_t max_run = s->o.max_running;
    bool blocked = false; /* the KV pool cannot take the fairest candidate: admit nobody else */
    bool *tried = calloc(s->ntenants, sizeof *tried);
    if (!tried) return;
    /* baselines: only the adapter of the running batch, else of the oldest waiting request */
    const char *group = NULL;
    if (s->o.policy != BR_SCHED_BATCHED) {
        if (s->nrun) group = s->run[0]->adapter;
        else {
            br_req_t *old = NULL;
            for (size_t t = 0; t < s->ntenants; t++)
                if (s->wait[t].head && (!old || s->wait[t].head->t_arrival < old->t_arrival)) old = s->wait[t].head;
            if (old) group = old->adapter;
        }
    }
    int scan_max = group ? INT32_MAX : 64;
    while (!blocked && s->nrun < max_run) {
        /* the active tenant with the smallest counter not yet tried this round */
        size_t best = SIZE_MAX;
        for (size_t t = 0; t < s->ntenants; t++)
            if (!tried[t] && s->wait[t].n && (best == SIZE_MAX || fairer(s, t, best))) best = t;
        if (best == SIZE_MAX) break;
        queue_t *q = &s->wait[best];
        br_req_t *prev = NULL, *r = q->head;
        bool admitted = false;
        for (int scan = 0; r && scan < scan_max && !admitted && !blocked; scan++) {
            br_req_t *next = r->next;
            if (group && strcmp(r->adapter, group)) {
                prev = r;
                r = next;
                continue;
            }
            if (req_cancelled(r) || (r->guard_parent && req_cancelled(r->guard_parent))) {
                q_remove(q, prev, r);
                if (r->guard_parent) complete(s, r->guard_parent, BR_FINISH_CANCEL, BR_OK, false, NULL);
                complete(s, r, BR_FINISH_CANCEL, BR_OK, false, NULL);
                r = next;
                continue;
            }
            size_t need = br_sched_pages_needed(s, r->n_prompt, r->gp.max_tokens);
            size_t avail = br_kv_pool_pages_free(s->kv) - s->outstanding;
            if (need > avail) {
                blocked = true;
                break;
            }
            const br_lora_adapter_t *a = NULL;
            if (r->adapter[0]) {
                br_status st = br_adapters_acquire(s->o.adapters, r->adapter, &a);
                if (st == BR_EBUSY) { /* loading: try this tenant's next request */
                    prev = r;
                    r = next;
                    continue;
                }
                if (st != BR_OK) {
                    q_remove(q, prev, r);
                    /* the guard's repeat failing is the server's fault, not the client's */
                    if (r->guard_parent) complete(s, r->guard_parent, BR_FINISH_ERROR, st, true, br_errmsg());
                    complete(s, r, BR_FINISH_ERROR, st, false, br_errmsg());
                    r = next;
                    continue;
                }
            }
            q_remove(q, prev, r);
            r->lora = a;
            r->reserved_pages = need;
            s->outstanding += need;
            r->n_cached = 0;
            if (r->gp.has_seed) br_rng_seed(&r->rng, r->gp.seed);
            else br_rng_seed_stream(&r->rng, br_rng_u64(&s->rng), 0);
            if (s->nrun == s->caprun) { /* cannot happen: caprun == max_running */
                s->outstanding -= need;
                if (a) br_adapters_release(s->o.adapters, r->adapter);
                q_push_front(q, r);
                blocked = true;
                break;
            }
            s->run[s->nrun++] = r;
            if (r->tenant) s->nrun_t[r->tenant->index]++;
            mark_admitted(r);
            admitted = true;
        }
        if (!admitted) tried[best] = true;
    }
    free(tried);
}

static br_status ensure_pages(br_sched_t *s, br_req_t *r, size_t positions)
{
    size_t want = (positions + s->P - 1) / s->P;
    if (want > r->cap_pages) {
        size_t nc = want + 8;
        int32_t *p = realloc(r->pages, nc * sizeof *p);
        if (!p) return br_error(BR_ENOMEM, "out of memory");
        r->pages = p;
        r->cap_pages = nc;
    }
    while (r->n_pages < want) {
        BR_ASSERT(r->n_pages < r->reserved_pages); /* admission reserved them */
        BR_TRY(br_kv_pool_alloc_page(s->kv, &r->pages[r->n_pages]));
        r->n_pages++;
        s->outstanding--;
    }
    return BR_OK;
}

/* BR_SCHED_MERGE: makes the weights W + s B A of r's adapter (unmerging the previous one).  The
 * merged adapter keeps a pin of its own so that it cannot be freed while merged. */
static void merge_switch(br_sched_t *s, br_req_t *r)
{
    if (s->merged == r->lora && (r->lora || !s->merged)) return;
    double t0 = br_now();
    if (s->merged) {
        br_lora_merge_into_model(s->o.model, s->merged, -1.0f);
        br_adapters_release(s->o.adapters, s->merged_name);
        s->merged = NULL;
    }
    if (r->lora) {
        const br_lora_adapter_t *a = NULL;
        if (br_adapters_acquire(s->o.adapters, r->adapter, &a) == BR_OK && a == r->lora) {
            br_lora_merge_into_model(s->o.model, a, 1.0f);
            s->merged = a;
            snprintf(s->merged_name, sizeof s->merged_name, "%s", r->adapter);
        } else if (a) {
            br_adapters_release(s->o.adapters, r->adapter);
        }
    }
    s->merge_seconds += br_now() - t0;
    s->merges++;
}

/* ---- one step, in phases: drop cancelled, admit, plan the batch, pages and LoRA rows, forward,
 * sample ---- */

/* Removes r from the running set (if there). */
static void retire_req(br_sched_t *s, br_req_t *r)
{
    for (size_t k = 0; k < s->nrun; k++)
        if (s->run[k] == r) {
            retire(s, k);
            return;
        }
}

/* Ends r (and the response its guard repeat belongs to) with an error. */
static void fail_req(br_sched_t *s, br_req_t *r, br_status st, bool server_fault, const char *msg)
{
    retire_req(s, r);
    if (r->guard_parent) complete(s, r->guard_parent, BR_FINISH_ERROR, st, true, msg);
    complete(s, r, BR_FINISH_ERROR, st, server_fault, msg);
}

static void drop_cancelled(br_sched_t *s)
{
    for (size_t i = 0; i < s->nrun;) {
        br_req_t *r = s->run[i];
        if (req_cancelled(r) || (r->guard_parent && req_cancelled(r->guard_parent))) {
            retire(s, i);
            if (r->guard_parent) complete(s, r->guard_parent, BR_FINISH_CANCEL, BR_OK, false, NULL);
            complete(s, r, BR_FINISH_CANCEL, BR_OK, false, NULL);
            continue;
        }
        i++;
    }
}

/* One decode row per request past its prompt (round robin when they alone exceed the budget).
 * Returns the rows used; *nseq counts the sequences planned. */
static size_t plan_decode_rows(br_sched_t *s, size_t budget, size_t *nseq)
{
    size_t N = 0;
    size_t start = s->rr % s->nrun;
    for (size_t k = 0; k < s->nrun && N < budget; k++) {
        br_req_t *r = s->run[(start + k) % s->nrun];
        if (r->n_cached < r->n_prompt) continue;
        br_seq_t *q = &s->seqs[*nseq];
        q->tokens = &r->out[r->n_out - 1];
        q->n_tokens = 1;
        q->start_pos = r->n_cached;
        q->want_logits = BR_LOGITS_LAST;
        s->seq_req[(*nseq)++] = r;
        N++;
    }
    s->rr++;
    return N;
}

/* Prefill chunks of prompts, oldest first (run[] keeps admission order only roughly: pick by
 * arrival), until the row budget is used.  Returns the total rows N. */
static size_t plan_prefill_chunks(br_sched_t *s, size_t N, size_t budget, size_t *nseq)
{
    for (;;) {
        br_req_t *pick = NULL;
        for (size_t i = 0; i < s->nrun; i++) {
            br_req_t *r = s->run[i];
            if (r->n_cached >= r->n_prompt) continue;
            bool queued = false;
            for (size_t j = 0; j < *nseq && !queued; j++) queued = s->seq_req[j] == r;
            if (!queued && (!pick || r->t_arrival < pick->t_arrival)) pick = r;
        }
        if (!pick || N >= budget) return N;
        size_t chunk = pick->n_prompt - pick->n_cached;
        if (chunk > budget - N) chunk = budget - N;
        br_seq_t *q = &s->seqs[*nseq];
        q->tokens = pick->prompt + pick->n_cached;
        q->n_tokens = chunk;
        q->start_pos = pick->n_cached;
        q->want_logits = pick->n_cached + chunk == pick->n_prompt ? BR_LOGITS_LAST : BR_LOGITS_NONE;
        s->seq_req[(*nseq)++] = pick;
        N += chunk;
    }
}

/* KV pages for every planned sequence (admission reserved them) and each row's adapter. */
static void assign_pages_and_rows(br_sched_t *s, size_t nseq)
{
    size_t row = 0;
    for (size_t i = 0; i < nseq; i++) {
        br_req_t *r = s->seq_req[i];
        br_seq_t *q = &s->seqs[i];
        br_status st = ensure_pages(s, r, q->start_pos + q->n_tokens);
        BR_ASSERT(st == BR_OK);
        q->pages = r->pages;
        q->n_pages = r->n_pages;
        for (size_t j = 0; j < q->n_tokens; j++) s->row_ad[row++] = r->lora;
    }
}

/* The forward over every planned row.  *distinct: adapters in the batch.  On failure every
 * planned request ends with a server error. */
static br_status run_forward(br_sched_t *s, size_t nseq, size_t N, size_t *distinct)
{
    br_lora_hook_t hook = br_lora_batch_hook(s->lb);
    br_status st = br_lora_batch_set(s->lb, s->row_ad, N);
    *distinct = br_lora_batch_nadapters(s->lb);
    if (s->o.policy == BR_SCHED_MERGE) {
        merge_switch(s, s->run[0]);
        *distinct = 0; /* the weights carry the adapter */
    }
    if (st == BR_OK)
        st = br_model_forward_batch(s->o.model, s->kv, s->seqs, nseq, *distinct ? &hook : NULL, s->logits);
    if (st == BR_OK) return BR_OK;
    char msg[512];
    snprintf(msg, sizeof msg, "model forward failed: %s", br_errmsg());
    BR_ERROR("%s", msg);
    for (size_t i = 0; i < nseq; i++) fail_req(s, s->seq_req[i], st, true, msg);
    return st;
}

/* Index of the first non-finite logit, or n when all are finite. */
static size_t first_non_finite(const float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i])) return i;
    return n;
}

/* Advances every planned sequence past its rows; samples a token for those that asked for
 * logits, and finishes requests that are done.  Non-finite logits (an adapter or a model whose
 * numbers overflowed) end that request with a server error instead of sampling garbage. */
static void sample_and_advance(br_sched_t *s, size_t nseq)
{
    size_t li = 0;
    for (size_t i = 0; i < nseq; i++) {
        br_req_t *r = s->seq_req[i];
        br_seq_t *q = &s->seqs[i];
        bool prefill = r->n_cached < r->n_prompt;
        r->n_cached += q->n_tokens;
        if (prefill && !r->internal) {
            br_metric_add(s->m_prompt_tok, (double)q->n_tokens, tenant_label(r), adapter_label(r));
            if (r->tenant) s->vtc[r->tenant->index] += (double)q->n_tokens / r->tenant->weight;
        }
        if (q->want_logits != BR_LOGITS_LAST) continue;
        float *logits = s->logits + li++ * s->V; /* br_sample works in place */
        size_t bad = first_non_finite(logits, s->V);
        if (bad < s->V) {
            char msg[512];
            snprintf(msg, sizeof msg,
                     "the model produced a non-finite logit (%g at token %zu) for this request%s%s%s: nothing was "
                     "sampled; check the adapter's scale (lora_alpha) and the model's weights",
                     (double)logits[bad], bad, r->adapter[0] ? " (adapter '" : "", r->adapter, r->adapter[0] ? "')" : "");
            BR_WARN("%s", msg);
            fail_req(s, r, BR_ERANGE, true, msg);
            continue;
        }
        br_sampler_t sp = {.temperature = r->gp.temperature, .top_k = r->gp.top_k, .top_p = r->gp.top_p};
        int32_t tok = br_sample(logits, s->V, &sp, &r->rng);
        br_finish fin = add_token(s, r, tok);
        if (fin != BR_FINISH_NONE) {
            retire_req(s, r);
            finish(s, r, fin);
        }
    }
}

/* One step: returns false when there was nothing to run. */
static bool step(br_sched_t *s)
{
    drop_cancelled(s);
    admit(s);
    publish(s);
    if (s->nrun == 0) return false;
    double t0 = br_now();
    size_t budget = s->o.max_batch_tokens, nseq = 0;
    size_t N = plan_decode_rows(s, budget, &nseq);
    N = plan_prefill_chunks(s, N, budget, &nseq);
    assign_pages_and_rows(s, nseq);
    size_t distinct = 0;
    if (run_forward(s, nseq, N, &distinct) != BR_OK) return true;
    sample_and_advance(s, nseq);
    br_metric_observe(s->m_batch_rows, (double)N);
    br_metric_observe(s->m_batch_adapters, (double)distinct);
    br_metric_observe(s->m_step, br_now() - t0);
    return true;
}

static void *sched_main(void *arg)
{
    br_sched_t *s = arg;
    for (;;) {
        take_inbox(s);
        bool worked = step(s);
        if (worked) continue;
        size_t waiting = 0;
        for (size_t t = 0; t < s->ntenants; t++) waiting += s->wait[t].n;
        pthread_mutex_lock(&s->mu);
        if (s->stop && !waiting && !s->inbox.n && !s->nrun) {
            pthread_mutex_unlock(&s->mu);
            break;
        }
        /* idle, or waiting for an adapter to load / pages to free: sleep briefly */
        if (!s->inbox.n) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            long ns = ts.tv_nsec + (waiting ? 2000000L : 50000000L);
            ts.tv_sec += ns / 1000000000L;
            ts.tv_nsec = ns % 1000000000L;
            pthread_cond_timedwait(&s->cv, &s->mu, &ts);
        }
        pthread_mutex_unlock(&s->mu);
    }
    return NULL;
}

br_status br_sched_create(br_sched_t **out, const br_sched_opts_t *o)
{
    *out = NULL;
    if (o->policy == BR_SCHED_MERGE && !o->model->params)
        return br_error(BR_EUNSUPPORTED, "the merge baseline adds adapters into the weights, which needs F32 "
                        "parameters in memory; this base is %s weights mapped in place (serve it batched, or "
                        "load it as F32)", br_wtype_name(o->model->wt));
    br_sched_t *s = calloc(1, sizeof *s);
    if (!s) return br_error(BR_ENOMEM, "out of memory");
    s->o = *o;
    if (!s->o.max_batch_tokens) s->o.max_batch_tokens = 256;
    if (!s->o.page_tokens) s->o.page_tokens = 16;
    if (!s->o.max_running) s->o.max_running = 256;
    const br_model_config_t *cfg = &o->model->cfg;
    s->V = (size_t)cfg->vocab_size;
    s->ctx = (size_t)cfg->max_position_embeddings;
    s->P = s->o.page_tokens;
    if (o->prompt) s->n_stops = br_prompt_stop_ids(o->prompt, &s->stops);
    else {
        s->eos = br_tokenizer_eos_id(o->tok);
        if (s->eos < 0) s->eos = cfg->eos_token_id;
        s->stops = &s->eos;
        s->n_stops = s->eos >= 0;
    }
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    br_rng_seed(&s->rng, o->seed);
    br_parden_opts_default(&s->parden);
    s->parden.threshold = o->guard_threshold;
    s->parden.tmpl = (br_parden_template)o->guard_template;
    s->ntenants = br_tenants_count(o->tenants);
    size_t maxr = s->o.max_running, maxn = s->o.max_batch_tokens + maxr;
    s->caprun = maxr;
    s->wait = calloc(s->ntenants, sizeof *s->wait);
    s->vtc = calloc(s->ntenants, sizeof *s->vtc);
    s->nrun_t = calloc(s->ntenants, sizeof *s->nrun_t);
    s->run = calloc(maxr, sizeof *s->run);
    s->seqs = calloc(maxr, sizeof *s->seqs);
    s->seq_req = calloc(maxr, sizeof *s->seq_req);
    s->row_ad = calloc(maxn, sizeof *s->row_ad);
    s->logits = br_alloc(maxr * s->V * sizeof(float));
    br_status st = BR_OK;
    if (!s->wait || !s->vtc || !s->nrun_t || !s->run || !s->seqs || !s->seq_req || !s->row_ad || !s->logits)
        st = br_error(BR_ENOMEM, "scheduler: out of memory for %zu requests x %zu vocabulary", maxr, s->V);
    if (st == BR_OK) st = br_kv_pool_create_typed(&s->kv, cfg, s->P, o->kv_budget_bytes, o->model->kv_type);
    if (st == BR_OK) st = br_lora_batch_create(&s->lb);
    if (st == BR_OK && o->metrics) {
        br_metrics_t *m = o->metrics;
        static const double tb[] = {0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};
        static const double rb[] = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024};
        static const double ab[] = {0, 1, 2, 4, 8, 16, 32, 64, 128};
        static const double sb[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1};
        s->m_prompt_tok = br_metrics_counter(m, "braid_prompt_tokens_total", "Prompt tokens processed", "tenant,adapter");
        s->m_gen_tok = br_metrics_counter(m, "braid_generation_tokens_total", "Tokens generated", "tenant,adapter");
        s->m_queue = br_metrics_gauge(m, "braid_queue_depth", "Requests waiting for admission", "");
        s->m_running = br_metrics_gauge(m, "braid_running_requests", "Requests in the running batch", "");
        s->m_kv_used = br_metrics_gauge(m, "braid_kv_pages_used", "KV cache pages in use", "");
        s->m_kv_total = br_metrics_gauge(m, "braid_kv_pages_total", "KV cache pages in the pool", "");
        s->m_batch_rows = br_metrics_histogram(m, "braid_batch_rows", "Token rows per scheduler step", "", rb, 11);
        s->m_batch_adapters = br_metrics_histogram(m, "braid_batch_adapters", "Distinct LoRA adapters per step", "", ab, 9);
        s->m_step = br_metrics_histogram(m, "braid_step_seconds", "Seconds per scheduler step", "", sb, 10);
        s->m_ttft = br_metrics_histogram(m, "braid_time_to_first_token_seconds", "Seconds from arrival to first token",
                                         "tenant", tb, 12);
        s->m_latency = br_metrics_histogram(m, "braid_request_latency_seconds", "Seconds from arrival to the end",
                                            "tenant", tb, 12);
        s->m_guard = br_metrics_counter(m, "braid_guard_verdicts_total", "PARDEN verdicts (pass, flagged, error)", "verdict");
        s->m_finish = br_metrics_counter(m, "braid_finished_total", "Requests finished by reason", "reason");
        br_metric_set(s->m_kv_total, (double)br_kv_pool_pages_total(s->kv));
    }
    if (st == BR_OK && pthread_create(&s->th, NULL, sched_main, s)) st = br_error(BR_ENOMEM, "cannot start the scheduler thread");
    if (st != BR_OK) {
        br_sched_free(s);
        return st;
    }
    s->started = true;
    *out = s;
    return BR_OK;
}

void br_sched_free(br_sched_t *s)
{
    if (!s) return;
    if (s->started) {
        pthread_mutex_lock(&s->mu);
        s->stop = true;
        s->draining = true;
        pthread_cond_signal(&s->cv);
        pthread_mutex_unlock(&s->mu);
        pthread_join(s->th, NULL);
    }
    if (s->merged) {
        br_lora_merge_into_model(s->o.model, s->merged, -1.0f);
        br_adapters_release(s->o.adapters, s->merged_name);
    }
    br_lora_batch_free(s->lb);
    br_kv_pool_free(s->kv);
    free(s->wait);
    free(s->vtc);
    free(s->nrun_t);
    free(s->run);
    free(s->seqs);
    free(s->seq_req);
    free(s->row_ad);
    br_free(s->logits);
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

br_status br_sched_submit(br_sched_t *s, br_req_t *r)
{
    pthread_mutex_lock(&s->mu);
    if (s->draining) {
        pthread_mutex_unlock(&s->mu);
        return br_error(BR_EBUSY, "the server is shutting down");
    }
    req_ref(r);
    q_push(&s->inbox, r);
    s->n_waiting_pub++;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
    if (r->adapter[0]) br_adapters_prefetch(s->o.adapters, r->adapter);
    return BR_OK;
}

void br_sched_drain(br_sched_t *s)
{
    pthread_mutex_lock(&s->mu);
    s->draining = true;
    pthread_mutex_unlock(&s->mu);
}

void br_sched_load(br_sched_t *s, size_t *waiting, size_t *running)
{
    pthread_mutex_lock(&s->mu);
    *waiting = s->n_waiting_pub;
    *running = s->n_running_pub;
    pthread_mutex_unlock(&s->mu);
}
