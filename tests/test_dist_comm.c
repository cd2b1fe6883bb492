/* base/comm.h: one process (not started by mpirun) is a world of one where the collectives
 * copy; then this binary runs itself under mpirun -np 3 (when installed) and every rank checks
 * the collectives over uneven parts (a part of 0 included), a split into groups, the time
 * accounting, and LoRA-only data-parallel training (lm/train.h: the adapter's gradients
 * all-reduced) against one process with the whole batch. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/comm.h"
#include "base/threads.h"
#define TH_WANT_RUN
#include "harness.h"
#include "lm/train.h"
#include "serve/adapters.h"
#include "shard_fixture.h"

static void check_single(void)
{
    br_comm_t *w = NULL;
    CHECK_OK(br_comm_world(&w));
    CHECK_INT(br_comm_rank(w), 0);
    CHECK_INT(br_comm_size(w), 1);
    CHECK_INT(br_comm_size(NULL), 1);
    float in[5] = {1, 2, 3, 4, 5}, out[5] = {0};
    size_t counts[1] = {5};
    CHECK_OK(br_comm_reduce_scatter_sum(w, in, out, counts));
    CHECK(!memcmp(in, out, sizeof in));
    CHECK_OK(br_comm_allreduce_sum(w, in, 5));
    CHECK(in[4] == 5);
    memset(out, 0, sizeof out);
    CHECK_OK(br_comm_gather(w, in, out, counts, 0));
    CHECK(out[2] == 3);
    br_comm_t *g = NULL;
    CHECK_OK(br_comm_split(w, 3, 0, &g));
    CHECK_INT(br_comm_size(g), 1);
    br_comm_free(g);
    br_comm_free(w); /* the world: a no-op */
    CHECK_INT(br_comm_size(w), 1);
}

/* part r of n floats over N ranks: r + 1 floats for r < N-1, the last rank none */
static void check_collectives(br_comm_t *w)
{
    int R = br_comm_rank(w), N = br_comm_size(w);
    size_t counts[16], total = 0;
    for (int r = 0; r < N; r++) total += counts[r] = r < N - 1 ? (size_t)r + 1 : 0;
    float *buf = calloc(total + 1, sizeof *buf), *mine = calloc(total + 1, sizeof *mine);
    for (size_t i = 0; i < total; i++) buf[i] = (float)(R + 1) * (float)(i + 1);
    CHECK_OK(br_comm_reduce_scatter_sum(w, buf, mine, counts));
    size_t off = 0;
    for (int r = 0; r < R; r++) off += counts[r];
    float ranks_sum = (float)(N * (N + 1) / 2);
    for (size_t i = 0; i < counts[R]; i++)
        CHECK_MSG(mine[i] == ranks_sum * (float)(off + i + 1), "rank %d: reduce-scatter element %zu = %g", R, i, mine[i]);
    /* all-gather: each rank writes -(its index) into its part, then holds everyone's */
    for (size_t i = 0; i < counts[R]; i++) buf[off + i] = -(float)(off + i);
    CHECK_OK(br_comm_allgather(w, buf, counts));
    int bad = 0;
    for (size_t i = 0; i < total; i++) bad += buf[i] != -(float)i;
    CHECK_MSG(bad == 0, "rank %d: %d elements wrong after the all-gather", R, bad);
    float *all = calloc(total + 1, sizeof *all);
    for (size_t i = 0; i < counts[R]; i++) mine[i] = (float)(100 * R) + (float)i;
    CHECK_OK(br_comm_gather(w, mine, all, counts, 0));
    if (R == 0)
        for (int r = 0, k = 0; r < N; r++)
            for (size_t i = 0; i < counts[r]; i++, k++) CHECK(all[k] == (float)(100 * r) + (float)i);
    double d[2] = {R, 1};
    CHECK_OK(br_comm_allreduce_sum_f64(w, d, 2));
    CHECK(d[0] == N * (N - 1) / 2.0 && d[1] == N);
    CHECK(br_comm_seconds(w) > 0);
    /* groups: even and odd ranks */
    br_comm_t *g = NULL;
    CHECK_OK(br_comm_split(w, R % 2, R, &g));
    CHECK_INT(br_comm_size(g), R % 2 ? N / 2 : (N + 1) / 2);
    CHECK_INT(br_comm_rank(g), R / 2);
    float one = 1;
    CHECK_OK(br_comm_allreduce_sum(g, &one, 1));
    CHECK(one == (float)br_comm_size(g));
    CHECK_OK(br_comm_barrier(g));
    br_comm_free(g);
    free(buf);
    free(mine);
    free(all);
}

/* LoRA-only: N ranks x 2 windows vs this process alone with 2N windows (comm NULL). */
static void check_lora(br_comm_t *w, const char *data)
{
    int N = br_comm_size(w);
    br_set_threads(1);
    br_model_config_t c;
    br_config_defaults(&c);
    c.vocab_size = 256, c.hidden_size = 32, c.intermediate_size = 64, c.num_hidden_layers = 2;
    c.num_attention_heads = 4, c.num_key_value_heads = 2, c.max_position_embeddings = 64, c.rms_norm_eps = 1e-5f;
    br_model_t *m = NULL;
    CHECK_OK(br_model_create(&m, &c, false));
    if (!m) return;
    br_model_init_random(m, 7);
    unsigned targets = 0;
    CHECK_OK(br_lora_parse_targets("q_proj,v_proj", &targets));
    br_lora_shapes_t shapes = br_lora_shapes_from_config(&m->cfg);
    double val[2][3];
    for (int k = 0; k < 2; k++) {
        br_lora_adapter_t *a = NULL;
        CHECK_OK(br_lora_create(&a, &shapes, 4, 8, targets, false, 3));
        if (!a) break;
        CHECK_OK(br_lora_alloc_grads(a));
        br_trainer_opts_t o;
        br_trainer_defaults(&o);
        o.data = data, o.mix = "gpl=1,mpl=1", o.steps = 4, o.seq = 32, o.lr = 1e-2f, o.min_lr = 1e-3f, o.warmup = 1;
        o.batch = k ? 2 : 2 * (size_t)N, o.comm = k ? w : NULL;
        CHECK_OK(br_trainer_lora(m, a, &o, 1, val[k]));
        br_lora_free(a);
    }
    CHECK_MSG(fabs(val[0][2] - val[1][2]) <= 1e-4 * fabs(val[0][2]) && val[0][2] != val[0][1],
              "rank %d: LoRA after training %.7f (1 process) vs %.7f (%d ranks); before %.7f", br_comm_rank(w),
              val[0][2], val[1][2], N, val[0][1]);
    br_model_free(m);
}

int main(int argc, char **argv)
{
    (void)argc;
    const char *child = getenv("BR_TEST_COMM_DATA");
    if (child) { /* one of the ranks */
        br_comm_t *w = NULL;
        CHECK_OK(br_comm_world(&w));
        if (w && br_comm_size(w) > 1) {
            check_collectives(w);
            check_lora(w, child);
        } else {
            CHECK_MSG(false, "started without mpirun or without MPI: world of %d", br_comm_size(w));
        }
        return th_exit();
    }
    check_single();
    char tmp[64] = "/tmp/braid_comm_XXXXXX", out[8192];
    if (th_run(out, sizeof out, "command -v mpirun") != 0) {
        SKIP("mpirun not installed (make deps installs openmpi-bin): multi-process collectives not run");
    } else if (!br_comm_have_mpi()) {
        SKIP("braid built without MPI (libopenmpi-dev absent at build time): multi-process collectives not run");
    } else if (!mkdtemp(tmp) || !write_license_domain(tmp, "gpl", "GPL-3") ||
               !write_license_domain(tmp, "mpl", "MPL-1.1")) {
        SKIP("no temporary folder or /usr/share/common-licenses: multi-process collectives not run");
    } else {
        int rc = th_run(out, sizeof out,
                        "BR_TEST_COMM_DATA=%s/tok timeout 120 mpirun --oversubscribe --allow-run-as-root --bind-to none "
                        "--mca btl self,vader --mca btl_vader_single_copy_mechanism none -x ASAN_OPTIONS=detect_leaks=0 "
                        "-np 3 %s",
                        tmp, argv[0]);
        CHECK_MSG(rc == 0 && strstr(out, "0 failed"), "3 ranks: exit %d:\n%s", rc, out);
        char cmd[128];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
        if (th_failed) fprintf(stderr, "kept %s for inspection\n", tmp);
        else if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmp);
    }
    return th_exit();
}
