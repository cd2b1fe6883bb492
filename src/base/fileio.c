#include "base/fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/buf.h"

br_status br_read_file(const char *path, char **data, size_t *size) { return br_read_file_flags(path, 0, data, size); }

br_status br_read_file_flags(const char *path, int flags, char **data, size_t *size)
{
    *data = NULL;
    *size = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC | (flags & BR_OPEN_NOFOLLOW ? O_NOFOLLOW : 0));
    if (fd < 0 && errno == ELOOP && (flags & BR_OPEN_NOFOLLOW))
        return br_error(BR_EINVAL, "%s: a symbolic link (not followed here)", path);
    if (fd < 0) return br_error(errno == ENOENT ? BR_ENOTFOUND : BR_EIO, "%s: %s", path, strerror(errno));
    struct stat sb;
    if ((flags & BR_OPEN_NOFOLLOW) && (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode))) {
        close(fd);
        return br_error(BR_EINVAL, "%s: not a regular file", path);
    }
    FILE *f = fdopen(fd, "rb");
    if (!f) {
        close(fd);
        return br_error(BR_EIO, "%s: %s", path, strerror(errno));
    }
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap + 1);
    if (!buf) {
        fclose(f);
        return br_error(BR_ENOMEM, "%s: out of memory", path);
    }
    for (;;) {
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (n < cap) break;
        char *nb = cap > SIZE_MAX / 4 ? NULL : realloc(buf, cap * 2 + 1);
        if (!nb) {
            free(buf);
            fclose(f);
            return br_error(BR_ENOMEM, "%s: out of memory", path);
        }
        buf = nb;
        cap *= 2;
    }
    if (ferror(f)) {
        free(buf);
        fclose(f);
        return br_error(BR_EIO, "%s: read error", path);
    }
    fclose(f);
    buf[n] = 0;
    *data = buf;
    *size = n;
    return BR_OK;
}

br_status br_mmap_open(br_mmap_t *m, const char *path)
{
    m->data = NULL;
    m->size = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return br_error(errno == ENOENT ? BR_ENOTFOUND : BR_EIO, "%s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return br_error(BR_EIO, "%s: not a regular file", path);
    }
    if (st.st_size > 0) {
        void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) {
            close(fd);
            return br_error(BR_EIO, "%s: mmap: %s", path, strerror(errno));
        }
        m->data = p;
        m->size = (size_t)st.st_size;
    }
    close(fd);
    return BR_OK;
}

void br_mmap_close(br_mmap_t *m)
{
    if (m->data) munmap((void *)m->data, m->size);
    m->data = NULL;
    m->size = 0;
}

/* Best effort (a failure here cannot undo the rename): the directory entry reaches the disk. */
static void fsync_dir_of(const char *path)
{
    br_buf_t dir = BR_BUF_INIT;
    if (br_buf_puts(&dir, path) == BR_OK) {
        int fd = open(dirname(dir.data), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd >= 0) {
            fsync(fd);
            close(fd);
        }
    }
    br_buf_free(&dir);
}

static void free_names(br_atomic_file_t *af)
{
    free(af->path);
    free(af->tmp);
    af->path = af->tmp = NULL;
}

br_status br_atomic_open(br_atomic_file_t *af, const char *path)
{
    memset(af, 0, sizeof *af);
    br_buf_t tmp = BR_BUF_INIT;
    BR_TRY(br_buf_printf(&tmp, "%s.tmp.XXXXXX", path));
    af->tmp = tmp.data; /* owned by af from here */
    af->path = strdup(path);
    br_status s = BR_OK;
    int fd = -1;
    if (!af->path) s = br_error(BR_ENOMEM, "out of memory for the path %s", path);
    else if ((fd = mkstemp(af->tmp)) < 0) s = br_error(BR_EIO, "cannot create a temp file (%s) beside %s", strerror(errno), path);
    else {
        fchmod(fd, 0644);
        af->f = fdopen(fd, "wb");
        if (!af->f) {
            s = br_error(BR_EIO, "%s: fdopen: %s", path, strerror(errno));
            close(fd);
            unlink(af->tmp);
        }
    }
    if (s) free_names(af);
    return s;
}

br_status br_atomic_commit(br_atomic_file_t *af)
{
    if (!af->f) return br_error(BR_EINVAL, "atomic file not open");
    int bad = ferror(af->f) || fflush(af->f) != 0 || fsync(fileno(af->f)) != 0;
    int err = errno;
    bad |= fclose(af->f) != 0;
    af->f = NULL;
    br_status s = BR_OK;
    if (bad) {
        unlink(af->tmp);
        s = br_error(BR_EIO, "%s: write failed: %s", af->path, strerror(err));
    } else if (rename(af->tmp, af->path) != 0) {
        err = errno;
        unlink(af->tmp);
        s = br_error(BR_EIO, "%s: rename: %s", af->path, strerror(err));
    } else fsync_dir_of(af->path);
    free_names(af);
    return s;
}

void br_atomic_abort(br_atomic_file_t *af)
{
    if (af->f) {
        fclose(af->f);
        af->f = NULL;
        unlink(af->tmp);
    }
    free_names(af);
}

br_status br_write_file_atomic(const char *path, const void *data, size_t size)
{
    br_atomic_file_t af;
    BR_TRY(br_atomic_open(&af, path));
    if (size && fwrite(data, 1, size, af.f) != size) {
        br_atomic_abort(&af);
        return br_error(BR_EIO, "%s: short write", path);
    }
    return br_atomic_commit(&af);
}

br_status br_mkdir_p(const char *path)
{
    size_t n = strlen(path);
    if (n == 0) return br_error(BR_EINVAL, "empty directory path");
    br_buf_t tmp = BR_BUF_INIT;
    BR_TRY(br_buf_puts(&tmp, path));
    br_status s = BR_OK;
    for (size_t i = 1; i <= n && !s; i++) {
        if (tmp.data[i] == '/' || tmp.data[i] == 0) {
            char c = tmp.data[i];
            tmp.data[i] = 0;
            if (mkdir(tmp.data, 0755) != 0 && errno != EEXIST)
                s = br_error(BR_EIO, "mkdir (%s): %s", strerror(errno), tmp.data); /* reason first: a long path is cut */
            tmp.data[i] = c;
        }
    }
    br_buf_free(&tmp);
    if (!s && !br_dir_exists(path)) s = br_error(BR_EIO, "%s exists and is not a directory", path);
    return s;
}

bool br_file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

bool br_dir_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

br_status br_path_join(char *buf, size_t cap, const char *dir, const char *name)
{
    br_buf_t b;
    br_buf_fixed(&b, buf, cap);
    return br_buf_path(&b, dir, name);
}
