/* SHA-256 (FIPS 180-4), for manifests of downloaded and generated files. */
#ifndef BR_BASE_SHA256_H
#define BR_BASE_SHA256_H
#include <stddef.h>
#include <stdint.h>
#include "base/status.h"

typedef struct {
    uint32_t h[8];
    uint64_t len;
    unsigned char buf[64];
    size_t nbuf;
} br_sha256_t;
void br_sha256_init(br_sha256_t *c);
void br_sha256_update(br_sha256_t *c, const void *data, size_t n);
/* Writes 64 lowercase hex digits and a NUL to hex[65]. */
void br_sha256_final_hex(br_sha256_t *c, char hex[65]);
/* Hash of a whole file. */
br_status br_sha256_file(const char *path, char hex[65]);
#endif
