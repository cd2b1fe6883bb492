/* The scheduler: one thread owns the model and runs continuous batching.
 *
 * Each step builds one batch from every running request: a decode row for each request that
 * has finished its prompt, and prefill chunks of prompts (oldest first) up to --max-batch-tokens
 * rows.  Rows of different requests use different LoRA adapters (or none) in the same forward
 * (nn/lora.h batches them).  Requests join and leave between steps.
 *
 * Admission (between steps): a waiting request is admitted when (1) its adapter is loaded and
 * pinned (loading happens on the registry's thread, never here), and (2) the KV pool can hold
 * its whole worst case (prompt + max_tokens, capped by the context), counting what running
 * requests may still need: so a running request never waits for a page and the pool never
 * overflows; when it is full, new requests wait.  Among tenants with waiting requests, the one
 * with the smallest virtual token counter goes first (S-LoRA's VTC: a tenant's counter grows by
 * prompt tokens + 2 x generated tokens, divided by its weight, and a tenant that becomes active
 * is lifted to the smallest active counter), so one heavy tenant cannot starve the others.
 *
 * Requests are shared between the HTTP thread that made them and the scheduler (reference
 * counted); the HTTP thread waits on br_req_wait for new text or the end. */
#ifndef BR_SERVE_SCHED_H
#define BR_SERVE_SCHED_H
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/rng.h"
#include "base/status.h"
#include "lm/model.h"
#include "lm/prompt.h"
#include "text/tokenizer.h"
#include "nn/lora.h"
#include "serve/adapters.h"
#include "serve/metrics.h"
#include "serve/tenants.h"

#define BR_MAX_STOP 4

typedef struct {
    int max_tokens;          /* >= 1 */
    float temperature;       /* 0: greedy */
    float top_p;             /* (0, 1] */
    int top_k;               /* 0: all */
    bool has_seed;
    uint64_t seed;
    char *stop[BR_MAX_STOP]; /* malloc'd stop strings (NULL-terminated list) */
    int nstop;
    bool ignore_eos;
    unsigned given;          /* BR_GIVEN_* bits: what the request set (the rest may come from generation_config.json) */
} br_gen_params_t;

enum { BR_GIVEN_TEMPERATURE = 1, BR_GIVEN_TOP_P = 2, BR_GIVEN_TOP_K = 4 };

typedef enum { BR_FINISH_NONE = 0, BR_FINISH_STOP, BR_FINISH_LENGTH, BR_FINISH_ERROR, BR_FINISH_CANCEL } br_finish;

typedef struct br_req br_req_t;
struct br_req {
    /* set by the creator before submit, then read-only */
    char id[48];
    br_tenant_t *tenant;
    char adapter[128];       /* "" = base model */
    int32_t *prompt;         /* (n_prompt) malloc'd */
    size_t n_prompt;
    br_gen_params_t gp;
    bool guard;              /* run the PARDEN check before finishing */
    bool internal;           /* a guard repeat: no metrics, no tenant accounting */
    double t_arrival;

    /* scheduler-private */
    br_req_t *next;          /* queue link */
    const br_lora_adapter_t *lora;
    int32_t *pages;
    size_t n_pages, cap_pages, reserved_pages;
    size_t n_cached;         /* positions already in the KV cache */
    int32_t *out;            /* generated tokens */
    size_t n_out, cap_out;
    br_rng_t rng;
    br_req_t *guard_child;   /* the repeat request while the guard runs */
    br_req_t *guard_parent;
    size_t scan_from;        /* stop-string search start */

    /* shared with the HTTP thread: guarded by mu */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int refs;
    char *text;              /* generated text (raw bytes) */
    size_t text_len, text_cap;
    size_t text_ready;       /* bytes safe to show (no partial stop string or UTF-8 char) */
    bool admitted;           /* taken off the wait queue */
    bool done;
    br_finish finish;
    br_status status;        /* for errors: what failed (serve/openai.h maps it to HTTP) */
    bool server_fault;       /* the failure is the server's (forward, non-finite logits), not the request's */
    char errmsg[512];
    bool cancelled;          /* set by the HTTP side when the client went away */
    double t_first_token, t_done;
    bool guarded;            /* guard verdict available */
    double guard_score;
    bool guard_flagged;
};

/* A request with one reference held by the caller; prompt is adopted (free()'d with the
 * request).  The stop strings in gp are adopted too. */
br_status br_req_create(br_req_t **out, int32_t *prompt, size_t n_prompt, const br_gen_params_t *gp);
void br_req_unref(br_req_t *r);
/* Waits until the request has more than `seen_text` ready bytes, is done, or `timeout_s`
 * passes.  Returns whether it is done.  Caller must not hold r->mu. */
bool br_req_wait(br_req_t *r, size_t seen_text, double timeout_s);
/* The client went away: the scheduler frees its pages at the next step. */
void br_req_cancel(br_req_t *r);

typedef struct {
    br_model_t *model;          /* owned by the caller, used only by the scheduler thread */
    const br_tokenizer_t *tok;
    const br_prompt_t *prompt;  /* the prompt pipeline (guard repeats, stop ids), or NULL: tok as is, its eos */
    br_adapters_t *adapters;
    br_tenants_t *tenants;
    br_metrics_t *metrics;      /* may be NULL */
    size_t max_batch_tokens;    /* rows per step (>= 1); default 256 */
    size_t kv_budget_bytes;     /* KV pool size */
    size_t page_tokens;         /* default 16 */
    size_t max_running;         /* requests in the batch at once; 0: 256 */
    bool guard;                 /* PARDEN on finished responses */
    double guard_threshold;
    int guard_template;         /* br_parden_template */
    int guard_max_tokens;       /* repeat length cap; 0: the output's length + 16 */
    uint64_t seed;              /* for requests without a seed */
    int policy;                 /* br_sched_policy (benchmark baselines) */
    bool fcfs;                  /* control for bench/serve: admit the oldest waiting request of any
                                 * tenant, ignoring the virtual token counters (no fairness) */
} br_sched_opts_t;

/* How batches are formed.  braid serves with BR_SCHED_BATCHED; the others are the baselines of
 * bench/serve (S-LoRA's comparison): */
typedef enum {
    BR_SCHED_BATCHED = 0,    /* any mix of adapters in one batch (batched LoRA) */
    BR_SCHED_ONE_ADAPTER,    /* a batch holds the requests of one adapter (llama.cpp server style) */
    BR_SCHED_MERGE,          /* one adapter at a time, merged into the base weights on each switch
                              * (PEFT-style weight swapping; no LoRA compute in the forward) */
} br_sched_policy;

typedef struct br_sched br_sched_t;
br_status br_sched_create(br_sched_t **out, const br_sched_opts_t *o);
/* Stops the thread after every submitted request has finished (drain); frees everything. */
void br_sched_free(br_sched_t *s);

/* Queues a request (takes a reference).  BR_EBUSY when draining. */
br_status br_sched_submit(br_sched_t *s, br_req_t *r);
/* Stop admitting new submissions (they get BR_EBUSY); running and queued ones finish. */
void br_sched_drain(br_sched_t *s);
/* Requests waiting / running now. */
void br_sched_load(br_sched_t *s, size_t *waiting, size_t *running);
/* KV pages a request needs in the worst case, and the pool's total: lets the HTTP layer refuse a
 * request that could never fit. */
size_t br_sched_pages_needed(const br_sched_t *s, size_t n_prompt, int max_tokens);
size_t br_sched_pages_total(const br_sched_t *s);
size_t br_sched_context(const br_sched_t *s);
#endif
