/* End to end through the braid program ($BRAID): train on byte-level shards of real text
 * (two domains of /usr/share/common-licenses), --stop-at + --resume reproduce the
 * uninterrupted run's losses exactly, so does a run killed (SIGKILL) at every point of its very
 * first checkpoint (resumed, or started again when no checkpoint was complete), stale temporary
 * files of interrupted saves are removed (and only those), eval prints per-domain loss/ppl/bits-per-byte, score
 * agrees with eval's loss, generate --ids is deterministic, and bad input fails cleanly. */
#include <jansson.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/fileio.h"
#include "harness.h"
#include "text/data.h"
#include "shard_fixture.h"
#include "shell_fixture.h"

static char tmp[64];
static const char *braid;

static bool write_domain(const char *name, const char *license) { return write_license_domain(tmp, name, license); }

/* Losses of the step records of a train_log.jsonl, indexed by step (1-based). */
static int read_losses(const char *path, double *loss, int max)
{
    char *text;
    size_t n;
    if (br_read_file(path, &text, &n)) return 0;
    int count = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        json_t *j = json_loads(line, 0, NULL);
        json_t *st = json_object_get(j, "step"), *l = json_object_get(j, "loss");
        if (st && l && json_integer_value(st) <= max) {
            loss[json_integer_value(st)] = json_number_value(l);
            count++;
        }
        json_decref(j);
    }
    free(text);
    return count;
}

/* Each step record of two logs agrees exactly (steps 1..n). */
static int same_losses(const char *a_path, const char *b_path, int n)
{
    double a[64] = {0}, b[64] = {0};
    if (read_losses(a_path, a, n) != n || read_losses(b_path, b, n) != n) return 0;
    int same = 0;
    for (int i = 1; i <= n; i++) same += a[i] == b[i];
    return same;
}

/* kill -9 at each point of the first checkpoint (step 4): the folder must then either resume to
 * the uninterrupted run's exact losses, or (no complete checkpoint yet) refuse --resume saying
 * to start again, and start again cleanly.  Before each restart a fake temporary file of an
 * interrupted atomic write is planted: it must be removed and reported, a look-alike kept. */
static void kill_during_first_save(const char *flags)
{
    static const char *const points[] = {"config.json", "optimizer.safetensors", "model.safetensors", "done"};
    char full[512], dir[512], path[600], err[600];
    snprintf(full, sizeof full, "%s/full/train_log.jsonl", tmp);
    for (size_t i = 0; i < sizeof points / sizeof *points; i++) {
        snprintf(dir, sizeof dir, "%s/kill-%zu", tmp, i);
        snprintf(err, sizeof err, "%s/kill-%zu.err", tmp, i);
        int rc = sh("BRAID_TEST_KILL_BEFORE=%s %s train --config %s/cfg.json %s --out %s 2>/dev/null", points[i], braid,
                    tmp, flags, dir);
        CHECK_MSG(rc != 0, "kill before %s: the run was not killed (exit %d)", points[i], rc);
        CHECK_INT(sh("touch %s/model.safetensors.tmp.Ab12Cd %s/notes.tmp.keep", dir, dir), 0);
        snprintf(path, sizeof path, "%s/optimizer.safetensors", dir);
        bool has_ckpt = br_file_exists(path);
        /* a checkpoint is complete exactly when optimizer.safetensors is there (it is renamed
         * after config.json and before model.safetensors) */
        CHECK_MSG(has_ckpt == (i >= 2), "kill before %s: optimizer.safetensors %s", points[i],
                  has_ckpt ? "exists" : "is missing");
        rc = sh("%s train --resume %s --out %s 2>%s", braid, flags, dir, err);
        if (has_ckpt) {
            CHECK_MSG(rc == 0, "kill before %s: --resume exit %d", points[i], rc);
        } else {
            CHECK_MSG(rc == 1, "kill before %s: --resume without a checkpoint: exit %d", points[i], rc);
            char *text = NULL;
            size_t n;
            if (!br_read_file(err, &text, &n)) CHECK_MSG(strstr(text, "start it again") != NULL, "%s", text);
            free(text);
            rc = sh("%s train --config %s/cfg.json %s --out %s 2>%s", braid, tmp, flags, dir, err);
            CHECK_MSG(rc == 0, "kill before %s: the run did not start again: exit %d", points[i], rc);
        }
        char *text = NULL;
        size_t n;
        if (!br_read_file(err, &text, &n))
            CHECK_MSG(strstr(text, "removed") && strstr(text, "model.safetensors.tmp.Ab12Cd"),
                      "kill before %s: the stale temporary file is not reported: %s", points[i], text);
        free(text);
        snprintf(path, sizeof path, "%s/model.safetensors.tmp.Ab12Cd", dir);
        CHECK_MSG(!br_file_exists(path), "kill before %s: the stale temporary file is still there", points[i]);
        snprintf(path, sizeof path, "%s/notes.tmp.keep", dir);
        CHECK_MSG(br_file_exists(path), "kill before %s: a file that is not ours was removed", points[i]);
        snprintf(path, sizeof path, "%s/train_log.jsonl", dir);
        int same = same_losses(full, path, 12);
        CHECK_MSG(same == 12, "kill before %s: %d of 12 step losses as in the uninterrupted run", points[i], same);
    }
}

int main(void)
{
    braid = getenv("BRAID");
    if (!braid || access(braid, X_OK)) {
        SKIP("BRAID not set (run through make test)");
        return th_exit();
    }
    snprintf(tmp, sizeof tmp, "/tmp/braid_lm_cli_XXXXXX");
    if (!mkdtemp(tmp)) {
        SKIP("mkdtemp failed");
        return th_exit();
    }
    if (!write_domain("gpl", "GPL-3") || !write_domain("mpl", "MPL-1.1")) {
        sh("rm -rf '%s'", tmp);
        SKIP("/usr/share/common-licenses not available");
        return th_exit();
    }
    char path[512];
    snprintf(path, sizeof path, "%s/cfg.json", tmp);
    const char *cfg = "{\"vocab_size\": 256, \"hidden_size\": 48, \"intermediate_size\": 128, "
                      "\"num_hidden_layers\": 2, \"num_attention_heads\": 4, \"num_key_value_heads\": 2, "
                      "\"max_position_embeddings\": 64, \"rms_norm_eps\": 1e-5}";
    br_write_file_atomic(path, cfg, strlen(cfg));
    const char *common = "--data %s/tok --mix gpl=2,mpl=1 --steps 12 --batch 4 --seq 32 --accum 2 "
                         "--lr 3e-3 --warmup 2 --eval-interval 6 --eval-batches 2 --ckpt-interval 4 --threads 1";
    char flags[1024];
    snprintf(flags, sizeof flags, common, tmp);
    setenv("BRAID_QUIET", "1", 1);
    CHECK_INT(sh("%s train --config %s/cfg.json %s --out %s/full 2>/dev/null", braid, tmp, flags, tmp), 0);
    /* interrupted after step 5 (checkpoint at 5), with a stale log line of a step 6 that a
     * crash lost; the resume must drop it and continue exactly */
    CHECK_INT(sh("%s train --config %s/cfg.json %s --out %s/part --stop-at 5 2>/dev/null", braid, tmp, flags, tmp), 0);
    CHECK_INT(sh("echo '{\"step\": 6, \"loss\": 99.0}' >> %s/part/train_log.jsonl", tmp), 0);
    CHECK_INT(sh("%s train --resume %s --out %s/part 2>/dev/null", braid, flags, tmp), 0);
    double a[16] = {0}, b[16] = {0};
    snprintf(path, sizeof path, "%s/full/train_log.jsonl", tmp);
    CHECK_INT(read_losses(path, a, 12), 12);
    snprintf(path, sizeof path, "%s/part/train_log.jsonl", tmp);
    CHECK_INT(read_losses(path, b, 12), 12);
    int same = 0;
    for (int i = 1; i <= 12; i++) same += a[i] == b[i];
    CHECK_MSG(same == 12, "resumed run reproduces %d of 12 step losses exactly", same);
    CHECK(a[12] < a[1] - 0.5);
    kill_during_first_save(flags);
    /* files a checkpoint holds */
    snprintf(path, sizeof path, "%s/full/model.safetensors", tmp);
    CHECK(br_file_exists(path));
    snprintf(path, sizeof path, "%s/full/optimizer.safetensors", tmp);
    CHECK(br_file_exists(path));

    /* eval: JSON with both domains */
    CHECK_INT(sh("%s eval --model %s/full --data %s/tok --seq 32 --max-tokens 2048 --json %s/eval.json "
                 "--threads 1 > %s/eval.md 2>/dev/null", braid, tmp, tmp, tmp, tmp), 0);
    snprintf(path, sizeof path, "%s/eval.json", tmp);
    json_t *ev = json_load_file(path, 0, NULL);
    json_t *g = json_object_get(json_object_get(ev, "domains"), "gpl");
    double gl = json_number_value(json_object_get(g, "loss")), bpb = json_number_value(json_object_get(g, "bits_per_byte"));
    CHECK(gl > 0.5 && gl < 5.0);
    CHECK_NEAR(bpb, gl / log(2.0), 1e-3); /* byte-level: one token per byte */
    CHECK(json_object_get(json_object_get(ev, "domains"), "mpl") != NULL);
    json_decref(ev);
    snprintf(path, sizeof path, "%s/eval.md", tmp);
    char *md;
    size_t mdn;
    if (!br_read_file(path, &md, &mdn)) {
        CHECK(strstr(md, "| gpl |") && strstr(md, "bits/byte"));
        free(md);
    }

    /* score: the mean of the printed log-probs == -loss of eval on the same window */
    CHECK_INT(sh("%s score --model %s/full --tokens '84 104 105 115 32 80 114 111 103 114 97 109' --sum > %s/score.txt",
                 braid, tmp, tmp), 0);
    snprintf(path, sizeof path, "%s/score.txt", tmp);
    char *sc;
    size_t scn;
    if (!br_read_file(path, &sc, &scn)) {
        double total = 0;
        int cnt = 0;
        CHECK(sscanf(sc, "%lf %d", &total, &cnt) == 2 && cnt == 11 && total < 0 && total > -11 * 6.0);
        free(sc);
    }
    /* generate: deterministic ids for a seed */
    CHECK_INT(sh("%s generate --model %s/full --prompt-ids '84 104 101' --ids -n 12 --seed 5 > %s/g1.txt && "
                 "%s generate --model %s/full --prompt-ids '84 104 101' --ids -n 12 --seed 5 > %s/g2.txt && "
                 "cmp -s %s/g1.txt %s/g2.txt", braid, tmp, tmp, braid, tmp, tmp, tmp, tmp), 0);

    /* bad input: clear errors, exit 1 (usage: 2) */
    CHECK_INT(sh("%s score --model %s/full --tokens '1 2 300' 2>%s/err.txt", braid, tmp, tmp), 1);
    snprintf(path, sizeof path, "%s/err.txt", tmp);
    char *err;
    size_t errn;
    if (!br_read_file(path, &err, &errn)) {
        CHECK(strstr(err, "token id 300") != NULL);
        free(err);
    }
    CHECK_INT(sh("%s generate --model %s/full --prompt-ids \"$(seq -s ' ' 1 70)\" --ids -n 1 2>/dev/null", braid, tmp), 1);
    CHECK_INT(sh("%s eval --model %s/nonexistent --data %s/tok 2>/dev/null", braid, tmp, tmp), 1);
    CHECK_INT(sh("%s train --data %s/tok --mix gpl=1 --out %s/x 2>/dev/null", braid, tmp, tmp), 2);
    CHECK_INT(sh("%s train --config %s/cfg.json --data %s/tok --mix nodomain=1 --out %s/x --steps 1 2>/dev/null",
                 braid, tmp, tmp, tmp), 1);
    if (!getenv("KEEP")) sh("rm -rf '%s'", tmp);
    else printf("kept %s\n", tmp);
    return th_exit();
}
