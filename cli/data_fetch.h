/* braid data fetch (cli/data_fetch.c). */
#ifndef BR_CLI_DATA_FETCH_H
#define BR_CLI_DATA_FETCH_H
int data_fetch(int argc, char **argv);
#endif
