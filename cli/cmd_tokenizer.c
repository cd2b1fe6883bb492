/* braid tokenizer train|encode|decode: byte-level BPE (see docs/data.md). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "base/fileio.h"
#include "base/timer.h"
#include "commands.h"
#include "text/bpe_train.h"
#include "text/tokenizer.h"

/* Reads all of stdin (binary-safe). */
static int read_stdin(char **data, size_t *size)
{
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap + 1);
    if (!buf) return -1;
    for (;;) {
        size_t got = fread(buf + n, 1, cap - n, stdin);
        n += got;
        if (n < cap) break;
        char *nb = realloc(buf, cap * 2 + 1);
        if (!nb) {
            free(buf);
            return -1;
        }
        buf = nb;
        cap *= 2;
    }
    if (ferror(stdin)) {
        free(buf);
        return -1;
    }
    buf[n] = 0;
    *data = buf;
    *size = n;
    return 0;
}

static int tok_encode(int argc, char **argv)
{
    const char *path = NULL, *text = NULL, *file = NULL;
    bool special = false, count = false;
    const opt_t opts[] = {
        {"tokenizer", OPT_STR, &path, "PATH", "tokenizer.json, a folder with encoder.json + vocab.bpe, or a tiktoken file", true},
        {"text", OPT_STR, &text, "STR", "text to encode (default: read stdin, or --input)", false},
        {"input", OPT_STR, &file, "FILE", "file to encode", false},
        {"allow-special", OPT_BOOL, &special, NULL, "match special tokens such as <|endoftext|> in the text (default off)", false},
        {"count", OPT_BOOL, &count, NULL, "print only the number of tokens", false},
    };
    cmd_spec_t spec = {"braid tokenizer encode --tokenizer PATH [--text STR | --input FILE]",
                       "Prints the token ids of the text (stdin by default) separated by spaces on one line. "
                       "Any bytes are accepted, including invalid UTF-8.",
                       opts, sizeof opts / sizeof *opts, 0, 0};
    char **pos;
    int npos, rc = args_parse(&spec, argc, argv, &pos, &npos);
    if (rc) return rc == 1 ? 0 : 2;
    if (text && file) {
        fprintf(stderr, "braid: error: give --text or --input, not both\n");
        return 2;
    }
    br_tokenizer_t *tok;
    br_status st = br_tokenizer_load(&tok, path);
    if (st) return fail_status(st, NULL);
    char *buf = NULL;
    size_t len;
    if (text) len = strlen(text);
    else if (file) {
        if ((st = br_read_file(file, &buf, &len))) {
            br_tokenizer_free(tok);
            return fail_status(st, NULL);
        }
    } else if (read_stdin(&buf, &len)) {
        fprintf(stderr, "braid: error: reading stdin: %s\n", strerror(errno));
        br_tokenizer_free(tok);
        return 1;
    }
    int32_t *ids;
    size_t n;
    st = br_tokenizer_encode(tok, text ? text : buf, len, special, &ids, &n);
    free(buf);
    br_tokenizer_free(tok);
    if (st) return fail_status(st, NULL);
    if (count) printf("%zu\n", n);
    else {
        for (size_t i = 0; i < n; i++) printf(i ? " %d" : "%d", ids[i]);
        putchar('\n');
    }
    free(ids);
    return 0;
}

static int tok_decode(int argc, char **argv)
{
    const char *path = NULL;
    const opt_t opts[] = {
        {"tokenizer", OPT_STR, &path, "PATH", "tokenizer.json, a folder with encoder.json + vocab.bpe, or a tiktoken file", true},
    };
    cmd_spec_t spec = {"braid tokenizer decode --tokenizer PATH < ids.txt",
                       "Reads token ids (separated by spaces, commas or newlines) from stdin and writes the "
                       "decoded bytes to stdout.",
                       opts, sizeof opts / sizeof *opts, 0, 0};
    char **pos;
    int npos, rc = args_parse(&spec, argc, argv, &pos, &npos);
    if (rc) return rc == 1 ? 0 : 2;
    br_tokenizer_t *tok;
    br_status st = br_tokenizer_load(&tok, path);
    if (st) return fail_status(st, NULL);
    char *in;
    size_t len;
    if (read_stdin(&in, &len)) {
        br_tokenizer_free(tok);
        fprintf(stderr, "braid: error: reading stdin: %s\n", strerror(errno));
        return 1;
    }
    size_t n = 0, cap = 1024;
    int32_t *ids = malloc(cap * sizeof *ids);
    char *p = in;
    int bad = 0;
    while (ids && !bad) {
        while (*p == ' ' || *p == ',' || *p == '\n' || *p == '\r' || *p == '\t') p++;
        if (!*p) break;
        char *end;
        errno = 0;
        long v = strtol(p, &end, 10);
        if (end == p || errno || v < INT32_MIN || v > INT32_MAX || (*end && !strchr(" ,\n\r\t", *end))) {
            fprintf(stderr, "braid: error: decode: \"%.20s\" is not a token id\n", p);
            bad = 1;
            break;
        }
        if (n == cap) {
            int32_t *ni = realloc(ids, (cap *= 2) * sizeof *ids);
            if (!ni) {
                free(ids);
                ids = NULL;
                break;
            }
            ids = ni;
        }
        ids[n++] = (int32_t)v;
        p = end;
    }
    free(in);
    if (!ids || bad) {
        if (!ids) fprintf(stderr, "braid: error: out of memory\n");
        free(ids);
        br_tokenizer_free(tok);
        return 1;
    }
    char *text;
    size_t tl;
    st = br_tokenizer_decode(tok, ids, n, &text, &tl);
    free(ids);
    br_tokenizer_free(tok);
    if (st) return fail_status(st, NULL);
    fwrite(text, 1, tl, stdout);
    free(text);
    return 0;
}

static int tok_train(int argc, char **argv)
{
    const char *input = "data/raw", *out = NULL, *pattern = "gpt2", *split = "train", *exclude = NULL;
    long vocab = 8192;
    double max_mb = 0;
    int threads = 0;
    long min_freq = 2;
    const opt_t opts[] = {
        {"input", OPT_STR, &input, "PATH", "a text file, or a folder searched recursively for *.txt (default data/raw)", false},
        {"split", OPT_STR, &split, "NAME", "with a data/raw-style folder: use only <domain>/NAME/ files (default train; 'all' for every .txt)", false},
        {"exclude", OPT_STR, &exclude, "LIST", "with a folder: comma-separated domain folders to skip (e.g. the held-out bible)", false},
        {"vocab-size", OPT_LONG, &vocab, "N", "total ids including <|endoftext|> (default 8192; 257..1048576)", false},
        {"out", OPT_STR, &out, "PATH", "tokenizer.json to write", true},
        {"pattern", OPT_STR, &pattern, "NAME", "pre-tokenisation regex: gpt2 or cl100k (default gpt2)", false},
        {"max-mb", OPT_DOUBLE, &max_mb, "MB", "read at most this many MB of text, an equal share from each file (default all)", false},
        {"min-frequency", OPT_LONG, &min_freq, "N", "stop when the best pair occurs fewer times (default 2)", false},
        {"threads", OPT_INT, &threads, "N", "threads for counting (default all cores)", false},
    };
    cmd_spec_t spec = {"braid tokenizer train --input data/raw --vocab-size 8192 --out tokenizer.json",
                       "Learns a byte-level BPE vocabulary (GPT-2 pre-tokenisation, 256 byte tokens, merges, "
                       "<|endoftext|> last) and writes a Hugging Face tokenizer.json.",
                       opts, sizeof opts / sizeof *opts, 0, 0};
    char **pos;
    int npos, rc = args_parse(&spec, argc, argv, &pos, &npos);
    if (rc) return rc == 1 ? 0 : 2;
    br_bpe_train_opts_t o = {0};
    o.vocab_size = (size_t)(vocab < 0 ? 0 : vocab);
    o.min_frequency = min_freq < 1 ? 1 : (size_t)min_freq;
    o.max_bytes = (size_t)(max_mb * 1e6);
    o.threads = threads;
    o.split = strcmp(split, "all") ? split : NULL;
    o.exclude = exclude;
    if (!strcmp(pattern, "gpt2")) o.pattern = br_pattern_gpt2;
    else if (!strcmp(pattern, "cl100k")) o.pattern = br_pattern_cl100k;
    else {
        fprintf(stderr, "braid: error: --pattern must be gpt2 or cl100k\n");
        return 2;
    }
    const char *slash = strrchr(out, '/');
    if (slash && slash != out) {
        char *parent = strndup(out, (size_t)(slash - out));
        br_status ms = parent ? br_mkdir_p(parent) : br_error(BR_ENOMEM, "out of memory");
        free(parent);
        if (ms) return fail_status(ms, "tokenizer train");
    }
    double t0 = br_now();
    br_bpe_train_stats_t stats;
    br_status st = br_bpe_train(input, out, &o, &stats);
    if (st) return fail_status(st, "tokenizer train");
    printf("trained %zu merges on %.1f MB (%zu unique words) in %.1f s -> %s\n", stats.merges, stats.bytes / 1e6,
           stats.unique_words, br_now() - t0, out);
    if (stats.vocab_size < o.vocab_size)
        printf("note: vocabulary has %zu ids, fewer than the %zu asked: no pair occurs %zu times any more\n",
               stats.vocab_size, o.vocab_size, o.min_frequency);
    return 0;
}

int tok_chat(int argc, char **argv); /* cmd_tokenizer_chat.c */

static const subcmd_t subs[] = {
    {"train", tok_train, "learn a byte-level BPE vocabulary, write tokenizer.json"},
    {"encode", tok_encode, "text -> token ids"},
    {"decode", tok_decode, "token ids -> text"},
    {"chat", tok_chat, "render a model's chat template for a conversation (cmd_tokenizer_chat.c)"},
};

int cmd_tokenizer(int argc, char **argv)
{
    return run_subcommand("tokenizer", subs, sizeof subs / sizeof *subs, argc, argv);
}
