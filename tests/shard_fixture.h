/* Byte-level token shards of real text for the training tests (test_lm_cli.c,
 * test_lm_trainer.c): one domain per licence text every Debian system ships. */
#ifndef BR_TEST_SHARD_FIXTURE_H
#define BR_TEST_SHARD_FIXTURE_H
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "base/fileio.h"
#include "text/data.h"

/* ROOT/tok/NAME/{train,val}.bin: the bytes of /usr/share/common-licenses/LICENSE as token ids
 * (vocabulary 256), the last 10% as val.  false when the text is missing or short. */
static inline bool write_license_domain(const char *root, const char *name, const char *license)
{
    char path[512], *text;
    size_t len;
    snprintf(path, sizeof path, "/usr/share/common-licenses/%s", license);
    if (br_read_file(path, &text, &len) || len < 20000) return false;
    uint32_t *ids = malloc(len * sizeof *ids);
    if (!ids) {
        free(text);
        return false;
    }
    for (size_t i = 0; i < len; i++) ids[i] = (unsigned char)text[i];
    size_t cut = len - len / 10;
    snprintf(path, sizeof path, "%s/tok/%s", root, name);
    br_mkdir_p(path);
    snprintf(path, sizeof path, "%s/tok/%s/train.bin", root, name);
    bool ok = br_shard_write(path, ids, cut, 256, cut) == BR_OK;
    snprintf(path, sizeof path, "%s/tok/%s/val.bin", root, name);
    ok = ok && br_shard_write(path, ids + cut, len - cut, 256, len - cut) == BR_OK;
    free(ids);
    free(text);
    return ok;
}
#endif
