/* braid serve: OpenAI-compatible server with batched multi-tenant LoRA (docs/serve.md). */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "args.h"
#include "base/fileio.h"
#include "base/log.h"
#include "commands.h"
#include "lm/model.h"
#include "serve/server.h"

int cmd_serve(int argc, char **argv)
{
    br_server_opts_t o = {0};
    const char *model = NULL;
    int max_batch = 256, max_running = 64, page_tokens = 16, max_conn = 256, port = 8080, per_ip = 32;
    double kv_mb = 256, ad_mb = 1024, idle = 300, body_kb = 1024, head_s = 10, body_s = 60, grace_s = 0;
    long seed = 0;
    const char *port_file = NULL, *kv_type = "f32";
    const opt_t opts[] = {
        {"model", OPT_STR, &model, "DIR", "model folder (config.json + model.safetensors)", true},
        {"tokenizer", OPT_STR, &o.tokenizer, "PATH", "tokenizer.json or folder (default DIR/tokenizer.json)", false},
        {"chat-template", OPT_STR, &o.chat_template, "FILE", "Jinja chat template overriding the model's (default: its tokenizer_config.json's, else braid's plain one)", false},
        {"adapters", OPT_STR, &o.adapters_dir, "DIR", "folder of PEFT LoRA adapters, one subfolder each, loaded on demand", false},
        {"host", OPT_STR, &o.host, "ADDR", "IPv4 address to listen on (default 127.0.0.1)", false},
        {"port", OPT_INT, &port, "N", "TCP port (default 8080; 0: any free port)", false},
        {"port-file", OPT_STR, &port_file, "PATH", "write the port actually bound to this file once listening", false},
        {"tenants", OPT_STR, &o.tenants_file, "PATH", "tenants.json: keys, adapters, limits (default: one open tenant, loopback only)", false},
        {"guard", OPT_STR, &o.guard, "SPEC", "parden[:threshold[:template]]: PARDEN check of every response (template plain|chatml|llama2|mistral)", false},
        {"name", OPT_STR, &o.model_name, "ID", "model id of the base model in the API (default: folder name)", false},
        {"max-batch-tokens", OPT_INT, &max_batch, "N", "token rows per scheduler step (default 256)", false},
        {"max-running", OPT_INT, &max_running, "N", "requests batched at once (default 64)", false},
        {"kv-mem", OPT_DOUBLE, &kv_mb, "MB", "KV cache pool (default 256); requests wait when it is full", false},
        {"page-tokens", OPT_INT, &page_tokens, "N", "positions per KV page (default 16)", false},
        {"kv-type", OPT_STR, &kv_type, "f32|f16", "KV cache element type (default f32; f16 holds twice the positions in --kv-mem)", false},
        {"adapter-mem", OPT_DOUBLE, &ad_mb, "MB", "memory for loaded adapters, LRU beyond (default 1024; 0: unlimited)", false},
        {"adapter-idle-s", OPT_DOUBLE, &idle, "S", "unload an adapter unused this long (default 300; 0: never)", false},
        {"max-body-kb", OPT_DOUBLE, &body_kb, "KB", "largest request body (default 1024)", false},
        {"max-connections", OPT_INT, &max_conn, "N", "simultaneous connections (default 256)", false},
        {"max-connections-per-ip", OPT_INT, &per_ip, "N", "simultaneous connections from one address (default 32; 0: no limit, e.g. behind a proxy)", false},
        {"head-timeout-s", OPT_DOUBLE, &head_s, "S", "a request's whole head must arrive within S seconds (default 10)", false},
        {"body-timeout-s", OPT_DOUBLE, &body_s, "S", "a request's whole body must arrive within S seconds (default 60)", false},
        {"metrics-addr", OPT_STR, &o.metrics_addr, "HOST:PORT", "operator listener for GET /metrics and /health without a key (default: none; /metrics on the main port needs an admin key with --tenants)", false},
        {"adapter-root", OPT_STR, &o.adapter_root, "DIR", "POST /v1/adapters loads only folders inside DIR (default: the --adapters folder; neither: refused)", false},
        {"drain-grace-s", OPT_DOUBLE, &grace_s, "S", "on SIGTERM, answer /health 503 but keep serving for S seconds so a load balancer stops routing here, then stop (default 0; a second signal skips the rest)", false},
        {"seed", OPT_LONG, &seed, "N", "sampling seed for requests without one (default: from the clock)", false},
    };
    cmd_spec_t spec = {"braid serve --model DIR [options]",
                       "Serves the model over an OpenAI-compatible HTTP API (/v1/completions, /v1/chat/completions "
                       "with streaming, /v1/models, /v1/adapters, /health, /metrics). Requests for different LoRA "
                       "adapters (`model` = adapter name) run in the same batch. SIGTERM or Ctrl-C stops accepting, "
                       "finishes the requests in flight and exits 0.",
                       opts, sizeof opts / sizeof *opts, 0, 0};
    char **pos;
    int npos, rc = args_parse(&spec, argc, argv, &pos, &npos);
    if (rc) return rc == 1 ? 0 : 2;
    if (port < 0 || port > 65535 || max_batch < 1 || max_running < 1 || page_tokens < 1 || max_conn < 1 || kv_mb <= 0 ||
        ad_mb < 0 || idle < 0 || body_kb <= 0 || per_ip < 0 || !(head_s > 0) || !(body_s > 0) || !(grace_s >= 0 && grace_s <= 3600)) {
        fprintf(stderr, "braid: error: --port must be 0..65535; sizes and counts must be positive; --drain-grace-s 0..3600\n");
        return 2;
    }
    if (br_kv_type_parse(kv_type, &o.kv_type)) {
        fprintf(stderr, "braid: error: --kv-type: %s\n", br_errmsg());
        return 2;
    }
    o.model_dir = model;
    o.port = port;
    o.max_batch_tokens = (size_t)max_batch;
    o.max_running = (size_t)max_running;
    o.page_tokens = (size_t)page_tokens;
    o.max_connections = max_conn;
    o.max_connections_per_ip = per_ip ? per_ip : -1;
    o.head_timeout_s = head_s;
    o.body_timeout_s = body_s;
    o.kv_mem_mb = kv_mb;
    o.adapter_mem_mb = ad_mb;
    o.adapter_idle_s = idle;
    o.max_body = (size_t)(body_kb * 1024);
    o.seed = (uint64_t)seed;
    if (br_log_get_level() > BR_LOG_INFO && !getenv("BRAID_LOG")) br_log_set_level(BR_LOG_INFO);

    /* block the stop signals in every thread; this one waits for them */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    br_server_t *s = NULL;
    br_status st = br_server_start(&s, &o);
    if (st != BR_OK) return fail_status(st, "serve");
    fprintf(stderr, "braid serve: listening on http://%s:%d (Ctrl-C or SIGTERM to stop)\n", o.host ? o.host : "127.0.0.1",
            br_server_port(s));
    if (port_file) {
        char buf[32];
        int n = snprintf(buf, sizeof buf, "%d\n", br_server_port(s));
        /* a script waits for this file: failing to write it is fatal, not a warning */
        if ((st = br_write_file_atomic(port_file, buf, (size_t)n)) != BR_OK) {
            fail_status(st, "--port-file");
            br_server_shutdown(s, 0);
            br_server_free(s);
            return 1;
        }
    }
    int sig = 0;
    sigwait(&set, &sig);
    if (grace_s > 0) {
        /* a load balancer polling /health sees 503 and stops routing here; a second signal ends the wait */
        br_server_announce_stop(s);
        fprintf(stderr, "braid serve: %s received, /health answers 503; serving %.1f s more before stopping\n",
                sig == SIGTERM ? "SIGTERM" : "SIGINT", grace_s);
        struct timespec ts = {(time_t)grace_s, (long)((grace_s - (double)(time_t)grace_s) * 1e9)};
        if (sigtimedwait(&set, NULL, &ts) > 0) fprintf(stderr, "braid serve: second signal, stopping now\n");
        fprintf(stderr, "braid serve: closing the listener, finishing requests in flight\n");
    } else {
        fprintf(stderr, "braid serve: %s received, finishing requests in flight\n", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    }
    br_server_shutdown(s, 60);
    br_server_free(s);
    fprintf(stderr, "braid serve: stopped\n");
    return 0;
}
