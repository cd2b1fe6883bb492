/* GGUF v3 read and write (lm/gguf.h); a braid model as a llama GGUF and back. */
#include "lm/gguf.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/fileio.h"
#include "lm/config_moe.h"
#include "lm/model_internal.h"

enum { GGUF_VERSION = 3, GGUF_ALIGN = 32, GGUF_MAX_DIMS = 4 };

/* ggml_type numbers of the types braid stores. */
static const struct { br_wtype wt; uint32_t ggml; } ggml_types[] = {
    {BR_WT_F32, 0}, {BR_WT_F16, 1}, {BR_WT_Q4_0, 2}, {BR_WT_Q8_0, 8}, {BR_WT_Q4_K, 12}, {BR_WT_Q6_K, 14},
    {BR_WT_BF16, 30},
};

static bool wt_of_ggml(uint32_t t, br_wtype *wt)
{
    for (size_t i = 0; i < sizeof ggml_types / sizeof *ggml_types; i++)
        if (ggml_types[i].ggml == t) return *wt = ggml_types[i].wt, true;
    return false;
}
static uint32_t ggml_of_wt(br_wtype wt)
{
    for (size_t i = 0; i < sizeof ggml_types / sizeof *ggml_types; i++)
        if (ggml_types[i].wt == wt) return ggml_types[i].ggml;
    return UINT32_MAX;
}

/* Bytes of one scalar of a metadata type (0 for STRING, ARRAY and bad types). */
static size_t vsize(uint32_t t)
{
    static const size_t sz[BR_GGUF_VTYPE_COUNT] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
    return t < BR_GGUF_VTYPE_COUNT ? sz[t] : 0;
}

struct br_gguf {
    br_mmap_t map; /* br_gguf_open's mapping (else empty) */
    br_gguf_kv_t *kv;
    br_gguf_tensor_t *t;
    size_t n_kv, n_t;
    char **blocks; /* every key, string value and tensor name, NUL-terminated, in blocks that
                    * never move (so the pointers stay valid); sized as the strings come */
    size_t n_blocks;
};

/* ---- reading ---- */

typedef struct {
    const uint8_t *p, *end;
    br_gguf_t *g;
    char *sp;    /* next free byte of the last block */
    size_t left; /* bytes free there */
} cur_t;

/* n bytes for a string copy (blocks of 64 KiB, or one of its own for a longer string). */
static char *str_space(cur_t *c, size_t n)
{
    if (n > c->left) {
        size_t sz = n > 65536 ? n : 65536;
        char **bl = realloc(c->g->blocks, (c->g->n_blocks + 1) * sizeof *bl);
        if (!bl) return NULL;
        c->g->blocks = bl;
        if (!(bl[c->g->n_blocks] = malloc(sz))) return NULL;
        c->sp = bl[c->g->n_blocks++], c->left = sz;
    }
    char *p = c->sp;
    c->sp += n, c->left -= n;
    return p;
}

static bool rd(cur_t *c, void *v, size_t n)
{
    if ((size_t)(c->end - c->p) < n) return false;
    memcpy(v, c->p, n);
    c->p += n;
    return true;
}

/* A string: u64 length, bytes (copied NUL-terminated into the string area when out). */
static br_status rd_str(cur_t *c, const char **out, size_t *len, const char *what)
{
    uint64_t n;
    if (!rd(c, &n, 8) || n > (uint64_t)(c->end - c->p))
        return br_error(BR_EFORMAT, "GGUF: %s: string length past the end of the file", what);
    if (out) {
        char *d = str_space(c, (size_t)n + 1);
        if (!d) return br_error(BR_ENOMEM, "GGUF: out of memory");
        memcpy(d, c->p, n);
        d[n] = 0;
        *out = d;
    }
    if (len) *len = n;
    c->p += n;
    return BR_OK;
}

static br_status rd_value(cur_t *c, br_gguf_kv_t *kv)
{
    uint32_t t = kv->type;
    if (t == BR_GGUF_STRING) return rd_str(c, &kv->str, &kv->str_len, kv->key);
    if (t == BR_GGUF_ARRAY) {
        uint32_t at;
        uint64_t n;
        if (!rd(c, &at, 4) || !rd(c, &n, 8)) return br_error(BR_EFORMAT, "GGUF: %s: truncated array", kv->key);
        if (at >= BR_GGUF_VTYPE_COUNT || at == BR_GGUF_ARRAY)
            return br_error(BR_EUNSUPPORTED, "GGUF: %s: arrays of type %u are not read", kv->key, at);
        kv->arr_type = at, kv->arr = c->p;
        size_t avail = (size_t)(c->end - c->p);
        if (at != BR_GGUF_STRING) {
            if (n > avail / vsize(at)) return br_error(BR_EFORMAT, "GGUF: %s: array past the end of the file", kv->key);
            kv->arr_n = n;
            c->p += n * vsize(at);
            return BR_OK;
        }
        if (n > avail / 8) return br_error(BR_EFORMAT, "GGUF: %s: array past the end of the file", kv->key);
        kv->arr_n = n;
        for (uint64_t i = 0; i < n; i++) BR_TRY(rd_str(c, NULL, NULL, kv->key));
        return BR_OK;
    }
    size_t n = vsize(t);
    if (!n) return br_error(BR_EFORMAT, "GGUF: %s: unknown value type %u", kv->key, t);
    uint8_t b[8] = {0};
    if (!rd(c, b, n)) return br_error(BR_EFORMAT, "GGUF: %s: truncated value", kv->key);
    if (t == BR_GGUF_F32) {
        float f;
        memcpy(&f, b, 4);
        kv->f = f;
    } else if (t == BR_GGUF_F64) {
        memcpy(&kv->f, b, 8);
    } else if (t == BR_GGUF_I8 || t == BR_GGUF_I16 || t == BR_GGUF_I32 || t == BR_GGUF_I64) {
        int64_t v = n == 1 ? (int8_t)b[0] : n == 2 ? (int16_t)(b[0] | b[1] << 8) : 0;
        if (n == 4) { int32_t x; memcpy(&x, b, 4); v = x; }
        if (n == 8) memcpy(&v, b, 8);
        kv->i = v, kv->u = (uint64_t)v;
    } else {
        memcpy(&kv->u, b, 8); /* little-endian: the low n bytes */
        kv->i = (int64_t)kv->u;
    }
    return BR_OK;
}

static br_status rd_tensor_info(cur_t *c, br_gguf_tensor_t *t, uint64_t *offset)
{
    BR_TRY(rd_str(c, &t->name, NULL, "tensor name"));
    uint32_t ty;
    if (!rd(c, &t->n_dims, 4) || t->n_dims < 1 || t->n_dims > GGUF_MAX_DIMS)
        return br_error(BR_EFORMAT, "GGUF: tensor '%s': %u dimensions (1 to 4 allowed)", t->name, t->n_dims);
    size_t numel = 1;
    for (uint32_t d = 0; d < t->n_dims; d++) {
        if (!rd(c, &t->ne[d], 8) || t->ne[d] == 0 || t->ne[d] > SIZE_MAX / numel)
            return br_error(BR_EFORMAT, "GGUF: tensor '%s': bad or truncated dimension %u", t->name, d);
        numel *= (size_t)t->ne[d];
    }
    for (uint32_t d = t->n_dims; d < GGUF_MAX_DIMS; d++) t->ne[d] = 1;
    if (!rd(c, &ty, 4) || !rd(c, offset, 8)) return br_error(BR_EFORMAT, "GGUF: tensor '%s': truncated", t->name);
    if (!wt_of_ggml(ty, &t->wt))
        return br_error(BR_EUNSUPPORTED, "GGUF: tensor '%s' has ggml type %u; braid reads F32, F16, BF16, "
                        "Q8_0, Q4_0, Q4_K and Q6_K (requantise the file to one of those)", t->name, ty);
    size_t rb;
    br_status s = br_wtype_row_bytes(t->wt, (size_t)t->ne[0], &rb);
    if (s || rb > SIZE_MAX / (numel / t->ne[0]))
        return br_error(BR_EFORMAT, "GGUF: tensor '%s': rows of %llu values are not whole %s blocks", t->name,
                        (unsigned long long)t->ne[0], br_wtype_name(t->wt));
    t->nbytes = rb * (numel / t->ne[0]);
    return BR_OK;
}

/* Counts that bound the allocations: each item needs at least min_bytes of the file. */
static br_status check_count(uint64_t n, size_t size, size_t min_bytes, const char *what)
{
    if (n > size / min_bytes)
        return br_error(BR_EFORMAT, "GGUF: %llu %s cannot fit in a file of %zu bytes", (unsigned long long)n,
                        what, size);
    return BR_OK;
}

static br_status parse_body(br_gguf_t *g, cur_t *c, const uint8_t *data, size_t size)
{
    uint64_t n_t, n_kv;
    if (!rd(c, &n_t, 8) || !rd(c, &n_kv, 8)) return br_error(BR_EFORMAT, "GGUF: truncated header");
    BR_TRY(check_count(n_kv, size, 8 + 4 + 1, "metadata pairs"));
    BR_TRY(check_count(n_t, size, 8 + 4 + 8 + 4 + 8, "tensors"));
    g->kv = calloc(n_kv ? n_kv : 1, sizeof *g->kv);
    g->t = calloc(n_t ? n_t : 1, sizeof *g->t);
    if (!g->kv || !g->t) return br_error(BR_ENOMEM, "GGUF: out of memory");
    c->g = g;
    uint64_t align = GGUF_ALIGN;
    for (; g->n_kv < n_kv; g->n_kv++) {
        br_gguf_kv_t *kv = &g->kv[g->n_kv];
        uint32_t t;
        BR_TRY(rd_str(c, &kv->key, NULL, "metadata key"));
        if (!rd(c, &t, 4)) return br_error(BR_EFORMAT, "GGUF: %s: truncated", kv->key);
        kv->type = t;
        BR_TRY(rd_value(c, kv));
        for (size_t j = 0; j < g->n_kv; j++)
            if (!strcmp(g->kv[j].key, kv->key)) return br_error(BR_EFORMAT, "GGUF: key '%s' appears twice", kv->key);
        if (!strcmp(kv->key, "general.alignment")) {
            if (t != BR_GGUF_U32 || kv->u == 0 || (kv->u & (kv->u - 1)) || kv->u > 65536)
                return br_error(BR_EFORMAT, "GGUF: general.alignment must be a u32 power of two");
            align = kv->u;
        }
    }
    uint64_t *offs = calloc(n_t ? n_t : 1, sizeof *offs);
    if (!offs) return br_error(BR_ENOMEM, "GGUF: out of memory");
    br_status s = BR_OK;
    for (; g->n_t < n_t && !s; g->n_t++) s = rd_tensor_info(c, &g->t[g->n_t], &offs[g->n_t]);
    size_t start = (size_t)(c->p - data);
    start = start % align ? start + (align - start % align) : start;
    for (size_t i = 0; i < g->n_t && !s; i++) {
        br_gguf_tensor_t *t = &g->t[i];
        if (offs[i] % align || start > size || offs[i] > size - start || t->nbytes > size - start - offs[i])
            s = br_error(BR_EFORMAT, "GGUF: tensor '%s' (offset %llu, %zu bytes) lies outside the file or "
                         "is not aligned to %llu", t->name, (unsigned long long)offs[i], t->nbytes,
                         (unsigned long long)align);
        else
            t->data = data + start + offs[i];
        for (size_t j = 0; j < i && !s; j++)
            if (!strcmp(g->t[j].name, t->name)) s = br_error(BR_EFORMAT, "GGUF: tensor '%s' appears twice", t->name);
    }
    free(offs);
    return s;
}

br_status br_gguf_parse(br_gguf_t **out, const uint8_t *data, size_t size)
{
    *out = NULL;
    cur_t c = {data, data + size, NULL, NULL, 0};
    char magic[4];
    uint32_t version;
    if (!data || !rd(&c, magic, 4) || memcmp(magic, "GGUF", 4))
        return br_error(BR_EFORMAT, "not a GGUF file (no \"GGUF\" magic)");
    if (!rd(&c, &version, 4)) return br_error(BR_EFORMAT, "GGUF: truncated header");
    if (version != 2 && version != GGUF_VERSION)
        return br_error(BR_EUNSUPPORTED, "GGUF version %u; braid reads versions 2 and 3", version);
    br_gguf_t *g = calloc(1, sizeof *g);
    if (!g) return br_error(BR_ENOMEM, "out of memory");
    br_status s = parse_body(g, &c, data, size);
    if (s) {
        br_gguf_close(g);
        return s;
    }
    *out = g;
    return BR_OK;
}

br_status br_gguf_open(br_gguf_t **out, const char *path)
{
    *out = NULL;
    br_mmap_t m;
    BR_TRY(br_mmap_open(&m, path));
    br_status s = br_gguf_parse(out, m.data, m.size);
    if (s) {
        br_mmap_close(&m);
        char why[400];
        snprintf(why, sizeof why, "%s", br_errmsg());
        return br_error(s, "%s: %s", path, why);
    }
    (*out)->map = m;
    return BR_OK;
}

void br_gguf_close(br_gguf_t *g)
{
    if (!g) return;
    if (g->map.data) br_mmap_close(&g->map);
    for (size_t i = 0; i < g->n_blocks; i++) free(g->blocks[i]);
    free(g->blocks), free(g->kv), free(g->t), free(g);
}

size_t br_gguf_kv_count(const br_gguf_t *g) { return g->n_kv; }
const br_gguf_kv_t *br_gguf_kv(const br_gguf_t *g, size_t i) { return i < g->n_kv ? &g->kv[i] : NULL; }
size_t br_gguf_tensor_count(const br_gguf_t *g) { return g->n_t; }
const br_gguf_tensor_t *br_gguf_tensor(const br_gguf_t *g, size_t i) { return i < g->n_t ? &g->t[i] : NULL; }

bool br_gguf_is_path(const char *path)
{
    size_t n = path ? strlen(path) : 0;
    return n > 5 && !strcasecmp(path + n - 5, ".gguf") && !br_dir_exists(path);
}

const br_gguf_kv_t *br_gguf_find_kv(const br_gguf_t *g, const char *key)
{
    for (size_t i = 0; i < g->n_kv; i++)
        if (!strcmp(g->kv[i].key, key)) return &g->kv[i];
    return NULL;
}

const br_gguf_tensor_t *br_gguf_find_tensor(const br_gguf_t *g, const char *name)
{
    for (size_t i = 0; i < g->n_t; i++)
        if (!strcmp(g->t[i].name, name)) return &g->t[i];
    return NULL;
}

const char *br_gguf_arr_str(const br_gguf_kv_t *kv, size_t i, size_t *len)
{
    if (kv->type != BR_GGUF_ARRAY || kv->arr_type != BR_GGUF_STRING || i >= kv->arr_n) return NULL;
    const uint8_t *p = kv->arr; /* validated by the parser */
    uint64_t n;
    for (size_t k = 0;; k++) {
        memcpy(&n, p, 8);
        if (k == i) break;
        p += 8 + n;
    }
    *len = (size_t)n;
    return (const char *)p + 8;
}

/* ---- writing ---- */

typedef struct {
    char *name;
    br_wtype wt;
    size_t ne0, rows, nbytes; /* rows: ne1 * ne2 */
    const void *data;
    size_t ne2;               /* 0: 1-D or 2-D; else the third dimension (experts) */
} wtensor_t;

struct br_gguf_writer {
    br_buf_t kv; /* the encoded metadata pairs */
    size_t n_kv;
    wtensor_t *t;
    size_t n_t, cap_t;
};

br_status br_gguf_writer_create(br_gguf_writer_t **out)
{
    *out = calloc(1, sizeof **out);
    if (!*out) return br_error(BR_ENOMEM, "out of memory");
    br_buf_init(&(*out)->kv);
    return BR_OK;
}

void br_gguf_writer_free(br_gguf_writer_t *w)
{
    if (!w) return;
    br_buf_free(&w->kv);
    for (size_t i = 0; i < w->n_t; i++) free(w->t[i].name);
    free(w->t), free(w);
}

static br_status put_str(br_buf_t *b, const char *s)
{
    uint64_t n = strlen(s);
    BR_TRY(br_buf_append(b, &n, 8));
    return br_buf_append(b, s, n);
}

static br_status put_key(br_gguf_writer_t *w, const char *key, uint32_t type)
{
    w->n_kv++;
    BR_TRY(put_str(&w->kv, key));
    return br_buf_append(&w->kv, &type, 4);
}

br_status br_gguf_add_u32(br_gguf_writer_t *w, const char *key, uint32_t v)
{
    BR_TRY(put_key(w, key, BR_GGUF_U32));
    return br_buf_append(&w->kv, &v, 4);
}
br_status br_gguf_add_bool(br_gguf_writer_t *w, const char *key, bool v)
{
    uint8_t b = v;
    BR_TRY(put_key(w, key, BR_GGUF_BOOL));
    return br_buf_append(&w->kv, &b, 1);
}
br_status br_gguf_add_f32(br_gguf_writer_t *w, const char *key, float v)
{
    BR_TRY(put_key(w, key, BR_GGUF_F32));
    return br_buf_append(&w->kv, &v, 4);
}
br_status br_gguf_add_str(br_gguf_writer_t *w, const char *key, const char *v)
{
    BR_TRY(put_key(w, key, BR_GGUF_STRING));
    return put_str(&w->kv, v);
}

static br_status put_array_head(br_gguf_writer_t *w, const char *key, uint32_t type, size_t n)
{
    BR_TRY(put_key(w, key, BR_GGUF_ARRAY));
    uint64_t n64 = n;
    BR_TRY(br_buf_append(&w->kv, &type, 4));
    return br_buf_append(&w->kv, &n64, 8);
}
br_status br_gguf_add_str_array(br_gguf_writer_t *w, const char *key, const char *const *v, size_t n)
{
    BR_TRY(put_array_head(w, key, BR_GGUF_STRING, n));
    for (size_t i = 0; i < n; i++) BR_TRY(put_str(&w->kv, v[i]));
    return BR_OK;
}
br_status br_gguf_add_i32_array(br_gguf_writer_t *w, const char *key, const int32_t *v, size_t n)
{
    BR_TRY(put_array_head(w, key, BR_GGUF_I32, n));
    return br_buf_append(&w->kv, v, n * sizeof *v);
}

br_status br_gguf_add_f32_array(br_gguf_writer_t *w, const char *key, const float *v, size_t n)
{
    BR_TRY(put_array_head(w, key, BR_GGUF_F32, n));
    return br_buf_append(&w->kv, v, n * sizeof *v);
}

br_status br_gguf_add_tensor3(br_gguf_writer_t *w, const char *name, br_wtype wt, size_t ne0, size_t ne1,
                              size_t ne2, const void *data)
{
    size_t rb;
    BR_TRY(br_wtype_row_bytes(wt, ne0, &rb));
    if (ggml_of_wt(wt) == UINT32_MAX) return br_error(BR_EINVAL, "GGUF: no ggml type for %s", br_wtype_name(wt));
    if (w->n_t == w->cap_t) {
        size_t cap = w->cap_t ? 2 * w->cap_t : 64;
        wtensor_t *t = realloc(w->t, cap * sizeof *t);
        if (!t) return br_error(BR_ENOMEM, "out of memory");
        w->t = t, w->cap_t = cap;
    }
    size_t nbytes, rows;
    if (br_mul_size(&rows, ne1 ? ne1 : 1, ne2 ? ne2 : 1) || br_mul_size(&nbytes, rb, rows))
        return br_error(BR_ERANGE, "GGUF: tensor '%s' is too large", name);
    char *nm = strdup(name);
    if (!nm) return br_error(BR_ENOMEM, "out of memory");
    w->t[w->n_t++] = (wtensor_t){nm, wt, ne0, ne2 ? rows : ne1, nbytes, data, ne2};
    return BR_OK;
}

br_status br_gguf_add_tensor(br_gguf_writer_t *w, const char *name, br_wtype wt, size_t ne0,
                             size_t rows, const void *data)
{
    return br_gguf_add_tensor3(w, name, wt, ne0, rows, 0, data);
}

static size_t pad_to(size_t n) { return (GGUF_ALIGN - n % GGUF_ALIGN) % GGUF_ALIGN; }

static br_status write_all(FILE *f, const br_gguf_writer_t *w)
{
    static const uint8_t zeros[GGUF_ALIGN] = {0};
    br_buf_t h = BR_BUF_INIT;
    uint32_t version = GGUF_VERSION;
    uint64_t nt = w->n_t, nkv = w->n_kv, off = 0;
    br_status s = br_buf_append(&h, "GGUF", 4);
    if (!s) s = br_buf_append(&h, &version, 4);
    if (!s) s = br_buf_append(&h, &nt, 8);
    if (!s) s = br_buf_append(&h, &nkv, 8);
    if (!s && w->kv.len) s = br_buf_append(&h, w->kv.data, w->kv.len);
    for (size_t i = 0; i < w->n_t && !s; i++) {
        const wtensor_t *t = &w->t[i];
        uint32_t nd = t->ne2 ? 3 : t->rows ? 2 : 1, ty = ggml_of_wt(t->wt);
        uint64_t ne[3] = {t->ne0, t->ne2 ? t->rows / t->ne2 : t->rows, t->ne2};
        s = put_str(&h, t->name);
        if (!s) s = br_buf_append(&h, &nd, 4);
        if (!s) s = br_buf_append(&h, ne, 8 * nd);
        if (!s) s = br_buf_append(&h, &ty, 4);
        if (!s) s = br_buf_append(&h, &off, 8);
        off += t->nbytes + pad_to(t->nbytes);
    }
    if (!s && (fwrite(h.data, 1, h.len, f) != h.len || fwrite(zeros, 1, pad_to(h.len), f) != pad_to(h.len)))
        s = br_error(BR_EIO, "GGUF: write failed");
    for (size_t i = 0; i < w->n_t && !s; i++) {
        const wtensor_t *t = &w->t[i];
        if (fwrite(t->data, 1, t->nbytes, f) != t->nbytes ||
            fwrite(zeros, 1, pad_to(t->nbytes), f) != pad_to(t->nbytes))
            s = br_error(BR_EIO, "GGUF: write failed");
    }
    br_buf_free(&h);
    return s;
}

br_status br_gguf_write(const br_gguf_writer_t *w, const char *path)
{
    br_atomic_file_t af;
    BR_TRY(br_atomic_open(&af, path));
    br_status s = write_all(af.f, w);
    if (s) {
        br_atomic_abort(&af);
        return s;
    }
    return br_atomic_commit(&af);
}

/* ---- models: braid's HF names <-> llama.cpp's, Q/K rows in llama.cpp's RoPE order ---- */

static const struct { const char *hf, *gg; int perm; } layer_names[] = {
    {"input_layernorm.weight", "attn_norm.weight", 0},
    {"self_attn.q_proj.weight", "attn_q.weight", 1},
    {"self_attn.k_proj.weight", "attn_k.weight", 2},
    {"self_attn.v_proj.weight", "attn_v.weight", 0},
    {"self_attn.o_proj.weight", "attn_output.weight", 0},
    {"post_attention_layernorm.weight", "ffn_norm.weight", 0},
    {"mlp.gate_proj.weight", "ffn_gate.weight", 0},
    {"mlp.up_proj.weight", "ffn_up.weight", 0},
    {"mlp.down_proj.weight", "ffn_down.weight", 0},
};

/* Mixtral's expert matrices, stacked in GGUF as one 3-D tensor per layer and kind. */
static const char *const expert_names[3][2] = {
    {"w1", "ffn_gate_exps.weight"}, {"w3", "ffn_up_exps.weight"}, {"w2", "ffn_down_exps.weight"}};

/* llama.cpp's name of a braid tensor; *perm: 1 for Q, 2 for K (rows to permute), else 0;
 * *expert: j for expert j's matrix (slice j of the 3-D tensor), else -1. */
static br_status gguf_name(const char *hf, char *out, size_t cap, int *perm, int *expert)
{
    *perm = 0, *expert = -1;
    const char *gg = !strcmp(hf, "model.embed_tokens.weight") ? "token_embd.weight"
                     : !strcmp(hf, "model.norm.weight")       ? "output_norm.weight"
                     : !strcmp(hf, "lm_head.weight")          ? "output.weight"
                                                              : NULL;
    if (gg) return snprintf(out, cap, "%s", gg), BR_OK;
    unsigned l, j;
    int at = 0, end = 0;
    char kind[3] = "";
    if (sscanf(hf, "model.layers.%u.%n", &l, &at) != 1 || at <= 0)
        return br_error(BR_EUNSUPPORTED, "GGUF llama has no tensor for '%s'", hf);
    for (size_t i = 0; i < sizeof layer_names / sizeof *layer_names; i++)
        if (!strcmp(hf + at, layer_names[i].hf)) {
            *perm = layer_names[i].perm;
            snprintf(out, cap, "blk.%u.%s", l, layer_names[i].gg);
            return BR_OK;
        }
    if (!strcmp(hf + at, "block_sparse_moe.gate.weight")) return snprintf(out, cap, "blk.%u.ffn_gate_inp.weight", l), BR_OK;
    if (sscanf(hf + at, "block_sparse_moe.experts.%u.%2[w123].weight%n", &j, kind, &end) == 2 && end > 0 &&
        !hf[at + end] && j <= INT32_MAX)
        for (size_t i = 0; i < 3; i++)
            if (!strcmp(kind, expert_names[i][0])) {
                *expert = (int)j;
                snprintf(out, cap, "blk.%u.%s", l, expert_names[i][1]);
                return BR_OK;
            }
    return br_error(BR_EUNSUPPORTED, "GGUF llama has no tensor for '%s'", hf);
}

/* Q/K rows between HF's rotate-half RoPE and llama.cpp's interleaved pairs (as
 * convert_hf_to_gguf.py's permute): GGUF row h*hd + 2i + j is HF row h*hd + j*hd/2 + i.
 * to_gguf: dst in GGUF order from src in HF order; else the inverse.  Rows of rb bytes. */
static void permute_rows(uint8_t *dst, const uint8_t *src, size_t heads, size_t hd, size_t rb, bool to_gguf)
{
    for (size_t h = 0; h < heads; h++)
        for (size_t i = 0; i < hd / 2; i++)
            for (size_t j = 0; j < 2; j++) {
                size_t g = h * hd + 2 * i + j, f = h * hd + j * (hd / 2) + i;
                memcpy(dst + (to_gguf ? g : f) * rb, src + (to_gguf ? f : g) * rb, rb);
            }
}

static br_status check_llama(const br_model_config_t *c)
{
    const char *bad = c->qkv_bias ? "qkv_bias (q/k/v biases)"
                      : c->qk_norm ? "qk_norm (q/k RMSNorm)"
                      : br_config_has_moa(c) ? "a mixture of attention experts (BAM)"
                      : c->router_nexus ? "a Nexus router (projected domain embeddings)"
                      : c->shared_expert_intermediate_size ? "a shared expert"
                      : br_config_has_moe_ffn(c) && !c->norm_topk_prob ? "norm_topk_prob false (llama.cpp "
                                                                         "renormalises the top-k weights)"
                      : c->block != BR_BLOCK_SEQUENTIAL ? "block: parallel"
                      : c->rope_type != BR_ROPE_DEFAULT ? "rope_scaling"
                      : c->sliding_window ? "sliding_window"
                                          : NULL;
    if (bad)
        return br_error(BR_EUNSUPPORTED, "GGUF export writes the llama architecture, which cannot express "
                        "%s; keep this model in braid's format (safetensors, --out DIR)", bad);
    return BR_OK;
}

static uint32_t file_type(br_wtype wt)
{
    switch (wt) { /* llama_ftype */
    case BR_WT_F16: return 1;
    case BR_WT_Q4_0: return 2;
    case BR_WT_Q8_0: return 7;
    case BR_WT_Q4_K: return 14; /* MOSTLY_Q4_K_S: every matrix Q4_K */
    case BR_WT_Q6_K: return 18;
    case BR_WT_BF16: return 32;
    default: return 0;
    }
}

static br_status put_hparams(br_gguf_writer_t *w, const br_model_t *m, br_wtype wt)
{
    const br_model_config_t *c = &m->cfg;
    br_dims_t d = br_model_dims(m);
    BR_TRY(br_gguf_add_str(w, "general.architecture", "llama"));
    BR_TRY(br_gguf_add_str(w, "general.name", "braid"));
    BR_TRY(br_gguf_add_u32(w, "general.alignment", GGUF_ALIGN));
    BR_TRY(br_gguf_add_u32(w, "general.file_type", file_type(wt)));
    BR_TRY(br_gguf_add_u32(w, "llama.vocab_size", (uint32_t)d.V));
    BR_TRY(br_gguf_add_u32(w, "llama.context_length", (uint32_t)d.maxpos));
    BR_TRY(br_gguf_add_u32(w, "llama.embedding_length", (uint32_t)d.C));
    BR_TRY(br_gguf_add_u32(w, "llama.block_count", (uint32_t)d.L));
    BR_TRY(br_gguf_add_u32(w, "llama.feed_forward_length", (uint32_t)d.F));
    BR_TRY(br_gguf_add_u32(w, "llama.attention.head_count", (uint32_t)d.NH));
    BR_TRY(br_gguf_add_u32(w, "llama.attention.head_count_kv", (uint32_t)d.NKV));
    BR_TRY(br_gguf_add_u32(w, "llama.attention.key_length", (uint32_t)d.hd));
    BR_TRY(br_gguf_add_u32(w, "llama.attention.value_length", (uint32_t)d.hd));
    BR_TRY(br_gguf_add_u32(w, "llama.rope.dimension_count", (uint32_t)d.hd));
    BR_TRY(br_gguf_add_f32(w, "llama.rope.freq_base", c->rope_theta));
    BR_TRY(br_gguf_add_f32(w, "llama.attention.layer_norm_rms_epsilon", c->rms_norm_eps));
    if (br_config_has_moe_ffn(c)) { /* Mixtral: llama with expert FFNs */
        BR_TRY(br_gguf_add_u32(w, "llama.expert_count", (uint32_t)c->num_local_experts));
        BR_TRY(br_gguf_add_u32(w, "llama.expert_used_count",
                               (uint32_t)(c->num_experts_per_tok ? c->num_experts_per_tok : 1)));
    }
    if (c->bos_token_id >= 0) BR_TRY(br_gguf_add_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)c->bos_token_id));
    if (c->eos_token_id >= 0) BR_TRY(br_gguf_add_u32(w, "tokenizer.ggml.eos_token_id", (uint32_t)c->eos_token_id));
    return BR_OK;
}

/* Tensor i of m for the file: 1-D as its F32 parameters (*own stays NULL), a matrix stored as
 * wt in *own (Q/K rows permuted first); with experts > 0, the matrices i .. i + experts - 1
 * (the experts of one kind, consecutive in the table and in memory) stacked. */
static br_status export_tensor(const br_model_t *m, size_t i, br_wtype wt, void **own, const void **data, int perm,
                               size_t experts)
{
    br_tensor_info_t t = m->tensors[i];
    const float *p = m->params + t.offset;
    *own = NULL;
    if (t.ndim == 1) return *data = p, BR_OK;
    if (experts) {
        if (i + experts > m->n_tensors || m->tensors[i + experts - 1].offset != t.offset + (experts - 1) * t.numel)
            return br_error(BR_EINVAL, "GGUF: the experts of '%s' are not consecutive", t.name);
        t.shape[0] *= (int64_t)experts, t.numel *= experts;
    }
    float *tmp = NULL;
    if (perm) {
        br_dims_t d = br_model_dims(m);
        if (!(tmp = malloc(t.numel * sizeof *tmp))) return br_error(BR_ENOMEM, "out of memory");
        permute_rows((uint8_t *)tmp, (const uint8_t *)p, perm == 1 ? d.NH : d.NKV, d.hd,
                     (size_t)t.shape[1] * sizeof *tmp, true);
    }
    br_status s = br_lm_quantize_tensor(own, &t, tmp ? tmp : p, wt);
    free(tmp);
    *data = *own;
    return s;
}

/* Tensor i into the file under its llama.cpp name (expert j > 0: already written with
 * expert 0's stack); routers stay F32 as llama.cpp's quantizer keeps them. */
static br_status put_tensor(br_gguf_writer_t *w, const br_model_t *m, size_t i, br_wtype wt, void **own)
{
    const br_tensor_info_t *t = &m->tensors[i];
    char name[BR_TENSOR_NAME_MAX];
    int perm, expert;
    const void *data = NULL;
    BR_TRY(gguf_name(t->name, name, sizeof name, &perm, &expert));
    if (expert > 0) return BR_OK;
    size_t E = expert == 0 ? (size_t)m->cfg.num_local_experts : 0;
    br_wtype twt = t->ndim == 1 || strstr(name, "ffn_gate_inp") ? BR_WT_F32 : wt;
    BR_TRY(export_tensor(m, i, twt, own, &data, perm, E));
    size_t ne0 = (size_t)t->shape[t->ndim - 1], ne1 = t->ndim == 1 ? 0 : (size_t)t->shape[0];
    return br_gguf_add_tensor3(w, name, twt, ne0, ne1, E, data);
}

/* The vocabulary padded to the model's vocab_size with llama.cpp's "[PAD<i>]" UNUSED tokens
 * (as convert_hf_to_gguf.py pads a tokenizer smaller than the embedding). */
static br_status put_tokens(br_gguf_writer_t *w, const br_gguf_vocab_t *v, size_t V)
{
    const char **toks = malloc(V * sizeof *toks);
    int32_t *types = malloc(V * sizeof *types);
    float *scores = malloc(V * sizeof *scores);
    char *pads = malloc((V - v->n_tokens) * 32 + 1);
    br_status s = toks && types && pads && scores ? BR_OK : br_error(BR_ENOMEM, "out of memory");
    for (size_t i = 0; i < V && !s; i++) {
        if (i < v->n_tokens) {
            toks[i] = v->tokens[i], types[i] = v->token_type ? v->token_type[i] : 1; /* NORMAL */
            scores[i] = v->scores ? v->scores[i] : 0;
        } else {
            char *p = pads + (i - v->n_tokens) * 32;
            snprintf(p, 32, "[PAD%zu]", i);
            toks[i] = p, types[i] = 5, scores[i] = -1e9f; /* UNUSED */
        }
    }
    if (!s) s = br_gguf_add_str_array(w, "tokenizer.ggml.tokens", toks, V);
    if (!s) s = br_gguf_add_i32_array(w, "tokenizer.ggml.token_type", types, V);
    if (!s && v->scores) s = br_gguf_add_f32_array(w, "tokenizer.ggml.scores", scores, V);
    free(toks), free(types), free(pads), free(scores);
    return s;
}

static br_status put_vocab(br_gguf_writer_t *w, const br_model_t *m, const br_gguf_vocab_t *v)
{
    size_t V = (size_t)m->cfg.vocab_size;
    if (v->n_tokens > V || v->n_tokens == 0)
        return br_error(BR_EINVAL, "GGUF: the tokenizer has %zu tokens; the model's vocab_size is %zu", v->n_tokens, V);
    BR_TRY(br_gguf_add_str(w, "tokenizer.ggml.model", v->model));
    if (v->pre) BR_TRY(br_gguf_add_str(w, "tokenizer.ggml.pre", v->pre));
    BR_TRY(put_tokens(w, v, V));
    if (!strcmp(v->model, "gpt2")) BR_TRY(br_gguf_add_str_array(w, "tokenizer.ggml.merges", v->merges, v->n_merges));
    if (v->add_space_prefix) BR_TRY(br_gguf_add_bool(w, "tokenizer.ggml.add_space_prefix", v->add_space_prefix == 2));
    if (v->has_pad) BR_TRY(br_gguf_add_u32(w, "tokenizer.ggml.padding_token_id", (uint32_t)v->pad_id));
    if (v->add_bos) BR_TRY(br_gguf_add_bool(w, "tokenizer.ggml.add_bos_token", v->add_bos == 2));
    if (v->chat_template) BR_TRY(br_gguf_add_str(w, "tokenizer.chat_template", v->chat_template));
    if (v->has_bos && m->cfg.bos_token_id < 0 && (size_t)v->bos_id < V)
        BR_TRY(br_gguf_add_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)v->bos_id));
    if (v->has_eos && m->cfg.eos_token_id < 0 && (size_t)v->eos_id < V)
        BR_TRY(br_gguf_add_u32(w, "tokenizer.ggml.eos_token_id", (uint32_t)v->eos_id));
    static const char *const more[] = {"tokenizer.ggml.eot_token_id", "tokenizer.ggml.eom_token_id"};
    for (size_t i = 0; i < v->n_more_stops && i < 2; i++)
        if ((size_t)v->more_stops[i] < V) BR_TRY(br_gguf_add_u32(w, more[i], (uint32_t)v->more_stops[i]));
    return BR_OK;
}

br_status br_model_save_gguf(const br_model_t *m, const char *path, br_wtype wt)
{
    return br_model_save_gguf_vocab(m, path, wt, NULL);
}

br_status br_model_save_gguf_vocab(const br_model_t *m, const char *path, br_wtype wt,
                                   const br_gguf_vocab_t *vocab)
{
    if (!m->params || m->wt != BR_WT_F32)
        return br_error(BR_EUNSUPPORTED, "GGUF export needs F32 parameters; this model holds %s weights in "
                        "place (load it with br_model_load)", br_wtype_name(m->wt));
    if ((unsigned)wt >= BR_WT_COUNT || ggml_of_wt(wt) == UINT32_MAX)
        return br_error(BR_EUNSUPPORTED, "GGUF export writes F32, F16, BF16, Q8_0, Q4_0, Q4_K or Q6_K, "
                        "not %s", br_wtype_name(wt));
    BR_TRY(check_llama(&m->cfg));
    br_gguf_writer_t *w;
    BR_TRY(br_gguf_writer_create(&w));
    void **own = calloc(m->n_tensors, sizeof *own);
    br_status s = own ? put_hparams(w, m, wt) : br_error(BR_ENOMEM, "out of memory");
    if (!s && vocab) s = put_vocab(w, m, vocab);
    for (size_t i = 0; i < m->n_tensors && !s; i++) s = put_tensor(w, m, i, wt, &own[i]);
    if (!s) s = br_gguf_write(w, path);
    for (size_t i = 0; own && i < m->n_tensors; i++) br_free(own[i]);
    free(own);
    br_gguf_writer_free(w);
    return s;
}

/* A u32-like metadata value (any integer type, non-negative and <= INT32_MAX). */
static br_status get_int(const br_gguf_t *g, const char *key, bool required, int *out)
{
    const br_gguf_kv_t *kv = br_gguf_find_kv(g, key);
    if (!kv) return required ? br_error(BR_EFORMAT, "GGUF: the llama key '%s' is missing", key) : BR_OK;
    bool is_int = kv->type <= BR_GGUF_I32 || kv->type == BR_GGUF_U64 || kv->type == BR_GGUF_I64;
    if (!is_int || kv->type == BR_GGUF_F32 || kv->i < 0 || kv->i > INT32_MAX)
        return br_error(BR_EFORMAT, "GGUF: '%s' must be a non-negative integer", key);
    *out = (int)kv->i;
    return BR_OK;
}
static br_status get_float(const br_gguf_t *g, const char *key, float *out)
{
    const br_gguf_kv_t *kv = br_gguf_find_kv(g, key);
    if (!kv) return BR_OK;
    if (kv->type != BR_GGUF_F32 && kv->type != BR_GGUF_F64) return br_error(BR_EFORMAT, "GGUF: '%s' must be a float", key);
    *out = (float)kv->f;
    return BR_OK;
}

static br_status gguf_config(const br_gguf_t *g, br_model_config_t *c)
{
    br_config_defaults(c);
    const br_gguf_kv_t *arch = br_gguf_find_kv(g, "general.architecture");
    if (!arch || arch->type != BR_GGUF_STRING || strcmp(arch->str, "llama"))
        return br_error(BR_EUNSUPPORTED, "GGUF: general.architecture is '%s'; braid reads 'llama'",
                        arch && arch->type == BR_GGUF_STRING ? arch->str : "(missing)");
    int hd = 0, rot = 0, bos = -1, eos = -1;
    BR_TRY(get_int(g, "llama.embedding_length", true, &c->hidden_size));
    BR_TRY(get_int(g, "llama.feed_forward_length", true, &c->intermediate_size));
    BR_TRY(get_int(g, "llama.block_count", true, &c->num_hidden_layers));
    BR_TRY(get_int(g, "llama.attention.head_count", true, &c->num_attention_heads));
    c->num_key_value_heads = c->num_attention_heads;
    BR_TRY(get_int(g, "llama.attention.head_count_kv", false, &c->num_key_value_heads));
    BR_TRY(get_int(g, "llama.context_length", true, &c->max_position_embeddings));
    BR_TRY(get_int(g, "llama.attention.key_length", false, &hd));
    BR_TRY(get_int(g, "llama.rope.dimension_count", false, &rot));
    BR_TRY(get_int(g, "tokenizer.ggml.bos_token_id", false, &bos));
    BR_TRY(get_int(g, "tokenizer.ggml.eos_token_id", false, &eos));
    BR_TRY(get_float(g, "llama.rope.freq_base", &c->rope_theta));
    BR_TRY(get_float(g, "llama.attention.layer_norm_rms_epsilon", &c->rms_norm_eps));
    if (br_gguf_find_kv(g, "llama.rope.scaling.type"))
        return br_error(BR_EUNSUPPORTED, "GGUF: RoPE scaling (llama.rope.scaling.type) is not read yet");
    BR_TRY(get_int(g, "llama.expert_count", false, &c->num_local_experts));
    if (br_config_has_moe_ffn(c)) { /* Mixtral: softmax router, top-k renormalised (llama.cpp's llama) */
        BR_TRY(get_int(g, "llama.expert_used_count", true, &c->num_experts_per_tok));
        c->norm_topk_prob = true;
    }
    const br_gguf_tensor_t *emb = br_gguf_find_tensor(g, "token_embd.weight");
    if (!emb || emb->n_dims != 2 || emb->ne[1] > INT32_MAX)
        return br_error(BR_EFORMAT, "GGUF: token_embd.weight is missing or not 2-D");
    c->vocab_size = (int)emb->ne[1];
    c->head_dim = hd;
    c->bos_token_id = bos, c->eos_token_id = eos;
    c->tie_word_embeddings = !br_gguf_find_tensor(g, "output.weight");
    BR_TRY(br_config_validate(c));
    int hd_eff = c->head_dim ? c->head_dim : c->hidden_size / c->num_attention_heads;
    if (rot && rot != hd_eff)
        return br_error(BR_EUNSUPPORTED, "GGUF: partial RoPE (rope.dimension_count %d of head size %d)", rot, hd_eff);
    return BR_OK;
}

/* The file's tensor for table entry t, checked against its shape (an expert's matrix: its
 * slice of the stacked 3-D tensor, filled into *slice). */
static br_status find_matching(const br_gguf_t *g, const br_tensor_info_t *t, const br_gguf_tensor_t **out, int *perm,
                               br_gguf_tensor_t *slice)
{
    char name[BR_TENSOR_NAME_MAX];
    int expert;
    BR_TRY(gguf_name(t->name, name, sizeof name, perm, &expert));
    const br_gguf_tensor_t *gt = br_gguf_find_tensor(g, name);
    if (!gt) return br_error(BR_EFORMAT, "GGUF: tensor '%s' (braid's %s) is missing", name, t->name);
    if (expert >= 0) {
        if (gt->n_dims != 3 || gt->ne[2] <= (uint64_t)expert)
            return br_error(BR_EFORMAT, "GGUF: expert tensor '%s' is not 3-D with more than %d experts", name, expert);
        *slice = *gt;
        slice->nbytes = gt->nbytes / gt->ne[2];
        slice->data = (const uint8_t *)gt->data + (size_t)expert * slice->nbytes;
        slice->n_dims = 2, slice->ne[2] = 1;
        gt = slice;
    }
    uint64_t ne0 = (uint64_t)t->shape[t->ndim - 1], ne1 = t->ndim == 1 ? 1 : (uint64_t)t->shape[0];
    if (gt->n_dims != (uint32_t)t->ndim || gt->ne[0] != ne0 || gt->ne[1] != ne1)
        return br_error(BR_EFORMAT, "GGUF: tensor '%s' is %llu x %llu; the config needs %llu x %llu", name,
                        (unsigned long long)gt->ne[1], (unsigned long long)gt->ne[0],
                        (unsigned long long)ne1, (unsigned long long)ne0);
    if (t->ndim == 1 && gt->wt != BR_WT_F32)
        return br_error(BR_EUNSUPPORTED, "GGUF: 1-D tensor '%s' is %s; braid reads F32 norms", name,
                        br_wtype_name(gt->wt));
    *out = gt;
    return BR_OK;
}

/* Copies file tensor gt to dst (bytes of gt's type), un-permuting Q/K rows. */
static void copy_tensor(const br_model_config_t *c, void *dst, const br_gguf_tensor_t *gt, int perm)
{
    if (!perm) {
        memcpy(dst, gt->data, gt->nbytes);
        return;
    }
    permute_rows(dst, gt->data, (size_t)(perm == 1 ? c->num_attention_heads : c->num_key_value_heads),
                 (size_t)c->head_dim, gt->nbytes / gt->ne[1], false);
}

/* F32 tensor dst from file tensor gt of any type: the exact values its blocks hold. */
static br_status load_f32(const br_model_config_t *c, float *dst, const br_gguf_tensor_t *gt, int perm)
{
    if (gt->wt == BR_WT_F32) return copy_tensor(c, dst, gt, perm), BR_OK;
    uint8_t *tmp = br_alloc(gt->nbytes);
    if (!tmp) return br_error(BR_ENOMEM, "out of memory for tensor '%s'", gt->name);
    copy_tensor(c, tmp, gt, perm);
    size_t rows = (size_t)(gt->ne[1] * gt->ne[2] * gt->ne[3]); /* bounded by nbytes at parse */
    br_status s = br_wtype_dequantize(gt->wt, dst, tmp, rows, (size_t)gt->ne[0]);
    br_free(tmp);
    return s;
}

/* The type of the first matrix in found (table tab, n entries) not stored as F32, or BR_WT_F32
 * when all are (the view's type, named in errors). */
static br_wtype first_typed(const br_tensor_info_t *tab, const br_gguf_tensor_t *const *found, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (tab[i].ndim == 2 && found[i]->wt != BR_WT_F32) return found[i]->wt;
    return BR_WT_F32;
}

/* The F32 model (copied, so it can be trained and saved) of a file: every tensor as the exact
 * values it holds, or its dequantised values. */
static br_status open_f32(const br_model_config_t *c, const br_gguf_tensor_t *const *found, const int *perm,
                          br_model_t **out)
{
    br_model_t *m = NULL;
    BR_TRY(br_model_create(&m, c, false));
    br_status s = BR_OK;
    for (size_t i = 0; i < m->n_tensors && !s; i++)
        s = load_f32(c, m->params + m->tensors[i].offset, found[i], perm[i]);
    if (s) br_model_free(m);
    else *out = m;
    return s;
}

/* Drops the pages of [p, p + n) from this process: a tensor copied out of the read-only private
 * mapping is never read there again (and would be refaulted from the file if it were), so its
 * pages need not stay resident next to the copy. */
static void drop_pages(const void *p, size_t n)
{
    uintptr_t pg = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t a = ((uintptr_t)p + pg - 1) / pg * pg, b = ((uintptr_t)p + n) / pg * pg;
    if (b > a) madvise((void *)a, b - a, MADV_DONTNEED);
}

static void close_gguf(void *g) { br_gguf_close(g); }

/* A router (a mixture's ffn_gate_inp) runs in F32 only (llama.cpp's quantizer keeps it so). */
static bool needs_f32(const br_tensor_info_t *t) { return t->ndim == 1 || strstr(t->name, "block_sparse_moe.gate."); }

/* Tensor i of the view: a pointer into the mapping itself where it can be used there (types[i]
 * = the file's type), else an owned copy: Q and K matrices, whose rows GGUF permutes, and a
 * tensor at an address its type's loads cannot use (never seen with GGUF's alignment), keep
 * their type and have their mapped pages dropped; a router stored in another type than F32
 * becomes its F32 values. */
static br_status place_view_tensor(const br_model_config_t *c, const br_tensor_info_t *t,
                                   const br_gguf_tensor_t *gt, int perm, float **ptr, void **owned,
                                   br_wtype *type)
{
    size_t align = gt->wt == BR_WT_F32 ? sizeof(float) : sizeof(uint16_t); /* what kernels load */
    *type = gt->wt;
    if (!perm && (uintptr_t)gt->data % align == 0 && (gt->wt == BR_WT_F32 || !needs_f32(t))) {
        *ptr = (float *)(uintptr_t)gt->data;
        return BR_OK;
    }
    bool to_f32 = needs_f32(t) && gt->wt != BR_WT_F32;
    size_t bytes = to_f32 ? t->numel * sizeof(float) : gt->nbytes;
    if (!(*owned = br_alloc(bytes ? bytes : 1))) return br_error(BR_ENOMEM, "out of memory for tensor '%s'", gt->name);
    if (to_f32) {
        *type = BR_WT_F32;
        BR_TRY(load_f32(c, *owned, gt, perm));
    } else {
        copy_tensor(c, *owned, gt, perm);
    }
    drop_pages(gt->data, gt->nbytes);
    *ptr = *owned;
    return BR_OK;
}

/* Matrices of any types, each kept in its own (llama.cpp's Q4_K_M mixes Q4_K and Q6_K; some
 * files keep the output F32 or Q8_0, the embedding F16): a view into the mapping itself (norms
 * included), so loading makes no copy but for place_view_tensor's few.  wt: the type named in
 * errors.  Takes g over in every case. */
static br_status open_view(br_gguf_t *g, const br_model_config_t *c, br_wtype wt, const br_tensor_info_t *tab,
                           size_t n, const br_gguf_tensor_t *const *found, const int *perm, br_model_t **out)
{
    void **owned = calloc(n, sizeof *owned);
    float **ptrs = calloc(n, sizeof *ptrs);
    br_wtype *types = calloc(n, sizeof *types);
    br_status s = owned && ptrs && types ? BR_OK : br_error(BR_ENOMEM, "out of memory");
    for (size_t i = 0; i < n && !s; i++) s = place_view_tensor(c, &tab[i], found[i], perm[i], &ptrs[i], &owned[i], &types[i]);
    if (s) {
        for (size_t i = 0; owned && i < n; i++) br_free(owned[i]);
        free(owned), free(ptrs), free(types);
        br_gguf_close(g);
        return s;
    }
    s = br_lm_view_mapped_typed(out, c, wt, types, ptrs, owned, n, g, close_gguf);
    free(types);
    return s;
}

/* *kept: g now belongs to *out (or was released): the caller must not close it.  as_f32: every
 * file as an F32 model (br_model_load_gguf). */
static br_status open_model(br_gguf_t *g, br_model_t **out, bool *kept, bool as_f32)
{
    *kept = false;
    br_model_config_t c;
    BR_TRY(gguf_config(g, &c));
    size_t n = 0;
    br_model_table(&c, NULL, 0, &n); /* the parameter table, without allocating the parameters */
    br_tensor_info_t *tab = calloc(n ? n : 1, sizeof *tab);
    const br_gguf_tensor_t **found = calloc(n ? n : 1, sizeof *found);
    br_gguf_tensor_t *slices = calloc(n ? n : 1, sizeof *slices); /* experts' slices of 3-D tensors */
    int *perm = calloc(n ? n : 1, sizeof *perm);
    br_status s = tab && found && slices && perm ? BR_OK : br_error(BR_ENOMEM, "out of memory");
    if (!s) br_model_table(&c, tab, n, &n);
    for (size_t i = 0; i < n && !s; i++) s = find_matching(g, &tab[i], &found[i], &perm[i], &slices[i]);
    br_wtype wt = s ? BR_WT_F32 : first_typed(tab, found, n);
    if (!s && as_f32) s = open_f32(&c, found, perm, out);
    else if (!s) {
        *kept = true;
        s = open_view(g, &c, wt, tab, n, found, perm, out);
    }
    free(tab), free(found), free(slices), free(perm);
    return s;
}

static br_status open_gguf(br_model_t **out, const char *path, bool as_f32)
{
    *out = NULL;
    br_gguf_t *g;
    BR_TRY(br_gguf_open(&g, path));
    bool kept;
    br_status s = open_model(g, out, &kept, as_f32);
    if (!kept) br_gguf_close(g);
    if (s) {
        char why[400];
        snprintf(why, sizeof why, "%s", br_errmsg());
        return br_error(s, "%s: %s", path, why);
    }
    return BR_OK;
}

br_status br_model_open_gguf(br_model_t **out, const char *path) { return open_gguf(out, path, false); }
br_status br_model_load_gguf(br_model_t **out, const char *path) { return open_gguf(out, path, true); }
