/* A client for any OpenAI-compatible text-completions endpoint (POST BASE/completions: vLLM,
 * llama.cpp's server, braid serve, ...), used to get PARDEN repeats from a model braid does
 * not run itself.  Greedy decoding (temperature 0).  libcurl; thread-safe (one easy handle per
 * call, no signals).
 *
 * Failures are statuses with a message naming the URL: BR_ENET when the server cannot be
 * reached, answers 5xx/429 after every retry, or answers with malformed JSON (not retried);
 * BR_ETIMEOUT when a request outlives timeout_s; BR_EINVAL for other 4xx answers (a bad model
 * name, key, ...: not retried).  Retries wait backoff_s, 2*backoff_s, 4*backoff_s, ... */
#ifndef BR_GUARD_UPSTREAM_H
#define BR_GUARD_UPSTREAM_H
#include "base/status.h"

typedef struct {
    const char *base_url;     /* "http://127.0.0.1:8080/v1" (".../completions" is appended) */
    const char *api_key;      /* sent as "Authorization: Bearer KEY"; NULL or "" for none */
    const char *model;        /* the request's "model"; NULL or "" to omit it (llama.cpp) */
    double timeout_s;         /* whole request; default 120 */
    double connect_timeout_s; /* default 10 */
    int retries;              /* extra tries after the first; default 3 */
    double backoff_s;         /* first wait; default 1 */
} br_upstream_opts_t;

void br_upstream_opts_default(br_upstream_opts_t *o);

/* Greedy completion of `prompt` with at most max_tokens new tokens; *text (malloc'd) is
 * choices[0].text. */
br_status br_upstream_complete(const br_upstream_opts_t *o, const char *prompt, int max_tokens, char **text);

/* Adapter for br_parden_guard(): user = const br_upstream_opts_t *. */
br_status br_upstream_generate(void *user, const char *prompt, int max_new_tokens, char **text);
#endif
