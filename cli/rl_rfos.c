/* braid rl rfos (being implemented: issue 7). */
#include <stdio.h>
#include "rl_cmds.h"

int rl_rfos(int argc, char **argv)
{
    (void)argc; (void)argv;
    fprintf(stderr, "braid: error: rl rfos is not implemented yet (issue 7)\n");
    return 1;
}
