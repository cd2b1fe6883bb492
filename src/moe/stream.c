/* A model folder written tensor by tensor, chunk by chunk (moe/stream.h). */
#include "moe/stream.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/fileio.h"

typedef struct {
    char *name;
    int ndim;
    int64_t shape[2];
    size_t numel;
    const br_st_tensor_t **src; /* mix: n inputs; rows: src[0] = head or NULL */
    double *wts;
    size_t n;
    bool measure;
    float *rows;                /* rows: the rows after head's (n_rows * cols) */
    size_t n_extra;             /* rows: elements in rows */
    size_t shard;
} entry_t;

struct br_moe_out {
    entry_t *e;
    size_t n, cap;
    br_dtype dtype;
    size_t shard_size, n_measured;
    double dist[BR_MOE_MAX_SOURCES], mean_sq; /* sum |x_i - mean|^2, sum |mean|^2 */
};

br_status br_moe_out_create(br_moe_out_t **out, br_dtype dtype, size_t shard_size, size_t n_measured)
{
    *out = NULL;
    if (dtype != BR_DT_F32 && dtype != BR_DT_BF16 && dtype != BR_DT_F16)
        return br_error(BR_EINVAL, "output dtype must be F32, BF16 or F16, not %s", br_dtype_name(dtype));
    if (n_measured > BR_MOE_MAX_SOURCES) return br_error(BR_EINVAL, "more than %d inputs", BR_MOE_MAX_SOURCES);
    br_moe_out_t *o = calloc(1, sizeof *o);
    if (!o) return br_error(BR_ENOMEM, "out of memory");
    o->dtype = dtype;
    o->shard_size = shard_size ? shard_size : (size_t)5000000000ull;
    o->n_measured = n_measured;
    *out = o;
    return BR_OK;
}

void br_moe_out_free(br_moe_out_t *o)
{
    if (!o) return;
    for (size_t i = 0; i < o->n; i++) {
        free(o->e[i].name);
        free(o->e[i].src);
        free(o->e[i].wts);
        free(o->e[i].rows);
    }
    free(o->e);
    free(o);
}

static bool is_float(br_dtype d)
{
    return d == BR_DT_F32 || d == BR_DT_F16 || d == BR_DT_BF16 || d == BR_DT_F64;
}

/* *out = a new, zeroed entry named name (names are unique: a repeated one is a bug of the
 * caller's plan, reported rather than written twice). */
static br_status add_entry(br_moe_out_t *o, const char *name, entry_t **out)
{
    for (size_t i = 0; i < o->n; i++)
        if (!strcmp(o->e[i].name, name)) return br_error(BR_EINVAL, "output tensor '%s' is described twice", name);
    if (o->n == o->cap) {
        size_t cap = o->cap ? 2 * o->cap : 256;
        entry_t *e = realloc(o->e, cap * sizeof *e);
        if (!e) return br_error(BR_ENOMEM, "out of memory");
        o->e = e, o->cap = cap;
    }
    entry_t *e = &o->e[o->n];
    memset(e, 0, sizeof *e);
    if (!(e->name = strdup(name))) return br_error(BR_ENOMEM, "out of memory");
    o->n++;
    *out = e;
    return BR_OK;
}

/* Drops the last entry (a description that failed half-way). */
static void drop_last(br_moe_out_t *o)
{
    entry_t *e = &o->e[--o->n];
    free(e->name), free(e->src), free(e->wts), free(e->rows);
}

br_status br_moe_out_mix(br_moe_out_t *o, const char *name, const br_st_tensor_t *const *src,
                         const double *wts, size_t n, bool measure)
{
    if (n < 1 || n > BR_MOE_MAX_SOURCES) return br_error(BR_EINVAL, "tensor '%s': %zu inputs", name, n);
    if (measure && n != o->n_measured)
        return br_error(BR_EINVAL, "tensor '%s': %zu measured inputs, the writer expects %zu", name, n, o->n_measured);
    const br_st_tensor_t *t0 = src[0];
    if (t0->ndim < 1 || t0->ndim > 2)
        return br_error(BR_EFORMAT, "tensor '%s' has %d dimensions; upcycling handles vectors and matrices", t0->name,
                        t0->ndim);
    for (size_t i = 0; i < n; i++) {
        if (!is_float(src[i]->dtype))
            return br_error(BR_EFORMAT, "tensor '%s' is %s, not a floating-point type", src[i]->name,
                            br_dtype_name(src[i]->dtype));
        if (src[i]->ndim != t0->ndim || memcmp(src[i]->shape, t0->shape, (size_t)t0->ndim * sizeof(int64_t)))
            return br_error(BR_EFORMAT, "tensor '%s' of input %zu has another shape than input 1's", src[i]->name,
                            i + 1);
    }
    entry_t *e = NULL;
    BR_TRY(add_entry(o, name, &e));
    e->ndim = t0->ndim;
    memcpy(e->shape, t0->shape, (size_t)t0->ndim * sizeof(int64_t));
    e->numel = t0->numel;
    e->n = n;
    e->measure = measure && n > 1;
    e->src = malloc(n * sizeof *e->src);
    e->wts = malloc(n * sizeof *e->wts);
    if (!e->src || !e->wts) {
        drop_last(o);
        return br_error(BR_ENOMEM, "out of memory");
    }
    memcpy(e->src, src, n * sizeof *e->src);
    memcpy(e->wts, wts, n * sizeof *e->wts);
    return BR_OK;
}

br_status br_moe_out_rows(br_moe_out_t *o, const char *name, const br_st_tensor_t *head, const float *rows,
                          int64_t n_rows, int64_t cols)
{
    int64_t r0 = 0;
    if (head) {
        if (head->ndim != 2 || head->shape[1] != cols || !is_float(head->dtype))
            return br_error(BR_EFORMAT, "tensor '%s' is not a floating-point matrix of %lld columns", head->name,
                            (long long)cols);
        r0 = head->shape[0];
    }
    if (n_rows < 0 || cols <= 0 || n_rows > ((int64_t)1 << 40) / cols)
        return br_error(BR_EINVAL, "tensor '%s': bad size %lld x %lld", name, (long long)n_rows, (long long)cols);
    entry_t *e = NULL;
    BR_TRY(add_entry(o, name, &e));
    e->ndim = 2;
    e->shape[0] = r0 + n_rows, e->shape[1] = cols;
    e->numel = (size_t)(r0 + n_rows) * (size_t)cols;
    e->n_extra = (size_t)n_rows * (size_t)cols;
    e->src = calloc(1, sizeof *e->src);
    e->rows = malloc((e->n_extra ? e->n_extra : 1) * sizeof(float));
    if (!e->src || !e->rows) {
        drop_last(o);
        return br_error(BR_ENOMEM, "out of memory");
    }
    e->src[0] = head;
    if (e->n_extra) memcpy(e->rows, rows, e->n_extra * sizeof(float));
    return BR_OK;
}

/* ---- chunks ---- */

/* Gives the pages of t's bytes [off, off+n) of a read-only file mapping back: they are read
 * again from the page cache if touched later, but no longer count in this process's memory.
 * A fault maps the cached pages around it too ("fault-around", 64 KB by default, more with
 * large folios), so the range dropped reaches back over the previous chunk, never before the
 * tensor's first byte (what lies before may be another mapping). */
static void drop_pages(const br_st_tensor_t *t, size_t off, size_t n)
{
    static uintptr_t page;
    if (!page) page = (uintptr_t)sysconf(_SC_PAGESIZE);
    const size_t back = (size_t)4 << 20;
    size_t from = off > back ? off - back : 0;
    uintptr_t a = (uintptr_t)t->data + from, start = (a + page - 1) & ~(page - 1), end = (uintptr_t)t->data + off + n;
    if (from == 0) start = a & ~(page - 1); /* the tensor's first page: shared with the previous tensor's end */
    if (end > start) (void)madvise((void *)start, end - start, MADV_DONTNEED);
}

/* out[0..n) = t's elements [off, off+n) as float32 (the mapping may be unaligned). */
static void read_chunk(const br_st_tensor_t *t, size_t off, size_t n, float *out)
{
    size_t esz = br_dtype_size(t->dtype);
    const unsigned char *p = (const unsigned char *)t->data + off * esz;
    switch (t->dtype) {
    case BR_DT_F32: memcpy(out, p, n * sizeof(float)); break;
    case BR_DT_F64:
        for (size_t i = 0; i < n; i++) {
            double d;
            memcpy(&d, p + 8 * i, 8);
            out[i] = (float)d;
        }
        break;
    default: { /* F16, BF16 */
        bool bf = t->dtype == BR_DT_BF16;
        for (size_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, p + 2 * i, 2);
            out[i] = bf ? br_bf16_to_f32(h) : br_f16_to_f32(h);
        }
    }
    }
    drop_pages(t, off * esz, n * esz);
}

static br_status write_chunk(FILE *f, br_dtype dt, const float *x, size_t n, void *scratch, const char *path)
{
    const void *p = x;
    if (dt != BR_DT_F32) {
        uint16_t *h = scratch;
        for (size_t i = 0; i < n; i++) h[i] = dt == BR_DT_BF16 ? br_f32_to_bf16(x[i]) : br_f32_to_f16(x[i]);
        p = h;
    }
    size_t bytes = n * br_dtype_size(dt);
    if (fwrite(p, 1, bytes, f) != bytes) return br_error(BR_EIO, "%s: write failed: %s", path, strerror(errno));
    return BR_OK;
}

typedef struct {
    float *acc, *tmp; /* (BR_MOE_CHUNK) */
    float *each;      /* (n_measured, BR_MOE_CHUNK) the measured inputs' chunks */
    void *conv;       /* (BR_MOE_CHUNK) 16-bit output */
} scratch_t;

/* Accumulates the distances of one chunk of a measured tensor: x_i = each + i*CH. */
static void measure_chunk(br_moe_out_t *o, const scratch_t *s, const entry_t *e, size_t n)
{
    double mean_sq = 0;
    for (size_t j = 0; j < n; j++) {
        double m = 0;
        for (size_t i = 0; i < e->n; i++) m += e->wts[i] * s->each[i * BR_MOE_CHUNK + j];
        mean_sq += m * m;
        for (size_t i = 0; i < e->n; i++) {
            double d = s->each[i * BR_MOE_CHUNK + j] - m;
            o->dist[i] += d * d;
        }
    }
    o->mean_sq += mean_sq;
}

static br_status write_entry(br_moe_out_t *o, const entry_t *e, FILE *f, scratch_t *s, const char *path)
{
    size_t esz = br_dtype_size(o->dtype);
    if (e->rows) { /* head rows, then the given rows */
        const br_st_tensor_t *h = e->src[0];
        for (size_t off = 0; h && off < h->numel; off += BR_MOE_CHUNK) {
            size_t n = h->numel - off < BR_MOE_CHUNK ? h->numel - off : BR_MOE_CHUNK;
            read_chunk(h, off, n, s->acc);
            BR_TRY(write_chunk(f, o->dtype, s->acc, n, s->conv, path));
        }
        for (size_t off = 0; off < e->n_extra; off += BR_MOE_CHUNK) {
            size_t n = e->n_extra - off < BR_MOE_CHUNK ? e->n_extra - off : BR_MOE_CHUNK;
            BR_TRY(write_chunk(f, o->dtype, e->rows + off, n, s->conv, path));
        }
        return BR_OK;
    }
    const br_st_tensor_t *t0 = e->src[0];
    if (e->n == 1 && e->wts[0] == 1.0 && t0->dtype == o->dtype) { /* a copy: the bytes as they are */
        for (size_t off = 0; off < e->numel; off += BR_MOE_CHUNK) {
            size_t n = e->numel - off < BR_MOE_CHUNK ? e->numel - off : BR_MOE_CHUNK;
            const unsigned char *p = (const unsigned char *)t0->data + off * esz;
            memcpy(s->acc, p, n * esz); /* (write() straight from the mapping keeps its pages) */
            drop_pages(t0, off * esz, n * esz);
            if (fwrite(s->acc, esz, n, f) != n) return br_error(BR_EIO, "%s: write failed: %s", path, strerror(errno));
        }
        return BR_OK;
    }
    for (size_t off = 0; off < e->numel; off += BR_MOE_CHUNK) {
        size_t n = e->numel - off < BR_MOE_CHUNK ? e->numel - off : BR_MOE_CHUNK;
        memset(s->acc, 0, n * sizeof(float));
        for (size_t i = 0; i < e->n; i++) {
            float *x = e->measure ? s->each + i * BR_MOE_CHUNK : s->tmp;
            read_chunk(e->src[i], off, n, x);
            float w = (float)e->wts[i];
            for (size_t j = 0; j < n; j++) s->acc[j] += w * x[j];
        }
        if (e->measure) measure_chunk(o, s, e, n);
        BR_TRY(write_chunk(f, o->dtype, s->acc, n, s->conv, path));
    }
    return BR_OK;
}

/* ---- the folder ---- */

/* The safetensors header of shard k: {"__metadata__": {"format": "pt"}, name: {...}, ...}. */
static char *shard_header(const br_moe_out_t *o, size_t k, size_t *padded)
{
    json_t *root = json_object(), *meta = json_object();
    json_object_set_new(meta, "format", json_string("pt"));
    json_object_set_new(root, "__metadata__", meta);
    size_t off = 0, esz = br_dtype_size(o->dtype);
    for (size_t i = 0; i < o->n; i++) {
        const entry_t *e = &o->e[i];
        if (e->shard != k) continue;
        json_t *shape = json_array();
        for (int d = 0; d < e->ndim; d++) json_array_append_new(shape, json_integer(e->shape[d]));
        json_t *d = json_pack("{s:s, s:o, s:[I, I]}", "dtype", br_dtype_name(o->dtype), "shape", shape, "data_offsets",
                              (json_int_t)off, (json_int_t)(off + e->numel * esz));
        if (!d || json_object_set_new(root, e->name, d)) { /* a name that is not UTF-8: no header */
            json_decref(root);
            return NULL;
        }
        off += e->numel * esz;
    }
    char *h = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(root);
    if (h) *padded = (strlen(h) + 7) / 8 * 8;
    return h;
}

static br_status shard_name(br_buf_t *b, const char *dir, size_t k, size_t n)
{
    char name[64];
    if (n == 1) snprintf(name, sizeof name, "model.safetensors");
    else snprintf(name, sizeof name, "model-%05zu-of-%05zu.safetensors", k + 1, n);
    return br_buf_path(b, dir, name);
}

static br_status close_file(FILE *f, const char *path, br_status s)
{
    if (!s && (fflush(f) || fsync(fileno(f)))) s = br_error(BR_EIO, "%s: %s", path, strerror(errno));
    if (fclose(f) && !s) s = br_error(BR_EIO, "%s: %s", path, strerror(errno));
    return s;
}

static br_status write_shard(br_moe_out_t *o, const char *dir, size_t k, size_t n_shards, scratch_t *s)
{
    size_t padded = 0;
    char *hdr = shard_header(o, k, &padded);
    if (!hdr) return br_error(BR_EINVAL, "shard %zu: cannot build the safetensors header (out of memory, or a "
                              "tensor name that is not UTF-8)", k + 1);
    br_buf_t path = BR_BUF_INIT;
    br_status st = shard_name(&path, dir, k, n_shards);
    FILE *f = st ? NULL : fopen(br_buf_str(&path), "wb");
    if (!st && !f) st = br_error(BR_EIO, "%s: %s", br_buf_str(&path), strerror(errno));
    if (!st) {
        unsigned char len8[8];
        for (int i = 0; i < 8; i++) len8[i] = (unsigned char)((uint64_t)padded >> (8 * i));
        size_t hl = strlen(hdr);
        bool ok = fwrite(len8, 1, 8, f) == 8 && fwrite(hdr, 1, hl, f) == hl;
        for (size_t i = hl; ok && i < padded; i++) ok = fputc(' ', f) != EOF;
        if (!ok) st = br_error(BR_EIO, "%s: write failed: %s", br_buf_str(&path), strerror(errno));
        for (size_t i = 0; i < o->n && !st; i++)
            if (o->e[i].shard == k) st = write_entry(o, &o->e[i], f, s, br_buf_str(&path));
        st = close_file(f, br_buf_str(&path), st);
    }
    free(hdr);
    br_buf_free(&path);
    return st;
}

static br_status write_text(const char *dir, const char *name, const char *text)
{
    br_buf_t path = BR_BUF_INIT;
    br_status s = br_buf_path(&path, dir, name);
    FILE *f = s ? NULL : fopen(br_buf_str(&path), "wb");
    if (!s && !f) s = br_error(BR_EIO, "%s: %s", br_buf_str(&path), strerror(errno));
    if (!s) {
        size_t n = strlen(text);
        if (fwrite(text, 1, n, f) != n) s = br_error(BR_EIO, "%s: write failed", br_buf_str(&path));
        s = close_file(f, br_buf_str(&path), s);
    }
    br_buf_free(&path);
    return s;
}

static br_status write_index(const br_moe_out_t *o, const char *dir, size_t n_shards, size_t total)
{
    json_t *root = json_object(), *meta = json_object(), *map = json_object();
    json_object_set_new(meta, "total_size", json_integer((json_int_t)total));
    json_object_set_new(root, "metadata", meta);
    for (size_t i = 0; i < o->n; i++) {
        char name[64];
        snprintf(name, sizeof name, "model-%05zu-of-%05zu.safetensors", o->e[i].shard + 1, n_shards);
        json_object_set_new(map, o->e[i].name, json_string(name));
    }
    json_object_set_new(root, "weight_map", map);
    char *text = json_dumps(root, JSON_INDENT(2) | JSON_SORT_KEYS);
    json_decref(root);
    if (!text) return br_error(BR_ENOMEM, "out of memory");
    br_status s = write_text(dir, "model.safetensors.index.json", text);
    free(text);
    return s;
}

/* config.json as braid writes it, with torch_dtype the output's. */
static br_status write_config(const br_moe_out_t *o, const char *dir, const br_model_config_t *cfg)
{
    br_buf_t path = BR_BUF_INIT;
    br_status s = br_buf_path(&path, dir, "config.json");
    if (!s) s = br_config_save(cfg, br_buf_str(&path));
    json_t *root = s ? NULL : json_load_file(br_buf_str(&path), JSON_PRESERVE_ORDER, NULL);
    if (!s && !root) s = br_error(BR_EIO, "%s: cannot read back", br_buf_str(&path));
    if (!s) {
        const char *tdt = o->dtype == BR_DT_BF16 ? "bfloat16" : o->dtype == BR_DT_F16 ? "float16" : "float32";
        json_object_set_new(root, "torch_dtype", json_string(tdt));
        char *text = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(7));
        s = text ? write_text(dir, "config.json", text) : br_error(BR_ENOMEM, "out of memory");
        free(text);
    }
    json_decref(root);
    br_buf_free(&path);
    return s;
}

/* The tokenizer and generation files a Hub folder may hold, copied as they are. */
static const char *const tok_files[] = {"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                                        "tokenizer.model", "vocab.json", "merges.txt", "added_tokens.json",
                                        "generation_config.json", "chat_template.jinja"};

static br_status copy_tokenizer(const char *from, const char *dir)
{
    br_status s = BR_OK;
    for (size_t i = 0; i < sizeof tok_files / sizeof *tok_files && !s; i++) {
        br_buf_t src = BR_BUF_INIT, dst = BR_BUF_INIT;
        char *data = NULL;
        size_t n = 0;
        s = br_buf_path(&src, from, tok_files[i]);
        if (!s) s = br_buf_path(&dst, dir, tok_files[i]);
        if (!s && br_file_exists(br_buf_str(&src))) {
            s = br_read_file(br_buf_str(&src), &data, &n);
            FILE *f = s ? NULL : fopen(br_buf_str(&dst), "wb");
            if (!s && !f) s = br_error(BR_EIO, "%s: %s", br_buf_str(&dst), strerror(errno));
            if (f) {
                if (fwrite(data, 1, n, f) != n) s = br_error(BR_EIO, "%s: write failed", br_buf_str(&dst));
                s = close_file(f, br_buf_str(&dst), s);
            }
        }
        free(data);
        br_buf_free(&src);
        br_buf_free(&dst);
    }
    return s;
}

/* Checks that dir holds no sub-folder (not ours to delete, and the final swap must not fail
 * half-way on one); with remove, also removes its plain files and then dir. */
static br_status clear_plain_dir(const char *dir, bool remove)
{
    DIR *d = opendir(dir);
    if (!d) return br_error(BR_EIO, "%s: %s", dir, strerror(errno));
    br_status s = BR_OK;
    struct dirent *de;
    while (!s && (de = readdir(d))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
        br_buf_t p = BR_BUF_INIT;
        struct stat sb;
        s = br_buf_path(&p, dir, de->d_name);
        if (!s && lstat(br_buf_str(&p), &sb) == 0 && S_ISDIR(sb.st_mode))
            s = br_error(BR_EINVAL, "output folder %s exists and holds the folder %s: not replacing it; remove it "
                         "or choose another --out", dir, de->d_name);
        if (!s && remove && unlink(br_buf_str(&p))) s = br_error(BR_EIO, "%s: %s", br_buf_str(&p), strerror(errno));
        br_buf_free(&p);
    }
    closedir(d);
    if (!s && remove && rmdir(dir)) s = br_error(BR_EIO, "%s: %s", dir, strerror(errno));
    return s;
}

/* tmp -> dir: a rename when dir does not exist (or is empty), else the old dir moves aside,
 * tmp takes its name and the old one is removed. */
static br_status swap_in(const char *tmp, const char *dir)
{
    if (rename(tmp, dir) == 0) return BR_OK;
    if (errno != ENOTEMPTY && errno != EEXIST) return br_error(BR_EIO, "rename %s -> %s: %s", tmp, dir, strerror(errno));
    br_buf_t old = BR_BUF_INIT;
    br_status s = br_buf_printf(&old, "%s.old-%ld", tmp, (long)getpid());
    if (!s && rename(dir, br_buf_str(&old))) s = br_error(BR_EIO, "rename %s: %s", dir, strerror(errno));
    if (!s && rename(tmp, dir)) s = br_error(BR_EIO, "rename %s -> %s: %s", tmp, dir, strerror(errno));
    if (!s) s = clear_plain_dir(br_buf_str(&old), true);
    br_buf_free(&old);
    return s;
}

/* A fresh folder beside dir: "DIR.tmp-XXXXXX". */
static br_status make_temp_dir(const char *dir, br_buf_t *tmp)
{
    size_t n = strlen(dir);
    while (n > 1 && dir[n - 1] == '/') n--;
    BR_TRY(br_buf_printf(tmp, "%.*s.tmp-XXXXXX", (int)n, dir));
    char *p = strrchr(tmp->data, '/');
    if (p) { /* the parent must exist */
        *p = 0;
        br_status s = p == tmp->data ? BR_OK : br_mkdir_p(tmp->data);
        *p = '/';
        BR_TRY(s);
    }
    if (!mkdtemp(tmp->data)) return br_error(BR_EIO, "%s: %s", br_buf_str(tmp), strerror(errno));
    return BR_OK;
}

static void assign_shards(br_moe_out_t *o, size_t *n_shards, size_t *total)
{
    size_t k = 0, in_shard = 0, esz = br_dtype_size(o->dtype);
    *total = 0;
    for (size_t i = 0; i < o->n; i++) {
        size_t b = o->e[i].numel * esz;
        if (in_shard && in_shard + b > o->shard_size) k++, in_shard = 0;
        o->e[i].shard = k;
        in_shard += b;
        *total += b;
    }
    *n_shards = o->n ? k + 1 : 1;
}

br_status br_moe_out_commit(br_moe_out_t *o, const char *dir, const br_model_config_t *cfg, const char *tok_dir,
                            br_moe_out_report_t *report)
{
    if (!dir || !*dir) return br_error(BR_EINVAL, "no output folder given");
    if (br_dir_exists(dir)) BR_TRY(clear_plain_dir(dir, false));
    else if (br_file_exists(dir)) return br_error(BR_EINVAL, "output %s exists and is not a folder", dir);
    size_t n_shards, total;
    assign_shards(o, &n_shards, &total);
    scratch_t s = {0};
    size_t nm = o->n_measured ? o->n_measured : 1;
    s.acc = malloc(BR_MOE_CHUNK * sizeof(float));
    s.tmp = malloc(BR_MOE_CHUNK * sizeof(float));
    s.each = malloc(nm * BR_MOE_CHUNK * sizeof(float));
    s.conv = malloc(BR_MOE_CHUNK * sizeof(uint16_t));
    br_buf_t tmp = BR_BUF_INIT;
    br_status st = s.acc && s.tmp && s.each && s.conv ? BR_OK : br_error(BR_ENOMEM, "out of memory");
    memset(o->dist, 0, sizeof o->dist);
    o->mean_sq = 0;
    bool made = false;
    if (!st) st = make_temp_dir(dir, &tmp);
    made = !st;
    for (size_t k = 0; k < n_shards && !st; k++) st = write_shard(o, br_buf_str(&tmp), k, n_shards, &s);
    if (!st && n_shards > 1) st = write_index(o, br_buf_str(&tmp), n_shards, total);
    if (!st) st = write_config(o, br_buf_str(&tmp), cfg);
    if (!st && tok_dir) st = copy_tokenizer(tok_dir, br_buf_str(&tmp));
    if (!st) st = swap_in(br_buf_str(&tmp), dir);
    if (st && made) {
        br_status keep = st; /* the first error is the one to report */
        (void)clear_plain_dir(br_buf_str(&tmp), true);
        st = keep;
    }
    free(s.acc), free(s.tmp), free(s.each), free(s.conv);
    br_buf_free(&tmp);
    if (!st && report) {
        memset(report, 0, sizeof *report);
        report->n_shards = n_shards, report->n_tensors = o->n, report->bytes = total, report->dtype = o->dtype;
        report->n_measured = o->n_measured;
        for (size_t i = 0; i < o->n_measured; i++)
            report->distance[i] = o->mean_sq > 0 ? sqrt(o->dist[i] / o->mean_sq) : 0;
    }
    return st;
}

br_status br_moe_dtype_parse(const char *name, br_dtype *out)
{
    static const struct {
        const char *name;
        br_dtype dt;
    } t[] = {{"f32", BR_DT_F32}, {"float32", BR_DT_F32}, {"bf16", BR_DT_BF16}, {"bfloat16", BR_DT_BF16},
             {"f16", BR_DT_F16}, {"float16", BR_DT_F16}};
    for (size_t i = 0; name && i < sizeof t / sizeof *t; i++)
        if (!strcasecmp(name, t[i].name)) {
            *out = t[i].dt;
            return BR_OK;
        }
    return br_error(BR_EINVAL, "unknown dtype '%s' (use f32, bf16 or f16)", name ? name : "");
}

br_status br_moe_size_parse(const char *text, size_t *out)
{
    char *end = NULL;
    errno = 0;
    double v = text ? strtod(text, &end) : -1;
    if (!text || end == text || errno || !(v > 0))
        return br_error(BR_EINVAL, "'%s' is not a size (e.g. 5GB, 500MB, 2GiB)", text ? text : "");
    static const struct {
        const char *unit;
        double mult;
    } u[] = {{"", 1}, {"B", 1}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"KiB", 1024.0}, {"MiB", 1048576.0},
             {"GiB", 1073741824.0}};
    for (size_t i = 0; i < sizeof u / sizeof *u; i++)
        if (!strcasecmp(end, u[i].unit)) {
            double b = v * u[i].mult;
            if (b < 1 || b > 1e15) return br_error(BR_EINVAL, "size '%s' is out of range", text);
            *out = (size_t)b;
            return BR_OK;
        }
    return br_error(BR_EINVAL, "'%s': unknown unit (use B, KB, MB, GB, KiB, MiB or GiB)", text);
}
