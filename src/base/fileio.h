/* Files: whole-file reads, read-only mappings, atomic writes (temp + fsync + rename + fsync of
 * the directory: a crash leaves either the old file or the new one, never a torn one). */
#ifndef BR_BASE_FILEIO_H
#define BR_BASE_FILEIO_H
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include "base/status.h"

/* Reads the whole file; *data is NUL-terminated (not counted in *size). Free with free(). */
br_status br_read_file(const char *path, char **data, size_t *size);
/* Flags of br_read_file_flags.  BR_OPEN_NOFOLLOW: the last component of the path must not be a
 * symbolic link (O_NOFOLLOW; refused with BR_EINVAL), and the file must be a regular file: for
 * files an untrusted request names, so that no link swapped in after a check is followed. */
enum { BR_OPEN_NOFOLLOW = 1 };
br_status br_read_file_flags(const char *path, int flags, char **data, size_t *size);

/* Read-only mapping of a whole file (an empty file maps to data=NULL, size=0). */
typedef struct {
    const unsigned char *data;
    size_t size;
} br_mmap_t;
br_status br_mmap_open(br_mmap_t *m, const char *path);
void br_mmap_close(br_mmap_t *m);

/* Streaming atomic write: br_atomic_open gives a FILE* to a temp file beside `path`;
 * br_atomic_commit flushes, fsyncs, renames over `path` and fsyncs the directory;
 * br_atomic_abort removes the temp file.  Exactly one of commit/abort must be called after a
 * successful open; both free the names (a failed open leaves nothing to free). */
typedef struct {
    FILE *f;
    char *path; /* the target, any length (heap) */
    char *tmp;  /* path ".tmp.XXXXXX" as mkstemp filled it (heap) */
} br_atomic_file_t;
br_status br_atomic_open(br_atomic_file_t *af, const char *path);
br_status br_atomic_commit(br_atomic_file_t *af);
void br_atomic_abort(br_atomic_file_t *af);

/* One-shot atomic write of a buffer. */
br_status br_write_file_atomic(const char *path, const void *data, size_t size);

/* mkdir -p. */
br_status br_mkdir_p(const char *path);
bool br_file_exists(const char *path);
bool br_dir_exists(const char *path);
/* br_buf_path (base/buf.h) into fixed storage: buf = dir "/" name, BR_ERANGE (buf left "")
 * when it does not fit.  New code should prefer a growable br_buf_t. */
br_status br_path_join(char *buf, size_t cap, const char *dir, const char *name);
#endif
