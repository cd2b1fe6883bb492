/* Data-parallel training through the braid program ($BRAID) under Open MPI's mpirun, on
 * byte-level shards of two licence texts (docs/distributed.md):
 *   - equivalence: N ranks x batch B follow 1 process x batch N*B (every step's loss and the
 *     final validation loss, to float summation tolerance) for N = 2 and 4, with gradient
 *     buckets small enough that the model spans several;
 *   - checkpoints: one run folder written by rank 0; --resume with the same N reproduces the
 *     uninterrupted N-rank run exactly, and with another N (re-sharding) follows it;
 *   - a rank killed (SIGKILL) mid-run ends the whole job with a message (no hang), and
 *     --resume continues from the last checkpoint;
 *   - braid branch with two experts in one job: one group per expert, each expert's folder as
 *     the same experts trained one after another by one process;
 *   - MoE finetuning (train --init of a BTX mixture) on 2 ranks follows 1 process;
 *   - --mpi without mpirun says what it lacks.
 * Skipped (counted) when mpirun or the program is absent. */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/fileio.h"
#include "base/safetensors.h"
#define TH_WANT_RUN
#include "harness.h"
#include "shard_fixture.h"
#include "shell_fixture.h"

static char tmp[64];
static const char *braid;
static char flags[1024];
/* vader: shared memory between the ranks of this machine; no single-copy (CMA is often
 * refused in containers); every rank gets one thread */
static const char *mpirun = "timeout 120 mpirun --oversubscribe --allow-run-as-root --bind-to none "
                            "--mca btl self,vader --mca btl_vader_single_copy_mechanism none -x BRAID_THREADS=1 "
                            "-x ASAN_OPTIONS=detect_leaks=0";

/* Step losses (loss[step], 1-based) and the last validation loss of DIR/train_log.jsonl;
 * returns the number of step records. */
static int read_log(const char *dir, double *loss, int max, double *val)
{
    char path[600], *text;
    size_t n;
    snprintf(path, sizeof path, "%s/%s/train_log.jsonl", tmp, dir);
    if (br_read_file(path, &text, &n)) return 0;
    int count = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        json_t *j = json_loads(line, 0, NULL);
        json_t *st = json_object_get(j, "step"), *l = json_object_get(j, "loss"), *v = json_object_get(j, "val_loss");
        if (st && l && json_integer_value(st) >= 1 && json_integer_value(st) <= max) {
            loss[json_integer_value(st)] = json_number_value(l);
            count++;
        }
        if (v && val) *val = json_number_value(v);
        json_decref(j);
    }
    free(text);
    return count;
}

/* Steps 1..n of two run folders agree to rel (0: exactly), and so do their validation losses. */
static void check_same(const char *what, const char *a, const char *b, int n, double rel)
{
    double la[64] = {0}, lb[64] = {0}, va = -1, vb = -2;
    int na = read_log(a, la, n, &va), nb = read_log(b, lb, n, &vb);
    CHECK_MSG(na == n && nb == n, "%s: %d and %d of %d step records", what, na, nb, n);
    int worst = 0;
    double dmax = 0;
    for (int i = 1; i <= n; i++) {
        double d = fabs(la[i] - lb[i]) / fmax(fabs(la[i]), 1e-3);
        if (d > dmax) dmax = d, worst = i;
    }
    CHECK_MSG(rel > 0 ? dmax <= rel : dmax == 0, "%s: step %d loss %.8f vs %.8f (relative %.2e, allowed %.0e)",
              what, worst, la[worst], lb[worst], dmax, rel);
    CHECK_MSG(rel > 0 ? fabs(va - vb) <= rel * fabs(va) : va == vb, "%s: validation loss %.8f vs %.8f", what, va, vb);
}

static bool exists(const char *dir, const char *file)
{
    char path[600];
    snprintf(path, sizeof path, "%s/%s/%s", tmp, dir, file);
    return br_file_exists(path);
}

static bool file_has(const char *name, const char *needle)
{
    char path[600], *text = NULL;
    size_t n;
    snprintf(path, sizeof path, "%s/%s", tmp, name);
    bool yes = !br_read_file(path, &text, &n) && strstr(text, needle);
    free(text);
    return yes;
}

/* N ranks x B against 1 x N*B, and the resumes. */
static void check_equivalence_and_resume(void)
{
    CHECK_INT(sh("%s train --config %s/cfg.json %s --batch 4 --out %s/ref 2>/dev/null", braid, tmp, flags, tmp), 0);
    CHECK_INT(sh("%s -np 2 %s train --config %s/cfg.json %s --batch 2 --bucket-mb 0.01 --mpi --out %s/dp2 "
                 "2>%s/dp2.err", mpirun, braid, tmp, flags, tmp, tmp), 0);
    CHECK_MSG(file_has("dp2.err", "data-parallel on 2 ranks"), "the 2-rank run does not say it is data-parallel");
    check_same("2 ranks x 2 vs 1 x 4", "ref", "dp2", 6, 2e-5);
    CHECK_INT(sh("%s -np 4 %s train --config %s/cfg.json %s --batch 1 --bucket-mb 0.01 --out %s/dp4 2>/dev/null",
                 mpirun, braid, tmp, flags, tmp), 0);
    check_same("4 ranks x 1 vs 1 x 4", "ref", "dp4", 6, 2e-5);
    CHECK(exists("dp4", "config.json") && exists("dp4", "model.safetensors") && exists("dp4", "optimizer.safetensors"));

    /* same N: exactly the uninterrupted 2-rank run */
    CHECK_INT(sh("%s -np 2 %s train --config %s/cfg.json %s --batch 2 --bucket-mb 0.01 --stop-at 3 --out %s/same "
                 "2>/dev/null", mpirun, braid, tmp, flags, tmp), 0);
    CHECK_INT(sh("%s -np 2 %s train --resume %s --batch 2 --bucket-mb 0.01 --out %s/same 2>/dev/null", mpirun, braid,
                 flags, tmp), 0);
    check_same("2 ranks resumed on 2 vs uninterrupted", "dp2", "same", 6, 0);
    /* another N with the same global batch: the optimizer state is re-sharded (other bucket
     * sizes too), the run goes on as one process would, without a warning */
    CHECK_INT(sh("%s -np 2 %s train --config %s/cfg.json %s --batch 2 --stop-at 3 --out %s/reshard 2>/dev/null",
                 mpirun, braid, tmp, flags, tmp), 0);
    CHECK_INT(sh("%s -np 4 %s train --resume %s --batch 1 --bucket-mb 0.005 --out %s/reshard 2>%s/reshard.err",
                 mpirun, braid, flags, tmp, tmp), 0);
    CHECK_MSG(!file_has("reshard.err", "will differ"), "resuming 2 ranks x 2 on 4 x 1 warns about the batch");
    check_same("2 ranks resumed on 4 vs 1 process", "ref", "reshard", 6, 2e-5);
    /* one process resumes a data-parallel run folder too */
    CHECK_INT(sh("%s -np 2 %s train --config %s/cfg.json %s --batch 2 --stop-at 3 --out %s/to1 2>/dev/null", mpirun,
                 braid, tmp, flags, tmp), 0);
    CHECK_INT(sh("%s train --resume %s --batch 4 --out %s/to1 2>/dev/null", braid, flags, tmp), 0);
    check_same("2 ranks resumed on 1 vs 1 process", "ref", "to1", 6, 2e-5);
}

/* Rank 1 is killed after step 3 (checkpoints every 2 steps): the job ends, not hangs, with
 * mpirun's report; the folder resumes from step 2 and finishes as the reference. */
static void check_rank_failure(void)
{
    char f[1200];
    snprintf(f, sizeof f, "%s --ckpt-interval 2", flags);
    int rc = sh("BRAID_TEST_KILL_RANK=1 BRAID_TEST_KILL_STEP=3 %s -np 2 %s train --config %s/cfg.json %s --batch 2 "
                "--out %s/killed >%s/killed.err 2>&1", mpirun, braid, tmp, f, tmp, tmp);
    CHECK_MSG(rc != 0 && rc != 124, "a killed rank: exit %d (124: the job hung until the timeout)", rc);
    CHECK_MSG(file_has("killed.err", "signal 9") || file_has("killed.err", "Killed"),
              "mpirun does not say that a rank was killed");
    CHECK(exists("killed", "optimizer.safetensors"));
    double loss[64] = {0};
    CHECK_MSG(read_log("killed", loss, 64, NULL) >= 2, "no step was logged before the kill");
    CHECK_INT(sh("%s -np 2 %s train --resume %s --batch 2 --out %s/killed 2>%s/killed-resume.err", mpirun, braid, f,
                 tmp, tmp), 0);
    CHECK_MSG(file_has("killed-resume.err", "(resumed)"), "the run did not resume");
    check_same("killed at step 3 and resumed vs 1 process", "ref", "killed", 6, 2e-5);
}

/* Two experts in one 2-rank job (a group of one rank each) land exactly as one process
 * training them one after another; 4 ranks (groups of 2) follow them. */
static void check_branch_groups(void)
{
    const char *bflags = "--data %s/tok --steps 3 --batch 2 --seq 32 --lr 1e-3 --warmup 1 --eval-interval 0 "
                         "--eval-batches 1 --ckpt-interval 0 --seed 3";
    char bf[1024];
    snprintf(bf, sizeof bf, bflags, tmp);
    const char *pairs = "--mix gpl=1 --out %s/%s-gpl --mix mpl=1 --out %s/%s-mpl";
    char p1[600], p2[600], p4[600];
    snprintf(p1, sizeof p1, pairs, tmp, "seq", tmp, "seq");
    snprintf(p2, sizeof p2, pairs, tmp, "g2", tmp, "g2");
    snprintf(p4, sizeof p4, pairs, tmp, "g4", tmp, "g4");
    CHECK_INT(sh("%s branch --from %s/ref %s %s 2>/dev/null", braid, tmp, bf, p1), 0);
    CHECK_INT(sh("%s -np 2 %s branch --from %s/ref %s %s 2>/dev/null", mpirun, braid, tmp, bf, p2), 0);
    check_same("expert gpl: group of 1 vs one process", "seq-gpl", "g2-gpl", 3, 0);
    check_same("expert mpl: group of 1 vs one process", "seq-mpl", "g2-mpl", 3, 0);
    CHECK(exists("g2-gpl", "model.safetensors") && exists("g2-mpl", "model.safetensors"));
    /* groups of 2 ranks x 1 window vs one process x 2 windows */
    char bf4[1100];
    snprintf(bf4, sizeof bf4, "%s", bf);
    char *b = strstr(bf4, "--batch 2");
    if (b) b[8] = '1';
    CHECK_INT(sh("%s -np 4 %s branch --from %s/ref %s %s 2>/dev/null", mpirun, braid, tmp, bf4, p4), 0);
    check_same("expert gpl: group of 2 x 1 vs one process x 2", "seq-gpl", "g4-gpl", 3, 2e-5);
    check_same("expert mpl: group of 2 x 1 vs one process x 2", "seq-mpl", "g4-mpl", 3, 2e-5);
    int rc = sh("%s -np 3 %s branch --from %s/ref %s %s >%s/odd.err 2>&1", mpirun, braid, tmp, bf, p4, tmp);
    CHECK_MSG(rc != 0 && rc != 124 && file_has("odd.err", "split evenly"), "3 ranks for 2 experts: exit %d", rc);
}

/* MoE finetuning is the same trainer: a BTX mixture of the two experts finetuned on 2 ranks x
 * 2 windows follows 1 process x 4.  Top-2 of 2 experts, so that the load-balancing loss (a
 * product of per-batch statistics, computed on each rank's own tokens as Megatron does) is
 * the same function of the batch on 1 and on 2 ranks (docs/distributed.md). */
static void check_moe_finetune(void)
{
    CHECK_INT(sh("%s upcycle --method btx --base %s/ref --experts %s/seq-gpl,%s/seq-mpl --out %s/moe 2>/dev/null",
                 braid, tmp, tmp, tmp, tmp), 0);
    CHECK_INT(sh("%s train --init %s/moe %s --batch 4 --out %s/moe-1 2>/dev/null", braid, tmp, flags, tmp), 0);
    CHECK_INT(sh("%s -np 2 %s train --init %s/moe %s --batch 2 --bucket-mb 0.05 --out %s/moe-2 2>/dev/null", mpirun,
                 braid, tmp, flags, tmp), 0);
    check_same("MoE finetune: 2 ranks x 2 vs 1 x 4", "moe-1", "moe-2", 6, 2e-5);
}

/* lora-train under mpirun: 2 ranks x 2 windows write (rank 0 alone) the adapter that 1 process
 * x 4 writes, to float summation tolerance; the log is written once. */
static void check_lora(void)
{
    const char *lf = "--data %s/tok --mix gpl=1 --steps 4 --batch %d --seq 32 --rank 4 --lr 3e-3 --warmup 1 "
                     "--val-batches 1 --seed 3";
    char f1[600], f2[600];
    snprintf(f1, sizeof f1, lf, tmp, 4);
    snprintf(f2, sizeof f2, lf, tmp, 2);
    CHECK_INT(sh("%s lora-train --base %s/ref %s --out %s/lora-1 >/dev/null 2>&1", braid, tmp, f1, tmp), 0);
    CHECK_INT(sh("%s -np 2 %s lora-train --base %s/ref %s --out %s/lora-2 >/dev/null 2>&1", mpirun, braid, tmp, f2, tmp),
              0);
    char p1[600], p2[600];
    snprintf(p1, sizeof p1, "%s/lora-1/adapter_model.safetensors", tmp);
    snprintf(p2, sizeof p2, "%s/lora-2/adapter_model.safetensors", tmp);
    br_safetensors_t *a = NULL, *b = NULL;
    CHECK_OK(br_st_open(&a, p1));
    CHECK_OK(br_st_open(&b, p2));
    if (a && b) {
        CHECK_INT(br_st_count(a), br_st_count(b));
        double worst = 0;
        size_t n = br_st_count(a) < br_st_count(b) ? br_st_count(a) : br_st_count(b);
        for (size_t i = 0; i < n; i++) {
            const br_st_tensor_t *ta = br_st_tensor(a, i), *tb = br_st_find(b, ta->name);
            CHECK_MSG(tb && tb->numel == ta->numel, "tensor %s missing or of another size", ta->name);
            if (!tb || tb->numel != ta->numel) continue;
            float *x = malloc(ta->numel * sizeof *x), *y = malloc(ta->numel * sizeof *y);
            if (x && y && !br_st_read_f32(ta, x, ta->numel) && !br_st_read_f32(tb, y, tb->numel))
                for (size_t k = 0; k < ta->numel; k++)
                    worst = fmax(worst, fabs((double)x[k] - y[k]) / (1e-3 + fabs((double)x[k])));
            free(x);
            free(y);
        }
        CHECK_MSG(worst < 1e-3, "lora-train 2 ranks x 2 vs 1 x 4: adapter rel diff %g", worst);
    }
    br_st_close(a);
    br_st_close(b);
    double l1[9], l2[9], v1 = 0, v2 = 0;
    int n1 = read_log("lora-1", l1, 8, &v1), n2 = read_log("lora-2", l2, 8, &v2);
    CHECK_MSG(n1 == 4 && n2 == 4, "lora logs: %d and %d steps (want 4 each, written once)", n1, n2);
}

int main(void)
{
    braid = getenv("BRAID");
    if (!braid || access(braid, X_OK)) {
        SKIP("BRAID not set (run through make test)");
        return th_exit();
    }
    snprintf(tmp, sizeof tmp, "/tmp/braid_dist_XXXXXX");
    if (!mkdtemp(tmp)) {
        SKIP("mkdtemp failed");
        return th_exit();
    }
    if (!write_license_domain(tmp, "gpl", "GPL-3") || !write_license_domain(tmp, "mpl", "MPL-1.1")) {
        sh("rm -rf '%s'", tmp);
        SKIP("/usr/share/common-licenses not available");
        return th_exit();
    }
    char path[512];
    snprintf(path, sizeof path, "%s/cfg.json", tmp);
    const char *cfg = "{\"vocab_size\": 256, \"hidden_size\": 32, \"intermediate_size\": 64, "
                      "\"num_hidden_layers\": 2, \"num_attention_heads\": 4, \"num_key_value_heads\": 2, "
                      "\"max_position_embeddings\": 64, \"rms_norm_eps\": 1e-5}";
    br_write_file_atomic(path, cfg, strlen(cfg));
    snprintf(flags, sizeof flags,
             "--data %s/tok --mix gpl=2,mpl=1 --steps 6 --seq 32 --accum 2 --lr 3e-3 --warmup 2 --seed 5 "
             "--eval-interval 0 --eval-batches 2 --ckpt-interval 3 --threads 1",
             tmp);

    /* one process asking for data parallelism is told how to get it */
    char out[4096];
    int rc = th_run(out, sizeof out, "%s train --config %s/cfg.json %s --batch 4 --mpi --out %s/nompi", braid, tmp,
                    flags, tmp);
    CHECK_MSG(rc != 0 && (strstr(out, "mpirun -np") || strstr(out, "without MPI")), "--mpi alone: exit %d: %s", rc, out);

    if (sh("command -v mpirun >/dev/null 2>&1") != 0) {
        SKIP("mpirun not installed (make deps installs openmpi-bin): data-parallel checks not run");
    } else {
        check_equivalence_and_resume();
        check_rank_failure();
        check_branch_groups();
        check_moe_finetune();
        check_lora();
    }
    if (th_failed == 0 && !getenv("KEEP")) sh("rm -rf '%s'", tmp);
    else fprintf(stderr, "kept %s for inspection\n", tmp);
    return th_exit();
}
