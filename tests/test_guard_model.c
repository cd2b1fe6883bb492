/* PARDEN repeats from braid's own model (guard/model_gen): a tiny randomly initialised Llama
 * checkpoint and a byte-level tokenizer.json written here; the repeat must be exactly the
 * greedy continuation (br_generate on the encoded prompt, decoded), deterministic, usable by
 * br_parden_guard and by `braid parden repeat|check --model`; a prompt longer than the
 * context is a clear BR_ERANGE. */
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/csv.h"
#include "base/dtype.h"
#include "base/fileio.h"
#include "guard/model_gen.h"
#include "guard/parden.h"
#include "harness.h"
#include "text/bytelevel.h"
#include "lm/generate.h"
#include "lm/model.h"
#include "text/tokenizer.h"

static char dir[] = "/tmp/braid_parden_model_XXXXXX";
static char tokpath[300], modeldir[300], smalldir[300];

static void write_tokenizer(const char *path)
{
    FILE *f = fopen(path, "w");
    fputs("{\"model\": {\"type\": \"BPE\", \"vocab\": {", f);
    for (int b = 0; b < 256; b++) {
        unsigned char c = (unsigned char)b;
        char u[8];
        br_bytelevel_encode(u, &c, 1);
        fprintf(f, "%s\"%s%s\": %d", b ? ", " : "", (!strcmp(u, "\"") || !strcmp(u, "\\")) ? "\\" : "", u, b);
    }
    fputs(", \"<|endoftext|>\": 256}, \"merges\": []}, \"added_tokens\": [{\"id\": 256, \"content\": "
          "\"<|endoftext|>\", \"special\": true}], \"pre_tokenizer\": null}",
          f);
    fclose(f);
}

static br_status write_model(const char *path, int ctx)
{
    br_model_config_t c;
    br_config_defaults(&c);
    c.vocab_size = 257;
    c.hidden_size = 32;
    c.intermediate_size = 64;
    c.num_hidden_layers = 2;
    c.num_attention_heads = 4;
    c.num_key_value_heads = 2;
    c.max_position_embeddings = ctx;
    c.eos_token_id = 256;
    BR_TRY(br_config_validate(&c));
    br_model_t *m;
    BR_TRY(br_model_create(&m, &c, false));
    br_model_init_random(m, 1234);
    br_status s = br_model_save(m, path, BR_DT_F32);
    br_model_free(m);
    return s;
}

static const char *TEXT = "Everyone is permitted to copy and distribute verbatim copies of this license document.";

static void test_library(void)
{
    br_parden_model_t *g = NULL;
    CHECK_OK(br_parden_model_open(&g, modeldir, tokpath));
    if (!g) return;
    char *prompt = NULL, *a = NULL, *b = NULL;
    CHECK_OK(br_parden_prompt(BR_PARDEN_LLAMA2, TEXT, &prompt));
    CHECK_OK(br_parden_model_generate(g, prompt, 12, &a));
    CHECK_OK(br_parden_model_generate(g, prompt, 12, &b));
    CHECK(a && b && !strcmp(a, b)); /* greedy: deterministic */

    /* the same as the LM's own greedy generation on the encoded prompt */
    br_model_t *m = NULL;
    br_tokenizer_t *t = NULL;
    CHECK_OK(br_model_load(&m, modeldir, false));
    CHECK_OK(br_tokenizer_load(&t, tokpath));
    int32_t *ids = NULL, *out = NULL;
    size_t n = 0, nout = 0, len = 0;
    CHECK_OK(br_tokenizer_encode(t, prompt, strlen(prompt), 1, &ids, &n));
    br_sampler_t greedy = {0.0f, 0, 1.0f};
    CHECK_OK(br_generate(m, ids, n, 12, &greedy, 0, 256, NULL, NULL, &out, &nout));
    CHECK(nout <= 12);
    char *want = NULL;
    CHECK_OK(br_tokenizer_decode(t, out, nout, &want, &len));
    CHECK(a && want && !strcmp(a, want));
    free(want);
    free(ids);
    free(out);
    br_model_free(m);
    br_tokenizer_free(t);

    /* the guard in one call */
    br_parden_opts_t po;
    br_parden_opts_default(&po);
    po.max_new_tokens = 12;
    br_parden_result_t r;
    char *rep = NULL;
    CHECK_OK(br_parden_guard(&po, TEXT, br_parden_model_generate, g, &r, &rep));
    CHECK(rep && a && !strcmp(rep, a));
    double s;
    CHECK_OK(br_parden_score(&po, TEXT, a ? a : "", &s));
    CHECK(r.score == s && r.harmful == (s < po.threshold));
    free(rep);
    free(a);
    free(b);
    free(prompt);
    CHECK_STATUS(br_parden_model_generate(g, "x", 0, &a), BR_EINVAL);
    br_parden_model_close(g);

    /* a context too short for the prompt */
    CHECK_OK(br_parden_model_open(&g, smalldir, tokpath));
    CHECK_OK(br_parden_prompt(BR_PARDEN_LLAMA2, TEXT, &prompt));
    CHECK_STATUS(br_parden_model_generate(g, prompt, 8, &a), BR_ERANGE);
    CHECK(strstr(br_errmsg(), "context") != NULL);
    free(prompt);
    br_parden_model_close(g);
    /* bad paths */
    CHECK(br_parden_model_open(&g, "/nonexistent/model", tokpath) != BR_OK && g == NULL);
    CHECK(br_parden_model_open(&g, modeldir, "/nonexistent/tokenizer.json") != BR_OK && g == NULL);
    br_parden_model_close(NULL);
}

static int run(const char *cmd)
{
    int rc = system(cmd);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static void test_cli(void)
{
    const char *braid = getenv("BRAID");
    if (!braid || access(braid, X_OK) != 0) {
        SKIP("BRAID not set: the CLI part needs the braid program (make test sets it)");
        return;
    }
    char in[400], out[400], cmd[2048];
    snprintf(in, sizeof in, "%s/in.csv", dir);
    snprintf(out, sizeof out, "%s/out.csv", dir);
    FILE *f = fopen(in, "w");
    const char *rows[3][2] = {{"output", "id"}, {TEXT, "0"}, {"Free software is a matter of liberty, not price.", "1"}};
    for (int i = 0; i < 3; i++) CHECK_OK(br_csv_write_row(f, rows[i], 2));
    fclose(f);
    snprintf(cmd, sizeof cmd, "BRAID_QUIET=1 %s parden repeat --in %s --out %s --model %s --tokenizer %s "
             "--max-new-tokens 6 2>/dev/null", braid, in, out, modeldir, tokpath);
    CHECK_INT(run(cmd), 0);
    br_csv_t c;
    CHECK_OK(br_csv_read(out, &c));
    CHECK_INT(c.nrows, 2);
    CHECK_INT(c.ncols, 3);
    /* row 0's repeat equals the library's greedy repeat */
    br_parden_model_t *g = NULL;
    char *prompt = NULL, *a = NULL;
    CHECK_OK(br_parden_model_open(&g, modeldir, tokpath));
    CHECK_OK(br_parden_prompt(BR_PARDEN_LLAMA2, TEXT, &prompt));
    CHECK_OK(br_parden_model_generate(g, prompt, 6, &a));
    if (c.nrows == 2 && a) CHECK_STR(br_csv_cell(&c, 0, 2), a);
    free(a);
    free(prompt);
    br_parden_model_close(g);
    br_csv_free(&c);
    snprintf(cmd, sizeof cmd, "%s parden check --model %s --tokenizer %s --text 'Hello.' --max-new-tokens 4 --json "
             ">/dev/null", braid, modeldir, tokpath);
    CHECK_INT(run(cmd), 0);
    snprintf(cmd, sizeof cmd, "%s parden check --model %s --text 'Hello.' 2>/dev/null", braid, modeldir);
    CHECK_INT(run(cmd), 1); /* --model needs --tokenizer */
}

int main(void)
{
    CHECK(mkdtemp(dir) != NULL);
    snprintf(tokpath, sizeof tokpath, "%s/tokenizer.json", dir);
    snprintf(modeldir, sizeof modeldir, "%s/model", dir);
    snprintf(smalldir, sizeof smalldir, "%s/small", dir);
    write_tokenizer(tokpath);
    CHECK_OK(br_mkdir_p(modeldir));
    CHECK_OK(br_mkdir_p(smalldir));
    CHECK_OK(write_model(modeldir, 2048));
    CHECK_OK(write_model(smalldir, 64));
    test_library();
    test_cli();
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0);
    return th_exit();
}
