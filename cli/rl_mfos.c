/* braid rl mfos (being implemented: issue 7). */
#include <stdio.h>
#include "rl_cmds.h"

int rl_mfos(int argc, char **argv)
{
    (void)argc; (void)argv;
    fprintf(stderr, "braid: error: rl mfos is not implemented yet (issue 7)\n");
    return 1;
}
