/* braid serve: the OpenAI-compatible HTTP server (libmicrohttpd, one thread per connection).
 *
 *   POST /v1/completions, /v1/chat/completions   (stream: server-sent events)
 *   GET  /v1/models                              base model + adapters this tenant may use
 *   POST /v1/adapters {"name", "path"[, "shared"]}   DELETE /v1/adapters/NAME   (admin)
 *   GET  /health                                 (no key needed)
 *   GET  /metrics                                (admin key with a tenants file; or --metrics-addr)
 *   GET  /v1/status                              the console's operator JSON (admin, as /metrics)
 *   GET  /, /console/NAME                        the web console (no key; serve/console.h)
 *
 * `model` in a request names an adapter (as vLLM and LoRAX do) or the base model.  Errors are
 * OpenAI error objects {"error": {"message", "type", "param", "code"}} with a 4xx/5xx status;
 * the server keeps serving.  A connection thread blocked on a slow client blocks nobody else;
 * a client that goes away has its request cancelled and its KV pages freed.  One address may
 * hold at most max_connections_per_ip connections, and a request's head and body must each
 * arrive within a fixed time (not an idle timeout), so a keyless client dripping bytes cannot
 * hold the server.  The protocol itself (parsing, validation, response shapes) is serve/openai.h.
 *
 * Streaming with --guard: PARDEN needs the whole response, so a guarded stream sends nothing
 * until the verdict is in; then the (possibly replaced) text follows in chunks and the last
 * chunk carries "braid_guard". */
#ifndef BR_SERVE_SERVER_H
#define BR_SERVE_SERVER_H
#include <stddef.h>
#include <stdint.h>

#include "base/status.h"
#include "kernels/kernels.h"

typedef struct {
    const char *model_dir;      /* config.json + model.safetensors */
    const char *tokenizer;      /* NULL: MODEL_DIR/tokenizer.json */
    const char *chat_template;  /* a Jinja file overriding the model's chat template, or NULL */
    const char *adapters_dir;   /* NULL: none on disk */
    const char *host;           /* default 127.0.0.1 */
    int port;                   /* 0: any free port (see br_server_port) */
    const char *tenants_file;   /* NULL: one open tenant (host must be loopback) */
    const char *guard;          /* NULL or "parden[:threshold[:template]]" */
    const char *model_name;     /* id of the base model; NULL: the folder's name */
    size_t max_batch_tokens;    /* default 256 */
    double kv_mem_mb;           /* default 256 */
    double adapter_mem_mb;      /* default 1024; 0: unlimited */
    double adapter_idle_s;      /* default 300; 0: never drop */
    size_t max_body;            /* bytes; default 1 MiB */
    size_t page_tokens;         /* default 16 */
    br_kv_type kv_type;         /* KV cache element type (default BR_KV_F32) */
    size_t max_running;         /* default 64 */
    int max_connections;        /* default 256 */
    int max_connections_per_ip; /* simultaneous connections from one address; default 32; < 0: no limit */
    double head_timeout_s;      /* the whole request head must arrive within this (default 10) */
    double body_timeout_s;      /* the whole body must arrive within this after the head (default 60) */
    const char *metrics_addr;   /* "HOST:PORT": operator listener for /metrics and /health (no key); NULL: none */
    const char *adapter_root;   /* POST /v1/adapters loads only folders inside it; NULL: adapters_dir (none: refused) */
    uint64_t seed;              /* for requests without a seed; default from the clock */
} br_server_opts_t;

typedef struct br_server br_server_t;

/* Loads the model, tokenizer, tenants; starts the scheduler, the adapter loader and the HTTP
 * listener. */
br_status br_server_start(br_server_t **out, const br_server_opts_t *o);
int br_server_port(const br_server_t *s);
/* Port of the --metrics-addr listener (0 when there is none). */
int br_server_metrics_port(const br_server_t *s);
/* Announces a coming stop to load balancers: from now on /health answers 503 "draining" while
 * requests are still accepted and served, so a proxy polling /health stops sending new work
 * before br_server_shutdown closes the listener (braid serve --drain-grace-s). */
void br_server_announce_stop(br_server_t *s);
/* Graceful stop: no new connections or requests, in-flight requests finish (at most
 * timeout_s seconds), then everything stops.  Safe to call once. */
void br_server_shutdown(br_server_t *s, double timeout_s);
void br_server_free(br_server_t *s); /* shuts down first if needed; NULL is a no-op */
#endif
