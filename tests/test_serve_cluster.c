/* Serving replicas behind HAProxy (issue 18, docs/serve.md "Replicas"): runs
 * tests/cluster/test_cluster.py, which starts three `braid serve` replicas with
 * scripts/serve_cluster.sh on 127.0.0.1 and checks adapter affinity, tenants and keys through
 * the proxy, a replica's SIGTERM drain, a replica killed under load and restarted, and SIGTERM
 * of the whole cluster.  The script prints its own "N passed, N failed[, N skipped]" line
 * (skipped when haproxy is not installed); run from the repository root (scripts/run_tests.sh
 * does), with BRAID naming the binary (default ./braid). */
#include <stdio.h>
#include <unistd.h>

int main(void)
{
    char *const argv[] = {"python3", "tests/cluster/test_cluster.py", NULL};
    fflush(stdout);
    execvp("python3", argv);
    perror("test_serve_cluster: cannot run python3 tests/cluster/test_cluster.py");
    printf("0 passed, 1 failed\n");
    return 1;
}
