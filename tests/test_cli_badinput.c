/* Bad input on every braid command, end to end through $BRAID: missing and malformed flags,
 * nonexistent files, folders for files, empty files, garbage and truncated checkpoints
 * (missing, mis-shaped and inconsistent tensors), token ids outside the vocabulary, empty and
 * column-less CSVs.  Each case must exit with the documented status (1 error, 2 usage), never
 * by a signal, print "braid: error: " and name the problem (a substring of the message), and
 * print no sanitizer report (under make SAN=address,undefined test). */
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/fileio.h"
#include "base/safetensors.h"
#include "harness.h"

static char tmp[64];

/* Replaces every '@' of `in` by the fixture folder. */
static void expand(char *out, size_t cap, const char *in)
{
    size_t n = 0;
    for (const char *p = in; *p && n + 1 < cap; p++) {
        if (*p == '@') n += (size_t)snprintf(out + n, cap - n, "%s", tmp);
        else out[n++] = *p;
        if (n >= cap) n = cap - 1;
    }
    out[n] = 0;
}

static int sh(const char *cmd)
{
    int rc = system(cmd);
    if (rc == -1) return -1;
    if (WIFSIGNALED(rc)) return 128 + WTERMSIG(rc);
    return WEXITSTATUS(rc);
}

/* Rewrites tests/ref/llama_tiny/model.safetensors into DIR: without tensor `drop`, with
 * tensor `transpose` stored with its two dimensions swapped (same bytes, wrong shape), or
 * with a NaN as the first element of tensor `nan_in`. */
static bool write_bad_model(const char *dir, const char *drop, const char *transpose, const char *nan_in)
{
    char path[512];
    snprintf(path, sizeof path, "mkdir -p %s && cp tests/ref/llama_tiny/config.json %s/", dir, dir);
    if (sh(path)) return false;
    br_safetensors_t *st;
    if (br_st_open(&st, "tests/ref/llama_tiny/model.safetensors")) return false;
    br_st_writer_t *w;
    bool ok = br_st_writer_create(&w) == BR_OK;
    size_t nt = br_st_count(st);
    float **keep = calloc(nt, sizeof *keep); /* F32 data is referenced until the save */
    for (size_t i = 0; ok && keep && i < nt; i++) {
        const br_st_tensor_t *t = br_st_tensor(st, i);
        if (drop && !strcmp(t->name, drop)) continue;
        float *d = keep[i] = malloc(t->numel * sizeof *d);
        ok = d && br_st_read_f32(t, d, t->numel) == BR_OK;
        if (ok && nan_in && !strcmp(t->name, nan_in)) d[0] = NAN;
        int64_t shape[BR_ST_MAX_DIMS];
        memcpy(shape, t->shape, sizeof shape);
        if (transpose && !strcmp(t->name, transpose) && t->ndim == 2) {
            shape[0] = t->shape[1];
            shape[1] = t->shape[0];
        }
        ok = ok && br_st_writer_add_f32(w, t->name, BR_DT_F32, t->ndim, shape, d) == BR_OK;
    }
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    ok = ok && keep && br_st_writer_save(w, path) == BR_OK;
    br_st_writer_free(w);
    for (size_t i = 0; keep && i < nt; i++) free(keep[i]);
    free(keep);
    br_st_close(st);
    return ok;
}

typedef struct {
    int rc;             /* expected exit status */
    const char *args;   /* '@': the fixture folder */
    const char *needle; /* must appear in the "braid: error: " message */
} bad_case;

static const bad_case CASES[] = {
    /* usage: flags */
    {2, "nosuchcommand", "unknown command"},
    {2, "score --tokens '1 2'", "--model is required"},
    {2, "generate --model @/good --prompt-ids '1 2' --ids -n abc", "--max-tokens: invalid value 'abc'"},
    {2, "generate --model @/good --prompt-ids '1 2' --ids --bogus", "unknown option '--bogus'"},
    {2, "generate --model @/good --prompt-ids '1 2' --ids --top-p 2", "--top-p"},
    {2, "generate --model @/good --prompt-ids '1 2' --temperature nan --ids", "--temperature: invalid value"},
    {2, "train --config @/good/config.json --data @/tok --mix a=1 --out @/o --steps abc", "--steps: invalid value"},
    {2, "train --data @/tok --mix a=1 --out @/o", "exactly one of --config, --init or --resume"},
    {2, "eval --model @/good --data @/tok --format xml", "--format must be"},
    {2, "inspect", "expected 1 argument"},
    {2, "serve --model @/good --port 70000", "--port must be 0..65535"},
    {2, "lora-train --base @/good --data @/tok --mix a=1 --out @/o --rank 0", "--rank"},
    {2, "rl marco --out @/o --env switch --real-steps 400 --mixer bogus", "--mixer"},
    {2, "data bogus", "unknown command 'data bogus'"},
    /* files: missing, folders, empty, garbage */
    {1, "inspect @/nonexist", "No such file"},
    {1, "inspect @/empty", "shorter than the 8-byte header"},
    {1, "inspect @/emptydir", "not a regular file"},
    {1, "inspect @/trunc/model.safetensors", "past the data area"},
    {1, "score --model @/nonexist --tokens '1 2'", "not a model directory"},
    {1, "score --model @/emptydir --tokens '1 2'", "not a model directory"},
    {1, "score --model @/garbcfg --tokens '1 2'", "config.json"},
    {1, "score --model @/badcfg --tokens '1 2'", "the config needs [61, 64]"},
    {1, "score --model @/trunc --tokens '1 2'", "past the data area"},
    {1, "score --model @/drop --tokens '1 2'", "missing tensor 'model.layers.1.mlp.up_proj.weight'"},
    {1, "score --model @/shape --tokens '1 2'", "has shape [32, 40], the config needs [40, 32]"},
    {1, "score --model @/nan --tokens '1 2'", "'model.layers.0.self_attn.q_proj.weight' contains NaN"},
    /* configs that would need gigabytes: refused by the check against the file, before allocating */
    {1, "score --model @/hugevocab --tokens '1 2'", "the config needs [16777216, 32] (vocab_size, hidden_size)"},
    {1, "score --model @/deep --tokens '1 2'", "says num_hidden_layers = 4096"},
    {1, "score --model @/good --tokens-file @/emptydir", "read error"},
    {1, "score --model @/good --tokens-file @/nonexist", "No such file"},
    {1, "score --model @/good --tokens-file @/empty", "at least 2 token ids"},
    /* token ids */
    {1, "score --model @/good --tokens '1 2 61'", "outside the vocabulary"},
    {1, "score --model @/good --tokens '1 -2'", "not a non-negative integer id"},
    {1, "score --model @/good --tokens '1 99999999999999999999'", "not a non-negative integer id"},
    {1, "generate --model @/good --prompt-ids '1 61' --ids", "outside the vocabulary"},
    {1, "generate --model @/good --prompt-ids '' --ids", "empty prompt"},
    {1, "generate --model @/good --prompt hi --tokenizer @/emptydir", "neither tokenizer.json"},
    {1, "generate --model @/good --prompt hi --tokenizer @/garbage", "loading tokenizer"},
    {1, "tokenizer encode --tokenizer @/empty --text hi", "loading tokenizer"},
    {1, "tokenizer train --input @/emptydir --vocab-size 300 --out @/t.json", "no train.txt"},
    {1, "tokenizer train --input @/empty --vocab-size 300 --out @/t.json", "corpus is empty"},
    /* training and evaluation inputs */
    {1, "train --config @/garbage --data @/tok --mix a=1 --out @/o --seq 16", "config.json"},
    {1, "train --init @/shape --data @/tok --mix a=1 --out @/o --seq 16", "the config needs"},
    {1, "train --config @/good/config.json --data @/nonexist --mix a=1 --out @/o --seq 16", "no train shard"},
    {1, "train --config @/good/config.json --data @/tok --mix a=abc --out @/o --seq 16", "weight of a"},
    {1, "train --config @/good/config.json --data @/tok --mix a=1 --out @/o --seq 1000", "longer than the model's context"},
    {1, "eval --model @/good --data @/emptydir", "no <domain>/val.bin"},
    {1, "eval --model @/good --data @/tok --domains a --seq 1000", "longer than the model's context"},
    {1, "lora-train --base @/drop --data @/tok --mix a=1 --out @/o", "missing tensor"},
    {1, "upcycle --method btx --base @/good --experts @/shape,@/good --out @/o", "has shape [32, 40]"},
    {1, "upcycle --method btx --base @/drop --experts @/good,@/good --out @/o", "missing tensor"},
    {1, "upcycle --method btx --base @/good --experts @/nonexist,@/good --out @/o", "is not a directory"},
    {1, "upcycle --method bogus --base @/good --experts @/good --out @/o", "unknown upcycling method"},
    {1, "extend --moe @/good --expert @/good --out @/o", "not a mixture of experts"},
    {1, "btm --experts @/good,@/nonexist --data @/tok --domains a", "not a model directory"},
    {2, "btm --experts @/good,@/good --data @/tok --domains a --weights bayes", "--weights must be posterior or uniform"},
    {1, "serve --model @/shape --port 0", "the config needs"},
    {1, "serve --model @/good --port 0 --tenants @/garbage", "@/garbage"},
    /* CSVs */
    {1, "parden score --in @/empty --ref-col a --hyp-col b --out @/o.csv", "empty CSV"},
    {1, "parden score --in @/ok.csv --ref-col nope --hyp-col repeated --out @/o.csv", "no column 'nope'"},
    {1, "parden score --in @/ragged.csv --ref-col a --hyp-col b --out @/o.csv", "ragged row"},
    {1, "parden score --in @/emptydir --ref-col a --hyp-col b --out @/o.csv", "read error"},
    {1, "parden eval --benign @/ok.csv --harmful @/ok.csv --score-col output", "is not a number"},
    {1, "parden check --text-file @/nonexist --repeat x", "No such file"},
    {1, "rl rfos --out @/garbage", "not a directory"},
    {2, "rl rfos --out @/rf --temperature -1", "--temperature must be >= 0"},
    {2, "upcycle --method sparse --base @/good --num-experts -3 --out @/o", "--num-experts"},
    {1, "rl mfos --out @/o --population 3", "population 3"},
    {1, "rl vdn --out @/o --env bogus --real-steps 400", "unknown environment 'bogus'"},
};

/* Paths longer than the system takes (5000 bytes, PATH_MAX is 4096) and a domain name longer
 * than a shard folder name may be: each command fails with exit 1, "braid: error: " and the
 * reason (the system's, which the message puts before the path it cuts), never writes under
 * a name cut to fit a fixed buffer.  `#` in a case stands for the long path. */
static void long_paths(const char *braid)
{
    br_buf_t lng = BR_BUF_INIT, cmd = BR_BUF_INIT, path = BR_BUF_INIT;
    CHECK_OK(br_buf_puts(&lng, tmp));
    while (lng.len < 5000) CHECK_OK(br_buf_printf(&lng, "/%0100d", 0));
    const struct {
        const char *args, *needle;
    } cases[] = {
        {"rl rfos --out #", "File name too long"},
        {"rl mfos --out #", "File name too long"},
        {"tokenizer train --input @/raw --vocab-size 300 --out #/t.json", "File name too long"},
        {"parden eval --benign @/ok.csv --harmful @/ok.csv --score-col id --out-prefix #/roc", "File name too long"},
        {"upcycle --method sparse --base @/good --out #", "File name too long"},
        {"data prepare --tokenizer tests/ref/serve_tokenizer.json --raw @/raw --out #", "File name too long"},
        {"data prepare --tokenizer tests/ref/serve_tokenizer.json --raw @/longdom --out @/longtok",
         "is longer than 63 bytes"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char args[512];
        expand(args, sizeof args, cases[i].args);
        br_buf_clear(&cmd);
        CHECK_OK(br_buf_printf(&cmd, "%s ", braid));
        for (const char *a = args; *a; a++) CHECK_OK(*a == '#' ? br_buf_puts(&cmd, br_buf_str(&lng)) : br_buf_append(&cmd, a, 1));
        CHECK_OK(br_buf_printf(&cmd, " < /dev/null > %s/out.txt 2> %s/err.txt", tmp, tmp));
        int rc = sh(br_buf_str(&cmd));
        CHECK_OK(br_buf_path(&path, tmp, "err.txt"));
        char *err = NULL;
        size_t n = 0;
        if (br_read_file(br_buf_str(&path), &err, &n)) err = NULL;
        const char *e = err ? err : "";
        CHECK_MSG(rc == 1, "braid %s: exit %d, want 1; stderr: %.300s", args, rc, e);
        CHECK_MSG(strstr(e, "braid: error: ") && strstr(e, cases[i].needle), "braid %s: want '%s'; stderr: %.300s", args,
                  cases[i].needle, e);
        CHECK_MSG(!strstr(e, "Sanitizer") && !strstr(e, "runtime error"), "braid %s: sanitizer report: %.600s", args, e);
        free(err);
    }
    /* the over-long domain name left no folder cut to 63 bytes behind */
    br_buf_clear(&path);
    CHECK_OK(br_buf_printf(&path, "%s/longtok/%063d", tmp, 0));
    CHECK(!br_dir_exists(br_buf_str(&path)));
    br_buf_free(&lng);
    br_buf_free(&cmd);
    br_buf_free(&path);
}

int main(void)
{
    const char *braid = getenv("BRAID");
    if (!braid || access(braid, X_OK)) {
        SKIP("BRAID not set (run through make test)");
        return th_exit();
    }
    snprintf(tmp, sizeof tmp, "/tmp/braid_badinput_XXXXXX");
    if (!mkdtemp(tmp)) {
        SKIP("mkdtemp failed");
        return th_exit();
    }
    char cmd[4096], path[512];
    expand(cmd, sizeof cmd,
           "cp -r tests/ref/llama_tiny @/good && mkdir -p @/emptydir @/tok && : > @/empty && "
           "echo garbage > @/garbage && mkdir -p @/badcfg @/trunc @/garbcfg && "
           "cp @/good/* @/badcfg/ && sed -i 's/\"hidden_size\": 32/\"hidden_size\": 64/' @/badcfg/config.json && "
           "cp @/good/config.json @/trunc/ && head -c 3000 @/good/model.safetensors > @/trunc/model.safetensors && "
           "cp @/good/model.safetensors @/garbcfg/ && echo '{\"vocab_size\": \"x\"' > @/garbcfg/config.json && "
           "mkdir -p @/hugevocab @/deep && cp @/good/* @/hugevocab/ && cp @/good/* @/deep/ && "
           "sed -i 's/\"vocab_size\": 61/\"vocab_size\": 16777216/' @/hugevocab/config.json && "
           "sed -i 's/\"num_hidden_layers\": 2/\"num_hidden_layers\": 4096/' @/deep/config.json && "
           "printf 'id,output,repeated\\n1,hello world,hello world\\n' > @/ok.csv && printf 'a,b\\n1,2\\n3\\n' > @/ragged.csv && "
           "mkdir -p @/raw/web && echo 'hello world, hello there' > @/raw/web/train.txt && cp @/raw/web/train.txt @/raw/web/val.txt && "
           "D=@/longdom/0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000001 && "
           "mkdir -p $D && cp @/raw/web/*.txt $D/");
    CHECK_INT(sh(cmd), 0);
    snprintf(path, sizeof path, "%s/drop", tmp);
    CHECK(write_bad_model(path, "model.layers.1.mlp.up_proj.weight", NULL, NULL));
    snprintf(path, sizeof path, "%s/shape", tmp);
    CHECK(write_bad_model(path, NULL, "model.layers.0.mlp.gate_proj.weight", NULL));
    snprintf(path, sizeof path, "%s/nan", tmp);
    CHECK(write_bad_model(path, NULL, NULL, "model.layers.0.self_attn.q_proj.weight"));
    setenv("BRAID_QUIET", "1", 1);
    for (size_t i = 0; i < sizeof CASES / sizeof *CASES; i++) {
        const bad_case *c = &CASES[i];
        char args[2048], needle[512], line[4096];
        expand(args, sizeof args, c->args);
        expand(needle, sizeof needle, c->needle);
        snprintf(line, sizeof line, "%s %s < /dev/null > %s/out.txt 2> %s/err.txt", braid, args, tmp, tmp);
        int rc = sh(line);
        snprintf(path, sizeof path, "%s/err.txt", tmp);
        char *err = NULL;
        size_t n = 0;
        if (br_read_file(path, &err, &n)) err = NULL;
        const char *e = err ? err : "";
        CHECK_MSG(rc == c->rc, "braid %s: exit %d, want %d; stderr: %.300s", args, rc, c->rc, e);
        CHECK_MSG(strstr(e, "braid: error: ") != NULL, "braid %s: no 'braid: error: ' line; stderr: %.300s", args, e);
        CHECK_MSG(strstr(e, needle) != NULL, "braid %s: message does not name '%s'; stderr: %.300s", args, needle, e);
        CHECK_MSG(!strstr(e, "Sanitizer") && !strstr(e, "runtime error"), "braid %s: sanitizer report: %.600s", args, e);
        free(err);
    }
    long_paths(braid);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    CHECK_INT(sh(cmd), 0);
    return th_exit();
}
