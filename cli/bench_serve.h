/* Helpers shared by `braid bench serve` (bench_serve.c) and its reviewer suite
 * (bench_serve_suite.c, `braid bench serve --suite`). */
#ifndef BR_CLI_BENCH_SERVE_H
#define BR_CLI_BENCH_SERVE_H
#include <jansson.h>
#include <stddef.h>

#include "base/status.h"
#include "lm/model.h"
#include "nn/lora.h"
#include "text/tokenizer.h"

/* Comma-separated positive integers into v (at most cap); their count, -1 when malformed. */
int bench_serve_parse_list(const char *s, int *v, int cap);
/* The p-quantile (nearest rank) of sorted v[0..n); 0 when n is 0. */
double bench_serve_pct(const double *v, size_t n, double p);
/* The benchmark's Llama-style model: width C (4 heads), L layers, vocabulary max(V, tokenizer's). */
br_status bench_serve_model(br_model_t **m, const br_tokenizer_t *tok, int hidden, int layers, int vocab);
/* Writes root (freed) as indented JSON, atomically. */
br_status bench_serve_write_json(const char *path, json_t *root);
/* ad0000.. in adir: n PEFT folders, ranks R and 2R alternating, on q_proj and v_proj; adds their
 * bytes to *bytes. */
br_status bench_serve_write_adapters(const char *adir, const br_lora_shapes_t *shapes, int n, int rank, size_t *bytes);

/* The suite: capacity, open-loop load at fractions of it under Zipf popularity, eviction and
 * cold starts, two tenants with and without VTC (bench/serve/run.sh).  Arguments as for
 * `braid bench serve --suite`. */
int bench_serve_suite(int argc, char **argv);
#endif
