/* The upcycling commands end to end on tiny checkpoints: braid upcycle (every method) writes a
 * loadable MoE whose `braid btm`-style evaluation runs; bad input (unknown method, missing or
 * mismatched experts, empty expert list, BAM on sequential blocks) is a clear error (exit 1 or
 * 2, "braid: error: ...") and writes nothing. */
#include <stdarg.h>
#include <stdio.h>
#include <sys/wait.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/dtype.h"
#include "base/fileio.h"
#define TH_WANT_RUN
#include "harness.h"
#include "lm/model.h"

static const char *braid;
static char root[] = "/tmp/braid_moe_cli_XXXXXX";


static void make_model(const char *name, br_block_kind block, int vocab, uint64_t seed)
{
    br_model_config_t c;
    br_config_defaults(&c);
    c.vocab_size = vocab;
    c.hidden_size = 16;
    c.intermediate_size = 24;
    c.num_hidden_layers = 2;
    c.num_attention_heads = 2;
    c.num_key_value_heads = 2;
    c.max_position_embeddings = 16;
    c.block = block;
    br_model_t *m;
    CHECK_OK(br_model_create(&m, &c, false));
    if (!m) return;
    br_model_init_random(m, seed);
    char dir[4200];
    snprintf(dir, sizeof dir, "%s/%s", root, name);
    CHECK_OK(br_mkdir_p(dir));
    CHECK_OK(br_model_save(m, dir, BR_DT_F32));
    br_model_free(m);
}

int main(void)
{
    braid = getenv("BRAID");
    if (!braid || !*braid) {
        SKIP("BRAID not set: the CLI checks need the braid program (make test sets it)");
        return th_exit();
    }
    if (!mkdtemp(root)) {
        SKIP("mkdtemp failed");
        return th_exit();
    }
    make_model("seed", BR_BLOCK_PARALLEL, 40, 1);
    make_model("a", BR_BLOCK_PARALLEL, 40, 2);
    make_model("b", BR_BLOCK_PARALLEL, 40, 3);
    make_model("seq", BR_BLOCK_SEQUENTIAL, 40, 4);
    make_model("v41", BR_BLOCK_PARALLEL, 41, 5);
    char out[16384];
    static const char *const methods[] = {"sparse", "btx", "bam", "bam-shared-kv"};
    for (int i = 0; i < 4; i++) {
        int rc = th_run(out, sizeof out, "%s upcycle --method %s --base %s/seed --experts %s/a,%s/b --out %s/moe-%s",
                     braid, methods[i], root, root, root, root, methods[i]);
        CHECK_MSG(rc == 0 && strstr(out, "wrote"), "upcycle --method %s: exit %d: %s", methods[i], rc, out);
        char dir[4200];
        snprintf(dir, sizeof dir, "%s/moe-%s", root, methods[i]);
        br_model_t *m = NULL;
        CHECK_OK(br_model_load(&m, dir, false));
        if (m) CHECK_INT(m->cfg.num_local_experts, 2);
        if (m && i >= 2) CHECK_INT(m->cfg.num_attention_experts, 2);
        br_model_free(m);
        snprintf(dir, sizeof dir, "%s/moe-%s/upcycle.json", root, methods[i]);
        CHECK(br_file_exists(dir));
    }
    int rc = th_run(out, sizeof out, "%s extend --moe %s/moe-btx --expert %s/seed --out %s/moe-btx-plus", braid, root, root, root);
    CHECK_MSG(rc == 0 && strstr(out, "3 FFN experts"), "extend: exit %d: %s", rc, out);
    {
        char p[4200];
        snprintf(p, sizeof p, "%s/moe-btx-plus/upcycle.json", root);
        char *text = NULL;
        size_t n;
        CHECK_OK(br_read_file(p, &text, &n));
        CHECK(text && strstr(text, "extended_from"));
        free(text);
    }

    /* bad input: a clear error, nothing written */
    struct { const char *args; const char *want; } bad[] = {
        {"--method btx-2 --base %s/seed --experts %s/a,%s/b --out %s/never", "unknown upcycling method"},
        {"--method btx --base %s/seed --experts %s/a,%s/nope --out %s/never", "not a directory"},
        {"--method btx --base %s/seed --experts %s/a,%s/v41 --out %s/never", "vocab_size"},
        {"--method btx --base %s/seed --experts %s/a,%s/seq --out %s/never", "block type"},
        {"--method bam --base %s/seq --experts %s/seq,%s/seq --out %s/never", "parallel blocks"},
        {"--method nexus --base %s/seed --experts %s/a,%s/b --out %s/never", "--domain-data"},
        {"--method btx --base %s/seed --experts , --out %s/never", "no experts"},
        {"--method btx --base %s/seed --experts %s/a --out %s/never", "braid: error: upcycle: a mixture needs at least 2"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char args[4096];
        snprintf(args, sizeof args, bad[i].args, root, root, root, root);
        rc = th_run(out, sizeof out, "%s upcycle %s", braid, args);
        CHECK_MSG(rc == 1 && strstr(out, "braid: error:") && strstr(out, bad[i].want) && !strstr(out, "upcycle: upcycle:"),
                  "upcycle %s: want exit 1 and '%s', got exit %d: %s", args, bad[i].want, rc, out);
    }
    char never[4200];
    snprintf(never, sizeof never, "%s/never", root);
    CHECK(!br_dir_exists(never));
    rc = th_run(out, sizeof out, "%s upcycle --base %s/seed --out %s/never", braid, root, root);
    CHECK_MSG(rc == 2, "missing --method: exit %d", rc);
    rc = th_run(out, sizeof out, "%s extend --moe %s/moe-bam --expert %s/seed --out %s/never", braid, root, root, root);
    CHECK_MSG(rc == 1 && strstr(out, "not supported"), "extend of a BAM mixture: exit %d: %s", rc, out);
    rc = th_run(out, sizeof out, "%s extend --moe %s/moe-btx --expert %s/seed --out %s/never --finetune-steps 3", braid, root, root, root);
    CHECK_MSG(rc == 2 && strstr(out, "--data"), "extend --finetune-steps without --data: exit %d: %s", rc, out);
    rc = th_run(out, sizeof out, "%s branch --mix code=1 --out %s/never", braid, root);
    CHECK_MSG(rc == 2 && strstr(out, "--from"), "branch without --from: exit %d: %s", rc, out);
    rc = th_run(out, sizeof out, "%s upcycle --help", braid);
    CHECK(rc == 0 && strstr(out, "usage: braid upcycle"));
    char cmd[4300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", root);
    return th_exit();
}
