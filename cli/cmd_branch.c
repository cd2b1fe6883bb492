/* braid branch: an expert is a copy of the seed trained further on one domain mix.  This is
 * `braid train --init SEED` with the branch's own output directory, run as its own process
 * (exec of this same program); every training flag is passed through.  Branches share nothing
 * but the read-only seed, so several can run at once. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "args.h"
#include "base/buf.h"
#include "base/fileio.h"
#include "commands.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: braid branch --from SEED_DIR --data DIR --mix SPEC --out DIR [train options]\n\n"
            "Continues training a copy of the seed on one domain mix (e.g. code=0.9,general=0.1)\n"
            "and writes the expert to --out.  All other options are braid train's (steps, batch,\n"
            "seq, lr, warmup, seed, ...: see 'braid train --help').  Run one process per domain;\n"
            "branches run concurrently without sharing anything but the read-only seed.\n");
}

int cmd_branch(int argc, char **argv)
{
    const char *from = NULL, *out = NULL;
    char **targv = calloc((size_t)argc + 3, sizeof *targv);
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
        if (!strcmp(a, "--from") || !strncmp(a, "--from=", 7)) {
            if (a[6] == '=') from = a + 7;
            else if (i + 1 < argc) from = argv[++i];
            continue;
        }
        if (!strcmp(a, "--init") || !strncmp(a, "--init=", 7) || !strcmp(a, "--config") ||
            !strncmp(a, "--config=", 9) || !strcmp(a, "--resume")) {
            fprintf(stderr, "braid: error: branch: %s is not allowed (the branch starts from --from)\n", a);
            free(targv);
            return 2;
        }
        if (!strcmp(a, "--out") && i + 1 < argc) out = argv[i + 1];
        else if (!strncmp(a, "--out=", 6)) out = a + 6;
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
    if (out && !strcmp(out, from)) {
        fprintf(stderr, "braid: error: branch: --out must differ from --from (the seed is shared)\n");
        free(targv);
        return 2;
    }
    targv[n++] = "--init";
    targv[n++] = (char *)from;
    /* argv of `braid train ...`: the program, then the command */
    char **full = calloc((size_t)n + 2, sizeof *full);
    if (!full) {
        free(targv);
        return fail_status(br_error(BR_ENOMEM, "out of memory"), "branch");
    }
    full[0] = "braid";
    for (int i = 0; i < n; i++) full[i + 1] = targv[i];
    fflush(stdout);
    fflush(stderr);
    execv("/proc/self/exe", full);
    fprintf(stderr, "braid: error: branch: cannot start 'braid train': %s\n", strerror(errno));
    free(full);
    free(targv);
    return 1;
}
