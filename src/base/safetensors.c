#include "base/safetensors.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "base/fileio.h"

/* A header larger than this is not a model file (the format's own reader uses 100 MB). */
#define MAX_HEADER (100u << 20)

struct br_safetensors {
    br_mmap_t map;                /* owned when opened from a file */
    size_t n;
    br_st_tensor_t *tensors;
    size_t nmeta;
    char **meta_keys, **meta_vals;
    char *strings;                /* one block holding every name */
};

void br_st_close(br_safetensors_t *st)
{
    if (!st) return;
    br_mmap_close(&st->map);
    free(st->tensors);
    for (size_t i = 0; i < st->nmeta; i++) {
        free(st->meta_keys[i]);
        free(st->meta_vals[i]);
    }
    free(st->meta_keys);
    free(st->meta_vals);
    free(st->strings);
    free(st);
}

static int cmp_by_offset(const void *a, const void *b)
{
    const br_st_tensor_t *x = *(br_st_tensor_t *const *)a, *y = *(br_st_tensor_t *const *)b;
    const char *px = x->data, *py = y->data;
    if (px != py) return px < py ? -1 : 1;
    return x->nbytes < y->nbytes ? -1 : x->nbytes > y->nbytes;
}

static br_status parse_tensor(br_st_tensor_t *t, const char *name, json_t *v,
                              const unsigned char *data, size_t data_size)
{
    if (!json_is_object(v)) return br_error(BR_EFORMAT, "tensor '%s': entry is not an object", name);
    json_t *jd = json_object_get(v, "dtype"), *js = json_object_get(v, "shape"),
           *jo = json_object_get(v, "data_offsets");
    if (!json_is_string(jd)) return br_error(BR_EFORMAT, "tensor '%s': missing or non-string dtype", name);
    if (!json_is_array(js)) return br_error(BR_EFORMAT, "tensor '%s': missing or non-array shape", name);
    if (!json_is_array(jo) || json_array_size(jo) != 2)
        return br_error(BR_EFORMAT, "tensor '%s': data_offsets must be [begin, end]", name);
    if (br_dtype_parse(json_string_value(jd), &t->dtype) != BR_OK)
        return br_error(BR_EFORMAT, "tensor '%s': unknown dtype '%s'", name, json_string_value(jd));
    size_t nd = json_array_size(js);
    if (nd > BR_ST_MAX_DIMS) return br_error(BR_EFORMAT, "tensor '%s': %zu dimensions (max %d)", name, nd, BR_ST_MAX_DIMS);
    t->ndim = (int)nd;
    size_t numel = 1;
    for (size_t i = 0; i < nd; i++) {
        json_t *d = json_array_get(js, i);
        if (!json_is_integer(d) || json_integer_value(d) < 0)
            return br_error(BR_EFORMAT, "tensor '%s': shape[%zu] is not a non-negative integer", name, i);
        json_int_t x = json_integer_value(d);
        t->shape[i] = x;
        if (x != 0 && numel > SIZE_MAX / (size_t)x)
            return br_error(BR_EFORMAT, "tensor '%s': shape overflows", name);
        numel *= (size_t)x;
    }
    t->numel = numel;
    json_t *jb = json_array_get(jo, 0), *je = json_array_get(jo, 1);
    if (!json_is_integer(jb) || !json_is_integer(je) || json_integer_value(jb) < 0 || json_integer_value(je) < 0)
        return br_error(BR_EFORMAT, "tensor '%s': data_offsets are not non-negative integers", name);
    size_t b = (size_t)json_integer_value(jb), e = (size_t)json_integer_value(je);
    if (b > e) return br_error(BR_EFORMAT, "tensor '%s': data_offsets begin %zu > end %zu", name, b, e);
    if (e > data_size)
        return br_error(BR_EFORMAT, "tensor '%s': data_offsets end %zu is past the data area (%zu bytes)", name, e, data_size);
    size_t es = br_dtype_size(t->dtype);
    if (numel > SIZE_MAX / es || numel * es != e - b)
        return br_error(BR_EFORMAT, "tensor '%s': %s shape needs %zu bytes but data_offsets span %zu",
                        name, br_dtype_name(t->dtype), numel > SIZE_MAX / es ? SIZE_MAX : numel * es, e - b);
    t->nbytes = e - b;
    t->data = data + b;
    return BR_OK;
}

br_status br_st_parse(br_safetensors_t **out, const void *buf, size_t size)
{
    *out = NULL;
    const unsigned char *p = buf;
    if (size < 8) return br_error(BR_EFORMAT, "file is %zu bytes, shorter than the 8-byte header length", size);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = hlen << 8 | p[i];
    if (hlen > size - 8)
        return br_error(BR_EFORMAT, "header length %llu runs past the end of the file (%zu bytes)",
                        (unsigned long long)hlen, size);
    if (hlen > MAX_HEADER) return br_error(BR_EFORMAT, "header length %llu exceeds %u bytes", (unsigned long long)hlen, MAX_HEADER);
    if (hlen < 2) return br_error(BR_EFORMAT, "header length %llu is too small for a JSON object", (unsigned long long)hlen);
    json_error_t jerr;
    json_t *root = json_loadb((const char *)p + 8, (size_t)hlen, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) return br_error(BR_EFORMAT, "header JSON: %s (at byte %d)", jerr.text, jerr.position);
    if (!json_is_object(root)) {
        json_decref(root);
        return br_error(BR_EFORMAT, "header JSON is not an object");
    }
    const unsigned char *data = p + 8 + hlen;
    size_t data_size = size - 8 - (size_t)hlen;
    br_safetensors_t *st = calloc(1, sizeof *st);
    size_t cap = json_object_size(root), names_bytes = 0;
    const char *key;
    json_t *val;
    json_object_foreach(root, key, val) names_bytes += strlen(key) + 1;
    br_status s = BR_OK;
    if (!st || !(st->tensors = calloc(cap + 1, sizeof *st->tensors)) || !(st->strings = malloc(names_bytes + 1))) {
        s = br_error(BR_ENOMEM, "out of memory reading a safetensors header");
        goto done;
    }
    /* jansson keeps insertion order: tensors stay in file order. */
    char *sp = st->strings;
    json_object_foreach(root, key, val) {
        if (strcmp(key, "__metadata__") == 0) {
            if (!json_is_object(val)) {
                s = br_error(BR_EFORMAT, "__metadata__ is not an object");
                goto done;
            }
            size_t nm = json_object_size(val);
            st->meta_keys = calloc(nm + 1, sizeof(char *));
            st->meta_vals = calloc(nm + 1, sizeof(char *));
            if (!st->meta_keys || !st->meta_vals) {
                s = br_error(BR_ENOMEM, "out of memory");
                goto done;
            }
            const char *mk;
            json_t *mv;
            json_object_foreach(val, mk, mv) {
                if (!json_is_string(mv)) {
                    s = br_error(BR_EFORMAT, "__metadata__['%s'] is not a string", mk);
                    goto done;
                }
                st->meta_keys[st->nmeta] = strdup(mk);
                st->meta_vals[st->nmeta] = strdup(json_string_value(mv));
                st->nmeta++;
            }
            continue;
        }
        br_st_tensor_t *t = &st->tensors[st->n];
        size_t kl = strlen(key) + 1;
        memcpy(sp, key, kl);
        t->name = sp;
        sp += kl;
        if ((s = parse_tensor(t, key, val, data, data_size)) != BR_OK) goto done;
        st->n++;
    }
    /* No two tensors may share bytes. */
    if (st->n > 1) {
        br_st_tensor_t **order = malloc(st->n * sizeof *order);
        if (!order) {
            s = br_error(BR_ENOMEM, "out of memory");
            goto done;
        }
        for (size_t i = 0; i < st->n; i++) order[i] = &st->tensors[i];
        qsort(order, st->n, sizeof *order, cmp_by_offset);
        for (size_t i = 1; i < st->n; i++) {
            const char *prev_end = (const char *)order[i - 1]->data + order[i - 1]->nbytes;
            if (order[i]->nbytes && (const char *)order[i]->data < prev_end) {
                s = br_error(BR_EFORMAT, "tensor '%s' overlaps tensor '%s'", order[i]->name, order[i - 1]->name);
                break;
            }
        }
        free(order);
    }
done:
    json_decref(root);
    if (s != BR_OK) {
        br_st_close(st);
        return s;
    }
    *out = st;
    return BR_OK;
}

br_status br_st_open(br_safetensors_t **out, const char *path)
{
    *out = NULL;
    br_mmap_t m;
    BR_TRY(br_mmap_open(&m, path));
    br_safetensors_t *st;
    br_status s = br_st_parse(&st, m.data, m.size);
    if (s != BR_OK) {
        br_mmap_close(&m);
        return br_error_wrap(s, "%s", path);
    }
    st->map = m;
    *out = st;
    return BR_OK;
}

size_t br_st_count(const br_safetensors_t *st) { return st->n; }
const br_st_tensor_t *br_st_tensor(const br_safetensors_t *st, size_t i) { return i < st->n ? &st->tensors[i] : NULL; }

const br_st_tensor_t *br_st_find(const br_safetensors_t *st, const char *name)
{
    for (size_t i = 0; i < st->n; i++)
        if (strcmp(st->tensors[i].name, name) == 0) return &st->tensors[i];
    return NULL;
}

size_t br_st_metadata_count(const br_safetensors_t *st) { return st->nmeta; }
const char *br_st_metadata_key(const br_safetensors_t *st, size_t i) { return i < st->nmeta ? st->meta_keys[i] : NULL; }
const char *br_st_metadata_value(const br_safetensors_t *st, size_t i) { return i < st->nmeta ? st->meta_vals[i] : NULL; }

const char *br_st_metadata_get(const br_safetensors_t *st, const char *key)
{
    for (size_t i = 0; i < st->nmeta; i++)
        if (strcmp(st->meta_keys[i], key) == 0) return st->meta_vals[i];
    return NULL;
}

br_status br_st_read_f32(const br_st_tensor_t *t, float *out, size_t want)
{
    if (t->numel != want)
        return br_error(BR_EFORMAT, "tensor '%s' has %zu elements, expected %zu", t->name, t->numel, want);
    const unsigned char *src = t->data;
    switch (t->dtype) {
    case BR_DT_F32: memcpy(out, src, want * 4); return BR_OK;
    case BR_DT_F64:
        for (size_t i = 0; i < want; i++) {
            double d;
            memcpy(&d, src + 8 * i, 8);
            out[i] = (float)d;
        }
        return BR_OK;
    case BR_DT_F16: case BR_DT_BF16:
        for (size_t i = 0; i < want; i++) {
            uint16_t h = (uint16_t)(src[2 * i] | src[2 * i + 1] << 8);
            out[i] = t->dtype == BR_DT_F16 ? br_f16_to_f32(h) : br_bf16_to_f32(h);
        }
        return BR_OK;
    default:
        return br_error(BR_EUNSUPPORTED, "tensor '%s': dtype %s is not a floating type", t->name, br_dtype_name(t->dtype));
    }
}

br_status br_st_load_f32(const br_safetensors_t *st, const char *name, float *out, int ndim,
                         const int64_t *shape)
{
    const br_st_tensor_t *t = br_st_find(st, name);
    if (!t) return br_error(BR_ENOTFOUND, "tensor '%s' is missing", name);
    int same = t->ndim == ndim;
    size_t want = 1;
    for (int i = 0; i < ndim; i++) {
        want *= (size_t)shape[i];
        same = same && t->shape[i] == shape[i];
    }
    if (!same) {
        char got[160] = "", exp[160] = "";
        for (int i = 0; i < t->ndim; i++)
            snprintf(got + strlen(got), sizeof got - strlen(got), "%s%lld", i ? ", " : "", (long long)t->shape[i]);
        for (int i = 0; i < ndim; i++)
            snprintf(exp + strlen(exp), sizeof exp - strlen(exp), "%s%lld", i ? ", " : "", (long long)shape[i]);
        return br_error(BR_EFORMAT, "tensor '%s' has shape [%s], expected [%s]", name, got, exp);
    }
    return br_st_read_f32(t, out, want);
}

/* ---------------------------------------------------------------- writer */

typedef struct {
    char *name;
    br_dtype dtype;
    int ndim;
    int64_t shape[BR_ST_MAX_DIMS];
    size_t nbytes;
    const void *data;
    void *owned;
} wtensor_t;

struct br_st_writer {
    wtensor_t *t;
    size_t n, cap;
    json_t *meta;
};

br_status br_st_writer_create(br_st_writer_t **out)
{
    br_st_writer_t *w = calloc(1, sizeof *w);
    if (!w || !(w->meta = json_object())) {
        free(w);
        return br_error(BR_ENOMEM, "out of memory");
    }
    *out = w;
    return BR_OK;
}

void br_st_writer_free(br_st_writer_t *w)
{
    if (!w) return;
    for (size_t i = 0; i < w->n; i++) {
        free(w->t[i].name);
        free(w->t[i].owned);
    }
    free(w->t);
    json_decref(w->meta);
    free(w);
}

static br_status add_entry(br_st_writer_t *w, const char *name, br_dtype dtype, int ndim,
                           const int64_t *shape, wtensor_t **slot)
{
    if (!name || !*name || strcmp(name, "__metadata__") == 0)
        return br_error(BR_EINVAL, "invalid tensor name '%s'", name ? name : "");
    if (ndim < 0 || ndim > BR_ST_MAX_DIMS) return br_error(BR_EINVAL, "tensor '%s': %d dimensions", name, ndim);
    if ((unsigned)dtype >= BR_DT_COUNT) return br_error(BR_EINVAL, "tensor '%s': bad dtype", name);
    for (size_t i = 0; i < w->n; i++)
        if (strcmp(w->t[i].name, name) == 0) return br_error(BR_EINVAL, "tensor '%s' added twice", name);
    if (w->n == w->cap) {
        size_t nc = w->cap ? w->cap * 2 : 64;
        wtensor_t *nt = realloc(w->t, nc * sizeof *nt);
        if (!nt) return br_error(BR_ENOMEM, "out of memory");
        w->t = nt;
        w->cap = nc;
    }
    wtensor_t *t = &w->t[w->n];
    memset(t, 0, sizeof *t);
    size_t numel = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0) return br_error(BR_EINVAL, "tensor '%s': negative dimension", name);
        numel *= (size_t)shape[i];
        t->shape[i] = shape[i];
    }
    if (!(t->name = strdup(name))) return br_error(BR_ENOMEM, "out of memory");
    t->dtype = dtype;
    t->ndim = ndim;
    t->nbytes = numel * br_dtype_size(dtype);
    w->n++;
    *slot = t;
    return BR_OK;
}

br_status br_st_writer_add(br_st_writer_t *w, const char *name, br_dtype dtype, int ndim,
                           const int64_t *shape, const void *data)
{
    wtensor_t *t = NULL;
    BR_TRY(add_entry(w, name, dtype, ndim, shape, &t));
    t->data = data;
    return BR_OK;
}

br_status br_st_writer_add_f32(br_st_writer_t *w, const char *name, br_dtype dtype, int ndim,
                               const int64_t *shape, const float *data)
{
    if (dtype != BR_DT_F32 && dtype != BR_DT_F16 && dtype != BR_DT_BF16)
        return br_error(BR_EINVAL, "tensor '%s': can store float data as F32, F16 or BF16, not %s", name, br_dtype_name(dtype));
    wtensor_t *t = NULL;
    BR_TRY(add_entry(w, name, dtype, ndim, shape, &t));
    if (dtype == BR_DT_F32) {
        t->data = data;
        return BR_OK;
    }
    size_t n = t->nbytes / 2;
    unsigned char *buf = malloc(t->nbytes ? t->nbytes : 1);
    if (!buf) return br_error(BR_ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        uint16_t h = dtype == BR_DT_F16 ? br_f32_to_f16(data[i]) : br_f32_to_bf16(data[i]);
        buf[2 * i] = (unsigned char)h;
        buf[2 * i + 1] = (unsigned char)(h >> 8);
    }
    t->owned = buf;
    t->data = buf;
    return BR_OK;
}

br_status br_st_writer_set_metadata(br_st_writer_t *w, const char *key, const char *value)
{
    if (json_object_set_new(w->meta, key, json_string(value)) != 0)
        return br_error(BR_EINVAL, "metadata '%s': value is not valid UTF-8", key);
    return BR_OK;
}

br_status br_st_writer_save(br_st_writer_t *w, const char *path)
{
    json_t *root = json_object();
    if (!root) return br_error(BR_ENOMEM, "out of memory");
    if (json_object_size(w->meta)) json_object_set(root, "__metadata__", w->meta);
    size_t off = 0;
    for (size_t i = 0; i < w->n; i++) {
        wtensor_t *t = &w->t[i];
        json_t *shape = json_array();
        for (int d = 0; d < t->ndim; d++) json_array_append_new(shape, json_integer(t->shape[d]));
        json_t *e = json_pack("{s:s, s:o, s:[I, I]}", "dtype", br_dtype_name(t->dtype), "shape", shape,
                              "data_offsets", (json_int_t)off, (json_int_t)(off + t->nbytes));
        if (!e || json_object_set_new(root, t->name, e) != 0) {
            json_decref(root);
            return br_error(BR_EINVAL, "tensor '%s': name is not valid UTF-8", t->name);
        }
        off += t->nbytes;
    }
    char *hdr = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(root);
    if (!hdr) return br_error(BR_ENOMEM, "out of memory");
    size_t hl = strlen(hdr), padded = (hl + 7) / 8 * 8; /* data area 8-byte aligned, as the reference pads */
    br_atomic_file_t af;
    br_status s = br_atomic_open(&af, path);
    if (s != BR_OK) {
        free(hdr);
        return s;
    }
    unsigned char len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (unsigned char)((uint64_t)padded >> (8 * i));
    int ok = fwrite(len8, 1, 8, af.f) == 8 && fwrite(hdr, 1, hl, af.f) == hl;
    for (size_t i = hl; ok && i < padded; i++) ok = fputc(' ', af.f) != EOF;
    for (size_t i = 0; ok && i < w->n; i++)
        ok = w->t[i].nbytes == 0 || fwrite(w->t[i].data, 1, w->t[i].nbytes, af.f) == w->t[i].nbytes;
    free(hdr);
    if (!ok) {
        br_atomic_abort(&af);
        return br_error(BR_EIO, "%s: write failed", path);
    }
    return br_atomic_commit(&af);
}
