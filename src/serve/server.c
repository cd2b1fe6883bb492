#include "serve/server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/fileio.h"
#include "base/log.h"
#include "base/timer.h"
#include "guard/parden.h"
#include "lm/model.h"
#include "lm/prompt.h"
#include "text/tokenizer.h"
#include "serve/adapters.h"
#include "serve/console.h"
#include "serve/metrics.h"
#include "serve/openai.h"
#include "serve/sched.h"
#include "serve/tenants.h"
#include "serve/util.h"

struct br_server {
    br_server_opts_t o;
    char model_name[128];
    br_model_t *model;
    br_prompt_t *prompt;         /* the prompt pipeline: tokenizer, BOS, chat template, stop ids */
    br_tenants_t *tenants;
    br_metrics_t *metrics;
    br_adapters_t *adapters;
    br_sched_t *sched;
    br_console_t *console;       /* GET /v1/status and its per-second samples */
    struct MHD_Daemon *d;        /* the public listener */
    struct MHD_Daemon *md;       /* the operator listener (--metrics-addr), or NULL */
    int port, metrics_port;
    bool guard;
    atomic_int inflight;         /* generation requests not yet answered */
    atomic_bool draining;
    atomic_bool leaving;         /* br_server_announce_stop: /health 503, requests still served */
    atomic_ulong next_id;
    bool shut;
    time_t created;
    br_metric_t *m_requests, *m_http;
    /* deadlines (see watchdog_main) */
    pthread_mutex_t track_mu;
    struct conn_track *tracks;   /* open connections of the public listener */
    pthread_t watchdog;
    bool watchdog_started;
    atomic_bool watchdog_stop;
    atomic_int deadline_kills;
};

/* ---- connection state and replies ---- */

typedef struct {
    br_buf_t body;
    bool too_big;                /* over --max-body-kb: the rest is discarded, then 413 */
    bool counted;                /* inflight incremented */
} conn_t;

static enum MHD_Result send_text(struct MHD_Connection *c, unsigned status, const char *ctype, char *text)
{
    if (!text) return MHD_NO;
    struct MHD_Response *r = MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(text);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", ctype);
    enum MHD_Result ok = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ok;
}

/* An OpenAI error object (Retry-After when e->retry_after > 0). */
static enum MHD_Result send_api_error(struct MHD_Connection *c, const br_openai_error_t *e)
{
    char *text = br_openai_error_json(e);
    if (!text) return MHD_NO;
    struct MHD_Response *r = MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(text);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", "application/json");
    if (e->retry_after > 0) {
        char ra[32];
        snprintf(ra, sizeof ra, "%d", e->retry_after);
        MHD_add_response_header(r, "Retry-After", ra);
    }
    enum MHD_Result ok = MHD_queue_response(c, e->http, r);
    MHD_destroy_response(r);
    return ok;
}

static enum MHD_Result send_error(struct MHD_Connection *c, unsigned status, const char *code, const char *param,
                                  const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static enum MHD_Result send_error(struct MHD_Connection *c, unsigned status, const char *code, const char *param,
                                  const char *fmt, ...)
{
    br_openai_error_t e = {.http = status, .code = code, .param = param};
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e.message, sizeof e.message, fmt, ap);
    va_end(ap);
    return send_api_error(c, &e);
}

/* A library failure (status + br_errmsg) as an error reply, through the one status table. */
static enum MHD_Result send_status(struct MHD_Connection *c, br_status st, const char *code, const char *param)
{
    br_openai_error_t e = {.http = br_openai_http_status(st, false), .code = code, .param = param};
    e.retry_after = e.http == 503 ? 1 : 0; /* a budget is full: worth retrying soon */
    snprintf(e.message, sizeof e.message, "%s", br_errmsg());
    return send_api_error(c, &e);
}

/* The peer closed its end (recv would return 0).  Pipelined bytes do not count as closed. */
static bool peer_closed(struct MHD_Connection *c)
{
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (!ci) return false;
    int fd = ci->connect_fd;
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, 0) <= 0) return false;
    if (p.revents & (POLLHUP | POLLERR)) return true;
    char b;
    ssize_t n = recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
    return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
}

/* ---- deadlines: the request head and the body each get a fixed time, not reset by each byte
 * (libmicrohttpd's own timeout is an idle timeout, which a client sending one byte at a time
 * never trips).  A watchdog thread shuts down the socket of a connection past its deadline. ---- */

typedef enum { PH_HEAD, PH_BODY, PH_RESPOND, PH_KILLED } conn_phase;

struct conn_track {
    int fd;
    conn_phase phase;
    double deadline;             /* for PH_HEAD and PH_BODY */
    struct conn_track *prev, *next;
};

static void track_set(br_server_t *s, struct MHD_Connection *c, conn_phase ph, double timeout_s)
{
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    struct conn_track *t = ci ? ci->socket_context : NULL;
    if (!t) return;
    pthread_mutex_lock(&s->track_mu);
    if (t->phase != PH_KILLED) {
        t->phase = ph;
        t->deadline = br_now() + timeout_s;
    }
    pthread_mutex_unlock(&s->track_mu);
}

/* Connection opened / closed: libmicrohttpd calls CLOSED before it closes the socket, so the
 * watchdog never touches a descriptor that another connection may have reused. */
static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
    br_server_t *s = cls;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        struct conn_track *t = ci ? calloc(1, sizeof *t) : NULL;
        if (!t) return;
        t->fd = ci->connect_fd;
        t->phase = PH_HEAD;
        t->deadline = br_now() + s->o.head_timeout_s;
        pthread_mutex_lock(&s->track_mu);
        t->next = s->tracks;
        if (s->tracks) s->tracks->prev = t;
        s->tracks = t;
        pthread_mutex_unlock(&s->track_mu);
        *socket_context = t;
        return;
    }
    struct conn_track *t = *socket_context;
    if (!t) return;
    pthread_mutex_lock(&s->track_mu);
    if (t->prev) t->prev->next = t->next;
    else s->tracks = t->next;
    if (t->next) t->next->prev = t->prev;
    pthread_mutex_unlock(&s->track_mu);
    free(t);
    *socket_context = NULL;
}

static void *watchdog_main(void *arg)
{
    br_server_t *s = arg;
    static const char timeout_reply[] = "HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n";
    while (!atomic_load(&s->watchdog_stop)) {
        usleep(100000);
        double now = br_now();
        pthread_mutex_lock(&s->track_mu);
        for (struct conn_track *t = s->tracks; t; t = t->next) {
            if ((t->phase != PH_HEAD && t->phase != PH_BODY) || now < t->deadline) continue;
            /* nothing has been written on this connection yet: a raw 408 is a well-formed reply */
            ssize_t w = send(t->fd, timeout_reply, sizeof timeout_reply - 1, MSG_DONTWAIT | MSG_NOSIGNAL);
            (void)w;
            shutdown(t->fd, SHUT_RDWR);
            t->phase = PH_KILLED;
            atomic_fetch_add(&s->deadline_kills, 1);
        }
        pthread_mutex_unlock(&s->track_mu);
    }
    return NULL;
}

static int hex_digit(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* libmicrohttpd's URL decoding, except that %00 stays as it is: a decoded NUL would cut a name
 * short ("DELETE /v1/adapters/law%00x" must not mean "law"); left encoded, the name is refused
 * as outside the adapter-name alphabet. */
static size_t unescape_keep_nul(void *cls, struct MHD_Connection *c, char *s)
{
    (void)cls;
    (void)c;
    char *w = s;
    for (const char *r = s; *r;) {
        int hi, lo;
        if (r[0] == '%' && (hi = hex_digit(r[1])) >= 0 && (lo = hex_digit(r[2])) >= 0 && (hi | lo)) {
            *w++ = (char)(hi * 16 + lo);
            r += 3;
        } else {
            *w++ = *r++;
        }
    }
    *w = 0;
    return (size_t)(w - s);
}

/* ---- generation endpoints, in phases: parse, resolve the model, tokenize, check the
 * context and limits, submit, wait for the start, reply ---- */

typedef struct {
    br_openai_request_t q;       /* the parsed request */
    br_tenant_t *tenant;
    char adapter[128];           /* "" = base */
    int32_t *ids;                /* the prompt's tokens (malloc'd) */
    size_t n;
} gen_t;

static void gen_clear(gen_t *g)
{
    br_openai_request_clear(&g->q);
    free(g->ids);
    g->ids = NULL;
}

static void count_request(br_server_t *s, const gen_t *g, unsigned code)
{
    char cs[16];
    snprintf(cs, sizeof cs, "%u", code);
    br_metric_add(s->m_requests, 1, g->tenant ? g->tenant->name : "-", g->adapter[0] ? g->adapter : "-", cs);
}

/* The model field names the base model or an adapter this tenant may use; others' adapters
 * read as missing (404, never 403: their names are not revealed). */
static br_status resolve_model(br_server_t *s, gen_t *g, br_openai_error_t *err)
{
    const char *name = g->q.model;
    if (!strcmp(name, s->model_name)) {
        g->adapter[0] = 0;
        return BR_OK;
    }
    char owner[64];
    bool known = br_serve_name_ok(name, 100) && br_adapters_lookup(s->adapters, name) == BR_OK;
    if (known) {
        br_adapters_owner(s->adapters, name, owner, sizeof owner);
        if (owner[0] ? strcmp(owner, g->tenant->name) != 0 : !br_tenants_may_use(s->tenants, g->tenant, name))
            known = false;
    }
    if (!known) {
        char shown[3 * 200 + 1];
        br_utf8_repair(shown, name, strnlen(name, 200));
        return br_openai_fail(err, 404, "model_not_found", "model",
                              "The model '%s' does not exist or you do not have access to it", shown);
    }
    snprintf(g->adapter, sizeof g->adapter, "%s", name);
    return BR_OK;
}

/* The prompt's tokens: text and chat through the prompt pipeline (lm/prompt.h: the same ids
 * `braid generate` gives the same prompt), token ids as sent.  A chat with braid's plain
 * template also stops at its turn marker; sampling parameters the request left out come from
 * the model's generation_config.json. */
static br_status tokenize_prompt(br_server_t *s, gen_t *g, br_openai_error_t *err)
{
    const char *param = g->q.chat ? "messages" : "prompt";
    br_status st = BR_OK;
    if (g->q.chat) st = br_prompt_chat(s->prompt, g->q.messages, &g->ids, &g->n);
    else if (g->q.prompt_text) st = br_prompt_text(s->prompt, g->q.prompt_text, strlen(g->q.prompt_text), &g->ids, &g->n);
    else {
        g->ids = g->q.prompt_ids;
        g->n = g->q.n_prompt_ids;
        g->q.prompt_ids = NULL;
    }
    if (st == BR_ENOMEM) return br_openai_fail(err, 503, NULL, NULL, "out of memory");
    if (st != BR_OK) return br_openai_fail(err, 400, NULL, param, "cannot build the prompt: %s", br_errmsg());
    if (g->n == 0) return br_openai_fail(err, 400, "invalid_value", "prompt", "the prompt is empty");
    br_gen_params_t *gp = &g->q.gp;
    const char *turn = g->q.chat ? br_prompt_chat_stop(s->prompt) : NULL;
    if (turn && gp->nstop < BR_MAX_STOP && !(gp->stop[gp->nstop++] = strdup(turn)))
        return br_openai_fail(err, 503, NULL, NULL, "out of memory");
    float t = gp->temperature, tp = gp->top_p;
    int tk = gp->top_k;
    br_prompt_sampling(s->prompt, &t, &tp, &tk);
    if (!(gp->given & BR_GIVEN_TEMPERATURE)) gp->temperature = t;
    if (!(gp->given & BR_GIVEN_TOP_P)) gp->top_p = tp;
    if (!(gp->given & BR_GIVEN_TOP_K)) gp->top_k = tk;
    return BR_OK;
}

/* The prompt fits the context, the worst case fits the KV pool, and the tenant's limits allow
 * it now; fills the default max_tokens of chat (the rest of the context). */
static br_status check_limits(br_server_t *s, gen_t *g, br_openai_error_t *err)
{
    size_t ctx = br_sched_context(s->sched);
    if (g->n >= ctx)
        return br_openai_fail(err, 400, "context_length_exceeded", g->q.chat ? "messages" : "prompt",
                              "This model's maximum context length is %zu tokens, however you requested %zu tokens in "
                              "the prompt",
                              ctx, g->n);
    /* a prompt plus max_tokens past the context ends with finish_reason "length" at the context */
    if (!g->q.gp.max_tokens) g->q.gp.max_tokens = (int)(ctx - g->n) + 1;
    size_t need = br_sched_pages_needed(s->sched, g->n, g->q.gp.max_tokens), total = br_sched_pages_total(s->sched);
    if (need > total)
        return br_openai_fail(err, 400, "context_length_exceeded", "max_tokens",
                              "this request needs %zu KV cache pages but the server has %zu: lower max_tokens or the "
                              "prompt",
                              need, total);
    int retry = 0;
    if (br_tenants_admit(s->tenants, g->tenant, br_now(), (double)g->n, &retry) != BR_OK) {
        br_openai_fail(err, retry ? 429 : 400, retry ? "rate_limit_exceeded" : "invalid_value", NULL, "%s", br_errmsg());
        err->retry_after = retry;
        return BR_EBUSY;
    }
    return BR_OK;
}

/* Hands the prompt and parameters to a new request and queues it. */
static br_status submit(br_server_t *s, gen_t *g, br_req_t **out, br_openai_error_t *err)
{
    br_gen_params_t gp = br_openai_take_params(&g->q);
    br_req_t *r = NULL;
    if (br_req_create(&r, g->ids, g->n, &gp) != BR_OK) {
        for (int k = 0; k < gp.nstop; k++) free(gp.stop[k]);
        return br_openai_fail(err, 503, NULL, NULL, "out of memory");
    }
    g->ids = NULL; /* the request owns them now */
    snprintf(r->id, sizeof r->id, "%s-%lx%04lx", g->q.chat ? "chatcmpl" : "cmpl", (unsigned long)time(NULL),
             (unsigned long)(atomic_fetch_add(&s->next_id, 1) & 0xffff));
    r->tenant = g->tenant;
    snprintf(r->adapter, sizeof r->adapter, "%s", g->adapter);
    r->guard = s->guard;
    if (br_sched_submit(s->sched, r) != BR_OK) {
        br_req_unref(r);
        return br_openai_fail(err, 503, NULL, NULL, "the server is shutting down");
    }
    *out = r;
    return BR_OK;
}

/* Waits until r is done, or (streaming) admitted, so that load errors still get a real status.
 * False when the client went away (the request is cancelled). */
static bool wait_for_start(struct MHD_Connection *c, br_req_t *r, bool stream)
{
    for (;;) {
        pthread_mutex_lock(&r->mu);
        bool done = r->done, admitted = r->admitted;
        pthread_mutex_unlock(&r->mu);
        if (done || (stream && admitted)) return true;
        br_req_wait(r, stream ? 0 : SIZE_MAX, 0.1);
        if (peer_closed(c)) {
            br_req_cancel(r);
            return false;
        }
    }
}

static br_openai_meta_t meta_of(const gen_t *g, br_req_t *r)
{
    return (br_openai_meta_t){.id = r->id, .model = g->q.model, .chat = g->q.chat, .include_usage = g->q.include_usage,
                              .created = (long long)time(NULL), .prompt_tokens = r->n_prompt,
                              .completion_tokens = r->n_out, .guard = r->guard, .guarded = r->guarded,
                              .guard_flagged = r->guard_flagged, .guard_score = r->guard_score};
}

/* ---- streaming ---- */

typedef struct {
    br_server_t *s;
    struct MHD_Connection *c;
    br_req_t *r;
    gen_t g;
    br_buf_t pending;           /* bytes produced, not yet handed to MHD */
    size_t off;                  /* of pending already handed out */
    size_t sent_text;            /* bytes of r->text already in events */
    bool first, finished;
} stream_t;

static void add_event(stream_t *st, char *ev)
{
    if (ev) (void)br_buf_append(&st->pending, ev, strlen(ev));
    free(ev);
}

/* Turns what the scheduler has made since the last call into events. */
static void stream_produce(stream_t *st)
{
    br_req_t *r = st->r;
    pthread_mutex_lock(&r->mu);
    bool done = r->done;
    size_t ready = r->text_ready;
    char *piece = NULL;
    size_t n = 0;
    if (ready > st->sent_text) {
        n = ready - st->sent_text;
        piece = malloc(n);
        if (piece) memcpy(piece, r->text + st->sent_text, n);
    }
    br_openai_meta_t m = meta_of(&st->g, r);
    pthread_mutex_unlock(&r->mu);
    if (st->first && st->g.q.chat) add_event(st, br_openai_sse_role(&m));
    st->first = false;
    if (piece) {
        /* guarded text arrives at once: cut it into chunks of ~64 bytes at UTF-8 boundaries */
        size_t at = 0;
        while (at < n) {
            size_t take = n - at > 64 ? 64 : n - at;
            while (at + take < n && take > 1 && ((unsigned char)piece[at + take] & 0xC0) == 0x80) take--;
            add_event(st, br_openai_sse_text(&m, piece + at, take));
            at += take;
        }
        st->sent_text += n;
        free(piece);
    }
    if (done && !st->finished) {
        st->finished = true;
        if (r->finish == BR_FINISH_ERROR) {
            add_event(st, br_openai_sse_error(r->errmsg));
        } else {
            add_event(st, br_openai_sse_finish(&m, br_openai_finish_name(r->finish)));
            if (st->g.q.include_usage) add_event(st, br_openai_sse_usage(&m));
        }
        (void)br_buf_append(&st->pending, BR_OPENAI_SSE_DONE, strlen(BR_OPENAI_SSE_DONE));
    }
}

static ssize_t stream_read(void *cls, uint64_t pos, char *out, size_t max)
{
    (void)pos;
    stream_t *st = cls;
    for (;;) {
        if (st->off < st->pending.len) {
            size_t n = st->pending.len - st->off;
            if (n > max) n = max;
            memcpy(out, st->pending.data + st->off, n);
            st->off += n;
            if (st->off == st->pending.len) {
                st->off = 0;
                br_buf_clear(&st->pending);
            }
            return (ssize_t)n;
        }
        if (st->finished) return MHD_CONTENT_READER_END_OF_STREAM;
        br_req_wait(st->r, st->sent_text, 0.25);
        if (peer_closed(st->c)) {
            br_req_cancel(st->r);
            return MHD_CONTENT_READER_END_WITH_ERROR;
        }
        stream_produce(st);
    }
}

static void stream_free(void *cls)
{
    stream_t *st = cls;
    pthread_mutex_lock(&st->r->mu);
    bool done = st->r->done;
    pthread_mutex_unlock(&st->r->mu);
    if (!done) br_req_cancel(st->r);
    br_req_unref(st->r);
    gen_clear(&st->g);
    br_buf_free(&st->pending);
    free(st);
}

/* The reply to a started request: its error, the whole response, or a stream (which takes g). */
static enum MHD_Result reply(br_server_t *s, struct MHD_Connection *c, gen_t *g, br_req_t *r)
{
    pthread_mutex_lock(&r->mu);
    bool done = r->done;
    br_finish fin = r->finish;
    pthread_mutex_unlock(&r->mu);
    if (done && fin == BR_FINISH_ERROR) {
        unsigned code = br_openai_http_status(r->status, r->server_fault);
        count_request(s, g, code);
        bool missing = code == 404;
        enum MHD_Result res = send_error(c, code, missing ? "model_not_found" : NULL, missing ? "model" : NULL, "%s",
                                         r->errmsg);
        br_req_unref(r);
        return res;
    }
    count_request(s, g, 200);
    if (!g->q.stream) {
        br_openai_meta_t m = meta_of(g, r);
        enum MHD_Result res = send_text(c, 200, "application/json",
                                        br_openai_completion(&m, r->text, r->text_len, br_openai_finish_name(r->finish)));
        br_req_unref(r);
        return res;
    }
    stream_t *st = calloc(1, sizeof *st);
    struct MHD_Response *resp = st ? MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, stream_read, st, stream_free)
                                   : NULL;
    if (!resp) {
        free(st);
        br_req_cancel(r);
        br_req_unref(r);
        return send_error(c, 503, NULL, NULL, "out of memory");
    }
    *st = (stream_t){.s = s, .c = c, .r = r, .g = *g, .first = true};
    memset(g, 0, sizeof *g); /* the stream owns the request's strings now */
    MHD_add_response_header(resp, "Content-Type", "text/event-stream");
    MHD_add_response_header(resp, "Cache-Control", "no-cache");
    enum MHD_Result res = MHD_queue_response(c, 200, resp);
    MHD_destroy_response(resp);
    return res;
}

static enum MHD_Result handle_generate(br_server_t *s, struct MHD_Connection *c, conn_t *cs, br_tenant_t *tenant,
                                       bool chat)
{
    gen_t g = {.tenant = tenant};
    br_openai_error_t err;
    br_req_t *r = NULL;
    br_status st = br_openai_parse_request(&g.q, &err, br_buf_str(&cs->body), cs->body.len, chat,
                                           (size_t)s->model->cfg.vocab_size);
    if (st == BR_OK) st = resolve_model(s, &g, &err);
    if (st == BR_OK) st = tokenize_prompt(s, &g, &err);
    if (st == BR_OK) st = check_limits(s, &g, &err);
    if (st == BR_EBUSY) count_request(s, &g, err.http); /* rate limited */
    if (st == BR_OK) st = submit(s, &g, &r, &err);
    if (st != BR_OK) {
        gen_clear(&g);
        return send_api_error(c, &err);
    }
    if (!wait_for_start(c, r, g.q.stream)) {
        br_req_unref(r);
        count_request(s, &g, 499);
        gen_clear(&g);
        return MHD_NO;
    }
    enum MHD_Result res = reply(s, c, &g, r);
    gen_clear(&g);
    return res;
}

/* ---- other endpoints ---- */

static enum MHD_Result handle_models(br_server_t *s, struct MHD_Connection *c, br_tenant_t *tenant)
{
    char **names = NULL;
    size_t n = 0, k = 0;
    if (br_adapters_list(s->adapters, &names, &n) != BR_OK) n = 0;
    br_openai_model_entry_t *ents = calloc(n ? n : 1, sizeof *ents);
    char (*owners)[64] = calloc(n ? n : 1, sizeof *owners);
    for (size_t i = 0; ents && owners && i < n; i++) {
        br_adapters_owner(s->adapters, names[i], owners[k], sizeof owners[k]);
        if (!owners[k][0]) {
            const br_tenant_t *t = br_tenants_owner(s->tenants, names[i]);
            if (t) snprintf(owners[k], sizeof owners[k], "%s", t->name);
        }
        if (owners[k][0] && strcmp(owners[k], tenant->name)) continue; /* another tenant's: not listed */
        ents[k] = (br_openai_model_entry_t){.id = names[i], .owner = owners[k]};
        k++;
    }
    char *body = ents && owners ? br_openai_models(s->model_name, (long long)s->created, ents, k) : NULL;
    free(ents);
    free(owners);
    br_adapters_free_names(names, n);
    if (!body) return send_error(c, 503, NULL, NULL, "out of memory");
    return send_text(c, 200, "application/json", body);
}

static enum MHD_Result handle_adapter_post(br_server_t *s, struct MHD_Connection *c, conn_t *cs, br_tenant_t *tenant)
{
    if (!tenant->admin) return send_error(c, 403, NULL, NULL, "tenant '%s' may not load adapters", tenant->name);
    char *name = NULL, *path = NULL;
    bool shared = false;
    br_openai_error_t err;
    if (br_openai_parse_adapter_post(br_buf_str(&cs->body), cs->body.len, &name, &path, &shared, &err) != BR_OK)
        return send_api_error(c, &err);
    enum MHD_Result res;
    if (!strcmp(name, s->model_name)) {
        res = send_error(c, 400, "invalid_value", "name", "'%s' is the base model's name", s->model_name);
    } else {
        const char *owner = shared || br_tenants_is_open(s->tenants) ? "" : tenant->name;
        br_status st = br_adapters_register(s->adapters, name, path, owner);
        res = st != BR_OK ? send_status(c, st, NULL, "path")
                          : send_text(c, 200, "application/json", br_openai_adapter_registered(name, owner, s->model_name));
    }
    free(name);
    free(path);
    return res;
}

static enum MHD_Result handle_adapter_delete(br_server_t *s, struct MHD_Connection *c, const char *name,
                                             br_tenant_t *tenant)
{
    if (!br_serve_name_ok(name, 100))
        return send_error(c, 400, "invalid_value", "name",
                          "an adapter name must be [A-Za-z0-9_.-]{1,100} (after URL decoding; %%00 is never part of one)");
    char owner[64];
    br_adapters_owner(s->adapters, name, owner, sizeof owner);
    if (!tenant->admin && strcmp(owner, tenant->name))
        return send_error(c, 403, NULL, NULL, "tenant '%s' may not unload adapter '%s'", tenant->name, name);
    br_status st = br_adapters_unload(s->adapters, name);
    if (st != BR_OK) return send_status(c, st, st == BR_ENOTFOUND ? "model_not_found" : NULL, NULL);
    return send_text(c, 200, "application/json", br_openai_adapter_deleted(name));
}

static enum MHD_Result handle_health(br_server_t *s, struct MHD_Connection *c)
{
    size_t waiting = 0, running = 0, loaded = 0, bytes = 0;
    br_sched_load(s->sched, &waiting, &running);
    br_adapters_stats(s->adapters, &loaded, &bytes);
    bool drain = atomic_load(&s->draining) || atomic_load(&s->leaving);
    return send_text(c, drain ? 503 : 200, "application/json",
                     br_openai_health(drain, s->model_name, waiting, running, loaded));
}

/* The endpoint label of a URL: one of a fixed set, so that no request can add a series. */
static const char *route_label(const char *url)
{
    static const char *known[] = {"/health", "/metrics", "/v1/completions", "/v1/chat/completions", "/v1/models",
                                  "/v1/adapters", "/v1/status"};
    for (size_t i = 0; i < sizeof known / sizeof *known; i++)
        if (!strcmp(url, known[i])) return known[i];
    if (!strncmp(url, "/v1/adapters/", 13)) return "/v1/adapters";
    if (br_console_file(url)) return "console";
    return "other";
}

static void count_http(br_server_t *s, const char *url, unsigned code)
{
    char cs[16];
    snprintf(cs, sizeof cs, "%u", code);
    br_metric_add(s->m_http, 1, route_label(url), cs);
}

static enum MHD_Result handle_metrics(br_server_t *s, struct MHD_Connection *c)
{
    char *text = br_metrics_render(s->metrics);
    if (!text) return send_error(c, 503, NULL, NULL, "out of memory");
    return send_text(c, 200, "text/plain; version=0.0.4; charset=utf-8", text);
}

/* /metrics and /v1/status name tenants and adapters: with a tenants file only admin keys may
 * read them on the public listener (operators can also scrape --metrics-addr, which needs no
 * key).  Sends the 401/403 and returns false when the caller may not. */
static bool operator_allowed(br_server_t *s, struct MHD_Connection *c, const char *url, enum MHD_Result *res)
{
    if (!br_tenants_is_open(s->tenants)) {
        br_tenant_t *t = br_tenants_auth(s->tenants, MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization"));
        if (!t) {
            count_http(s, url, 401);
            *res = send_error(c, 401, "invalid_api_key", NULL, "%s needs an admin tenant's key%s", url,
                              strcmp(url, "/metrics") ? "" : " (or scrape the --metrics-addr listener)");
            return false;
        }
        if (!t->admin) {
            count_http(s, url, 403);
            *res = send_error(c, 403, NULL, NULL, "tenant '%s' may not read %s (admin tenants only)", t->name, url);
            return false;
        }
    }
    count_http(s, url, 200);
    return true;
}

static enum MHD_Result guarded_metrics(br_server_t *s, struct MHD_Connection *c)
{
    enum MHD_Result res = MHD_NO;
    return operator_allowed(s, c, "/metrics", &res) ? handle_metrics(s, c) : res;
}

/* GET /v1/status: the console's operator view (serve/console.h). */
static enum MHD_Result guarded_status(br_server_t *s, struct MHD_Connection *c)
{
    enum MHD_Result res = MHD_NO;
    if (!operator_allowed(s, c, "/v1/status", &res)) return res;
    char *text = br_console_status(s->console);
    if (!text) return send_error(c, 503, NULL, NULL, "out of memory");
    return send_text(c, 200, "application/json", text);
}

/* The console's static files: no key (they hold no data; the page asks for a key and sends it
 * to the API), a strict Content-Security-Policy, never cached stale across upgrades. */
static enum MHD_Result handle_console_file(br_server_t *s, struct MHD_Connection *c, const br_console_file_t *f)
{
    count_http(s, f->path, 200);
    struct MHD_Response *r = MHD_create_response_from_buffer(f->len, (void *)f->data, MHD_RESPMEM_PERSISTENT);
    if (!r) return MHD_NO;
    MHD_add_response_header(r, "Content-Type", br_console_content_type(f->path));
    MHD_add_response_header(r, "Content-Security-Policy", BR_CONSOLE_CSP);
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
    MHD_add_response_header(r, "Cache-Control", "no-cache");
    enum MHD_Result ok = MHD_queue_response(c, 200, r);
    MHD_destroy_response(r);
    return ok;
}

static enum MHD_Result route(br_server_t *s, struct MHD_Connection *c, const char *url, const char *method, conn_t *cs)
{
    bool get = !strcmp(method, "GET"), post = !strcmp(method, "POST"), del = !strcmp(method, "DELETE");
    if (!strcmp(url, "/health")) {
        count_http(s, url, 200);
        return get ? handle_health(s, c) : send_error(c, 405, NULL, NULL, "use GET /health");
    }
    if (!strcmp(url, "/metrics"))
        return get ? guarded_metrics(s, c) : send_error(c, 405, NULL, NULL, "use GET /metrics");
    if (!strcmp(url, "/v1/status"))
        return get ? guarded_status(s, c) : send_error(c, 405, NULL, NULL, "use GET /v1/status");
    const br_console_file_t *page = br_console_file(url);
    if (page) return get ? handle_console_file(s, c, page) : send_error(c, 405, NULL, NULL, "use GET %s", url);
    bool gen = !strcmp(url, "/v1/completions") || !strcmp(url, "/v1/chat/completions");
    bool models = !strcmp(url, "/v1/models");
    bool ad = !strcmp(url, "/v1/adapters") || !strncmp(url, "/v1/adapters/", 13);
    if (!gen && !models && !ad) {
        count_http(s, url, 404);
        char shown[3 * 200 + 1], m[3 * 16 + 1];
        br_utf8_repair(shown, url, strnlen(url, 200));
        br_utf8_repair(m, method, strnlen(method, 16));
        return send_error(c, 404, "unknown_url", NULL, "Unknown request URL: %s %s", m, shown);
    }
    br_tenant_t *tenant = br_tenants_auth(s->tenants, MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization"));
    if (!tenant) {
        count_http(s, url, 401);
        return send_error(c, 401, "invalid_api_key", NULL,
                          "Incorrect or missing API key: send 'Authorization: Bearer KEY' with a key from the tenants file");
    }
    count_http(s, url, 200);
    if (gen)
        return post ? handle_generate(s, c, cs, tenant, url[4] == 'c' && url[5] == 'h')
                    : send_error(c, 405, NULL, NULL, "use POST %s", url);
    if (models) return get ? handle_models(s, c, tenant) : send_error(c, 405, NULL, NULL, "use GET /v1/models");
    if (!strcmp(url, "/v1/adapters"))
        return post ? handle_adapter_post(s, c, cs, tenant) : send_error(c, 405, NULL, NULL, "use POST /v1/adapters");
    return del ? handle_adapter_delete(s, c, url + 13, tenant)
               : send_error(c, 405, NULL, NULL, "use DELETE /v1/adapters/NAME");
}

/* Reads the body into cs (at most --max-body-kb).  Past the limit the rest is read and
 * discarded (within the body deadline), so that a chunked body, whose size is known only at
 * its end, is answered 413 like a Content-Length one. */
static void take_upload(br_server_t *s, conn_t *cs, const char *upload, size_t n)
{
    if (!cs->too_big && cs->body.len + n > s->o.max_body) {
        cs->too_big = true;
        br_buf_free(&cs->body);
    }
    if (!cs->too_big && br_buf_append(&cs->body, upload, n)) {
        cs->too_big = true; /* out of memory for it: as good as too big */
        br_buf_free(&cs->body);
    }
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload, size_t *upload_size, void **con_cls)
{
    (void)version;
    br_server_t *s = cls;
    conn_t *cs = *con_cls;
    if (!cs) { /* the head is complete: the body's deadline starts */
        cs = calloc(1, sizeof *cs);
        if (!cs) return MHD_NO;
        *con_cls = cs;
        track_set(s, c, PH_BODY, s->o.body_timeout_s);
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
        if (cl && strtoull(cl, NULL, 10) > s->o.max_body) {
            cs->too_big = true;
            count_http(s, url, 413);
            return send_error(c, 413, "request_too_large", NULL, "the request body is larger than %zu bytes",
                              s->o.max_body);
        }
        return MHD_YES;
    }
    if (*upload_size) {
        take_upload(s, cs, upload, *upload_size);
        *upload_size = 0;
        return MHD_YES;
    }
    track_set(s, c, PH_RESPOND, 0);
    if (cs->too_big) {
        count_http(s, url, 413);
        return send_error(c, 413, "request_too_large", NULL, "the request body is larger than %zu bytes", s->o.max_body);
    }
    bool gen = !strncmp(url, "/v1/", 4);
    if (gen && !cs->counted) {
        cs->counted = true;
        atomic_fetch_add(&s->inflight, 1);
    }
    if (gen && atomic_load(&s->draining)) return send_error(c, 503, NULL, NULL, "the server is shutting down");
    return route(s, c, url, method, cs);
}

/* The operator listener (--metrics-addr): GET /metrics and /health only, no key. */
static enum MHD_Result on_operator_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                           const char *version, const char *upload, size_t *upload_size,
                                           void **con_cls)
{
    (void)version;
    (void)upload;
    br_server_t *s = cls;
    if (!*con_cls) {
        *con_cls = c; /* any non-NULL marker: the head has been seen */
        return MHD_YES;
    }
    if (*upload_size) {
        *upload_size = 0; /* bodies are ignored here */
        return MHD_YES;
    }
    bool get = !strcmp(method, "GET");
    if (get && !strcmp(url, "/metrics")) return handle_metrics(s, c);
    if (get && !strcmp(url, "/health")) return handle_health(s, c);
    return send_error(c, 404, "unknown_url", NULL, "the operator listener serves GET /metrics and GET /health only");
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe)
{
    (void)toe;
    br_server_t *s = cls;
    conn_t *cs = *con_cls;
    if (!cs) return;
    if (cs->counted) atomic_fetch_sub(&s->inflight, 1);
    br_buf_free(&cs->body);
    free(cs);
    *con_cls = NULL;
    track_set(s, c, PH_HEAD, s->o.head_timeout_s); /* keep-alive: the next request's head */
}

/* ---- start / stop ---- */

static br_status parse_guard(br_server_t *s, br_sched_opts_t *so, const char *spec)
{
    so->guard_threshold = BR_PARDEN_DEFAULT_THRESHOLD;
    so->guard_template = BR_PARDEN_PLAIN;
    if (!spec) return BR_OK;
    if (strncmp(spec, "parden", 6) || (spec[6] && spec[6] != ':'))
        return br_error(BR_EINVAL, "--guard '%s': want parden[:threshold[:template]]", spec);
    s->guard = so->guard = true;
    if (!spec[6]) return BR_OK;
    char *end;
    double th = strtod(spec + 7, &end);
    if (end == spec + 7 || !(th >= 0 && th <= 1) || (*end && *end != ':'))
        return br_error(BR_EINVAL, "--guard '%s': the threshold must be a number in [0, 1]", spec);
    so->guard_threshold = th;
    if (*end == ':') {
        br_parden_template t;
        BR_TRY(br_parden_template_parse(end + 1, &t));
        so->guard_template = (int)t;
    }
    return BR_OK;
}

static bool loopback(const char *host)
{
    return !strcmp(host, "127.0.0.1") || !strcmp(host, "localhost") || !strncmp(host, "127.", 4);
}

/* IPv4 HOST and PORT into addr ("localhost" is 127.0.0.1). */
static br_status parse_addr(struct sockaddr_in *addr, const char *host, int port, const char *what)
{
    *addr = (struct sockaddr_in){.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (!strcmp(host, "localhost")) host = "127.0.0.1";
    if (inet_pton(AF_INET, host, &addr->sin_addr) != 1)
        return br_error(BR_EINVAL, "%s %s: want an IPv4 address such as 127.0.0.1 or 0.0.0.0", what, host);
    return BR_OK;
}

/* The public listener (per-IP limit, deadlines, NUL-safe URL decoding), its watchdog, and the
 * operator listener when --metrics-addr is given. */
static br_status start_listeners(br_server_t *s)
{
    br_server_opts_t *o = &s->o;
    struct sockaddr_in addr;
    BR_TRY(parse_addr(&addr, o->host, o->port, "--host"));
    if (pthread_create(&s->watchdog, NULL, watchdog_main, s)) return br_error(BR_ENOMEM, "cannot start the watchdog thread");
    s->watchdog_started = true;
    s->d = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ITC | MHD_USE_POLL,
                            (uint16_t)o->port, NULL, NULL, on_request, s, MHD_OPTION_SOCK_ADDR, &addr,
                            MHD_OPTION_CONNECTION_LIMIT, (unsigned)o->max_connections,
                            MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)o->max_connections_per_ip,
                            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)120, MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
                            MHD_OPTION_NOTIFY_CONNECTION, on_connection, s, MHD_OPTION_UNESCAPE_CALLBACK,
                            unescape_keep_nul, s, MHD_OPTION_LISTENING_ADDRESS_REUSE, (unsigned)1, MHD_OPTION_END);
    if (!s->d) return br_error(BR_EIO, "cannot listen on %s:%d (%s)", o->host, o->port, strerror(errno));
    if (!o->metrics_addr) return BR_OK;
    char host[64];
    const char *colon = strrchr(o->metrics_addr, ':');
    char *end = NULL;
    long port = colon ? strtol(colon + 1, &end, 10) : -1;
    if (!colon || colon == o->metrics_addr || (size_t)(colon - o->metrics_addr) >= sizeof host || !end || *end ||
        end == colon + 1 || port < 0 || port > 65535)
        return br_error(BR_EINVAL, "--metrics-addr %s: want HOST:PORT, e.g. 127.0.0.1:9464", o->metrics_addr);
    snprintf(host, sizeof host, "%.*s", (int)(colon - o->metrics_addr), o->metrics_addr);
    BR_TRY(parse_addr(&addr, host, (int)port, "--metrics-addr"));
    s->md = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL, (uint16_t)port, NULL, NULL,
                             on_operator_request, s, MHD_OPTION_SOCK_ADDR, &addr, MHD_OPTION_CONNECTION_LIMIT,
                             (unsigned)16, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)10,
                             MHD_OPTION_LISTENING_ADDRESS_REUSE, (unsigned)1, MHD_OPTION_END);
    if (!s->md) return br_error(BR_EIO, "cannot listen on --metrics-addr %s (%s)", o->metrics_addr, strerror(errno));
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->md, MHD_DAEMON_INFO_BIND_PORT);
    s->metrics_port = di ? di->port : (int)port;
    return BR_OK;
}

br_status br_server_start(br_server_t **out, const br_server_opts_t *o_in)
{
    *out = NULL;
    br_server_t *s = calloc(1, sizeof *s);
    if (!s) return br_error(BR_ENOMEM, "out of memory");
    s->o = *o_in;
    br_server_opts_t *o = &s->o;
    if (!o->host) o->host = "127.0.0.1";
    if (!o->max_batch_tokens) o->max_batch_tokens = 256;
    if (o->kv_mem_mb <= 0) o->kv_mem_mb = 256;
    if (!o->max_body) o->max_body = 1 << 20;
    if (!o->page_tokens) o->page_tokens = 16;
    if (!o->max_running) o->max_running = 64;
    if (o->max_connections <= 0) o->max_connections = 256;
    if (o->max_connections_per_ip < 0) o->max_connections_per_ip = 0;
    else if (o->max_connections_per_ip == 0) o->max_connections_per_ip = 32;
    if (o->head_timeout_s <= 0) o->head_timeout_s = 10;
    if (o->body_timeout_s <= 0) o->body_timeout_s = 60;
    pthread_mutex_init(&s->track_mu, NULL);
    atomic_init(&s->watchdog_stop, false);
    atomic_init(&s->deadline_kills, 0);
    s->created = time(NULL);
    atomic_init(&s->inflight, 0);
    atomic_init(&s->draining, false);
    atomic_init(&s->leaving, false);
    atomic_init(&s->next_id, (unsigned long)time(NULL));
    br_status st = BR_OK;
    br_sched_opts_t so = {0};
    if (!o->tenants_file && !loopback(o->host))
        st = br_error(BR_EINVAL, "without --tenants the server is open to anyone: it listens on loopback only "
                                 "(--host %s refused)", o->host);
    if (st == BR_OK) st = parse_guard(s, &so, o->guard);
    if (st == BR_OK) st = br_metrics_create(&s->metrics);
    if (st == BR_OK) st = o->tenants_file ? br_tenants_load(&s->tenants, o->tenants_file) : br_tenants_open(&s->tenants);
    /* 16-bit folders and GGUF files stay in their type (adapters run in F32 on top) */
    if (st == BR_OK) st = br_model_open(&s->model, o->model_dir);
    if (st == BR_OK) s->model->kv_type = o->kv_type;
    br_prompt_opts_t po = {.model_dir = o->model_dir, .tokenizer = o->tokenizer, .chat_template = o->chat_template,
                           .cfg = s->model ? &s->model->cfg : NULL};
    if (st == BR_OK) st = br_prompt_open(&s->prompt, &po);
    if (st == BR_OK) {
        if (o->model_name) snprintf(s->model_name, sizeof s->model_name, "%s", o->model_name);
        else {
            const char *b = o->model_dir + strlen(o->model_dir);
            while (b > o->model_dir && b[-1] == '/') b--;
            const char *e = b;
            while (b > o->model_dir && b[-1] != '/') b--;
            snprintf(s->model_name, sizeof s->model_name, "%.*s", (int)(e - b), b);
        }
        br_adapters_opts_t ao = {.dir = o->adapters_dir,
                                 .shapes = br_lora_shapes_from_config(&s->model->cfg),
                                 .mem_budget = (size_t)(o->adapter_mem_mb * 1e6),
                                 .idle_s = o->adapter_idle_s,
                                 .metrics = s->metrics,
                                 .root = o->adapter_root ? o->adapter_root : o->adapters_dir};
        st = br_adapters_create(&s->adapters, &ao);
    }
    if (st == BR_OK) {
        so.model = s->model;
        so.tok = br_prompt_tokenizer(s->prompt);
        so.prompt = s->prompt;
        so.adapters = s->adapters;
        so.tenants = s->tenants;
        so.metrics = s->metrics;
        so.max_batch_tokens = o->max_batch_tokens;
        so.kv_budget_bytes = (size_t)(o->kv_mem_mb * 1e6);
        so.page_tokens = o->page_tokens;
        so.max_running = o->max_running;
        so.seed = o->seed ? o->seed : (uint64_t)(br_wall_time() * 1e6);
        st = br_sched_create(&s->sched, &so);
    }
    if (st == BR_OK) {
        s->m_requests = br_metrics_counter(s->metrics, "braid_requests_total",
                                           "Completion requests by tenant, adapter and HTTP status", "tenant,adapter,code");
        s->m_http = br_metrics_counter(s->metrics, "braid_http_requests_total", "HTTP requests by endpoint",
                                       "endpoint,code");
        br_console_opts_t co = {.model = s->model_name, .metrics = s->metrics, .sched = s->sched,
                                .adapters = s->adapters, .tenants = s->tenants,
                                .adapter_budget = o->adapter_mem_mb * 1e6, .guard = s->guard};
        st = br_console_create(&s->console, &co);
    }
    if (st == BR_OK) st = start_listeners(s);
    if (st != BR_OK) {
        br_server_free(s);
        return st;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
    s->port = di ? di->port : o->port;
    BR_INFO("serving %s on http://%s:%d (%s tenants, guard %s)", s->model_name, o->host, s->port,
            br_tenants_is_open(s->tenants) ? "open" : "keyed", s->guard ? "parden" : "off");
    *out = s;
    return BR_OK;
}

int br_server_port(const br_server_t *s) { return s->port; }
int br_server_metrics_port(const br_server_t *s) { return s->md ? s->metrics_port : 0; }

void br_server_announce_stop(br_server_t *s)
{
    if (s) atomic_store(&s->leaving, true);
}

void br_server_shutdown(br_server_t *s, double timeout_s)
{
    if (!s || s->shut) return;
    s->shut = true;
    atomic_store(&s->draining, true);
    if (s->d) {
        MHD_socket fd = MHD_quiesce_daemon(s->d);
        if (fd != MHD_INVALID_SOCKET) close(fd);
    }
    if (s->sched) br_sched_drain(s->sched);
    double t0 = br_now();
    while (atomic_load(&s->inflight) > 0 && br_now() - t0 < timeout_s) usleep(20000);
    if (atomic_load(&s->inflight) > 0) BR_WARN("shutdown: %d requests still running after %.0f s", atomic_load(&s->inflight), timeout_s);
    if (s->d) MHD_stop_daemon(s->d);
    s->d = NULL;
    if (s->md) MHD_stop_daemon(s->md);
    s->md = NULL;
    if (s->watchdog_started) {
        atomic_store(&s->watchdog_stop, true);
        pthread_join(s->watchdog, NULL);
        s->watchdog_started = false;
    }
}

void br_server_free(br_server_t *s)
{
    if (!s) return;
    br_server_shutdown(s, 30);
    br_console_free(s->console);
    br_sched_free(s->sched);
    br_adapters_free(s->adapters);
    br_prompt_free(s->prompt);
    br_model_free(s->model);
    br_tenants_free(s->tenants);
    br_metrics_free(s->metrics);
    pthread_mutex_destroy(&s->track_mu);
    free(s);
}
