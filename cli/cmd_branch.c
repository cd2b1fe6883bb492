/* braid branch: an expert is a copy of the seed trained further on one domain mix.  This is
 * `braid train --init SEED` with the branch's own output directory; every training flag is
 * passed through.  Branches share nothing but the read-only seed, so several can run at once:
 * as separate jobs, or as one MPI job with several --mix/--out pairs, where the world is split
 * into one data-parallel group per expert (docs/distributed.md).  One process with several
 * pairs trains the experts one after another. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "base/buf.h"
#include "base/comm.h"
#include "base/fileio.h"
#include "commands.h"

enum { MAX_EXPERTS = 64 };

static void usage(FILE *f)
{
    fprintf(f,
            "usage: braid branch --from SEED_DIR --data DIR --mix SPEC --out DIR [--mix SPEC --out DIR ...]\n"
            "                    [train options]\n"
            "       braid branch --from SEED_DIR --text PATH --out DIR [train options]\n\n"
            "Continues training a copy of the seed on one domain mix (e.g. code=0.9,general=0.1)\n"
            "and writes the expert to --out.  All other options are braid train's (steps, batch,\n"
            "seq, lr, warmup, seed, ...: see 'braid train --help').  Run one process per domain;\n"
            "branches run concurrently without sharing anything but the read-only seed.\n"
            "Several --mix/--out pairs (the i-th --mix goes with the i-th --out): under\n"
            "mpirun -np N (N a multiple of the experts) the ranks split into one data-parallel\n"
            "group per expert; in one process the experts are trained one after another.\n"
            "SEED_DIR may be a Hugging Face model folder: the expert is trained in F32 and written\n"
            "as a model folder again (config.json, model.safetensors in the seed's dtype unless\n"
            "--save-dtype says otherwise, the tokenizer files copied); --text trains it on plain\n"
            "text tokenised by the seed's own tokenizer.\n");
}

/* Expert e of n on this world: the group of ranks that trains it (world: one process, or
 * ranks split evenly, consecutive ranks together), the argv of its `braid train`. */
static int run_experts(int n, char **targv, const char **mixes, const char **outs, int ne)
{
    br_comm_t *world, *group = NULL;
    br_status s = br_comm_world(&world);
    if (s) return fail_status(s, "branch");
    int W = br_comm_size(world), rank = br_comm_rank(world);
    if (W > 1 && W % ne) {
        fprintf(stderr, "braid: error: branch: %d ranks cannot be split evenly over %d experts; start a multiple "
                        "of %d (mpirun -np %d)\n", W, ne, ne, ne * (W / ne > 0 ? W / ne : 1));
        return 2;
    }
    int first = 0, last = ne;
    if (W > 1) {
        first = rank / (W / ne), last = first + 1;
        s = br_comm_split(world, first, rank, &group);
        if (s) return fail_status(s, "branch");
    }
    int rc = 0;
    for (int e = first; e < last && !rc; e++) {
        int k = n;
        if (mixes[e]) targv[k++] = "--mix", targv[k++] = (char *)mixes[e]; /* none with --text */
        targv[k++] = "--out", targv[k++] = (char *)outs[e];
        targv[k] = NULL;
        if (ne > 1 && br_comm_rank(group ? group : world) == 0)
            fprintf(stderr, "braid: branch: expert %d of %d (%s) -> %s on %d rank(s)\n", e + 1, ne, mixes[e], outs[e],
                    br_comm_size(group ? group : world));
        rc = cmd_train_in(k, targv, group ? group : world);
    }
    br_comm_free(group);
    return rc;
}

/* The value of --NAME X or --NAME=X at argv[*i] (advancing *i), else NULL. */
static const char *flag_value(const char *name, int argc, char **argv, int *i)
{
    size_t k = strlen(name);
    const char *a = argv[*i];
    if (strncmp(a, name, k)) return NULL;
    if (a[k] == '=') return a + k + 1;
    if (!a[k] && *i + 1 < argc) return argv[++*i];
    return NULL;
}

/* A usage error (message on stderr) or 0 when the pairs are usable (with --text: one --out and
 * no --mix, mixes[0] set to NULL). */
static int check_pairs(const char *from, int nm, const char **mixes, const char **outs, int no, bool text)
{
    if (text) {
        if (nm || no != 1) {
            fprintf(stderr, "braid: error: branch: --text trains one expert: give one --out and no --mix\n");
            return 2;
        }
        mixes[0] = NULL;
    }
    if (nm > MAX_EXPERTS || no > MAX_EXPERTS) {
        fprintf(stderr, "braid: error: branch: at most %d experts in one run\n", MAX_EXPERTS);
        return 2;
    }
    if (!text && (nm < 1 || nm != no)) {
        usage(stderr);
        fprintf(stderr, "braid: error: branch: give one --out per --mix (%d --mix, %d --out)\n", nm, no);
        return 2;
    }
    for (int e = 0; e < no; e++) {
        if (!strcmp(outs[e], from)) {
            fprintf(stderr, "braid: error: branch: --out must differ from --from (the seed is shared)\n");
            return 2;
        }
        for (int f = 0; f < e; f++)
            if (!strcmp(outs[e], outs[f])) {
                fprintf(stderr, "braid: error: branch: two experts write to %s; give each its own --out\n", outs[e]);
                return 2;
            }
    }
    return 0;
}

int cmd_branch(int argc, char **argv)
{
    const char *from = NULL, *mixes[MAX_EXPERTS + 1], *outs[MAX_EXPERTS + 1], *v;
    int nm = 0, no = 0;
    bool text = false;
    char **targv = calloc((size_t)argc + 8, sizeof *targv);
    if (!targv) return fail_status(br_error(BR_ENOMEM, "out of memory"), "branch");
    int n = 0;
    targv[n++] = "train";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            free(targv);
            return 0;
        }
        if ((v = flag_value("--from", argc, argv, &i))) {
            from = v;
            continue;
        }
        if ((v = flag_value("--mix", argc, argv, &i))) {
            if (nm <= MAX_EXPERTS) mixes[nm] = v;
            nm++;
            continue;
        }
        if ((v = flag_value("--out", argc, argv, &i))) {
            if (no <= MAX_EXPERTS) outs[no] = v;
            no++;
            continue;
        }
        text |= !strcmp(a, "--text") || !strncmp(a, "--text=", 7);
        if (!strcmp(a, "--init") || !strncmp(a, "--init=", 7) || !strcmp(a, "--config") ||
            !strncmp(a, "--config=", 9) || !strcmp(a, "--resume")) {
            fprintf(stderr, "braid: error: branch: %s is not allowed (the branch starts from --from)\n", a);
            free(targv);
            return 2;
        }
        targv[n++] = argv[i];
    }
    if (!from || !*from) {
        usage(stderr);
        fprintf(stderr, "braid: error: branch: --from SEED_DIR is required\n");
        free(targv);
        return 2;
    }
    br_buf_t cfg = BR_BUF_INIT;
    br_status cs = br_buf_path(&cfg, from, "config.json");
    bool is_ckpt = !cs && br_file_exists(br_buf_str(&cfg));
    br_buf_free(&cfg);
    if (!is_ckpt) {
        if (cs) fail_status(cs, "branch");
        else fprintf(stderr, "braid: error: branch: %s is not a checkpoint (no config.json)\n", from);
        free(targv);
        return 1;
    }
    int rc = check_pairs(from, nm, mixes, outs, no, text);
    if (rc) {
        free(targv);
        return rc;
    }
    targv[n++] = "--init";
    targv[n++] = (char *)from;
    fflush(stdout);
    rc = run_experts(n, targv, mixes, outs, no);
    free(targv);
    return rc;
}
