/* Token shards (format in data.h) and the weighted mixed-domain window sampler. */
#include "text/data.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/fileio.h"
#include "base/rng.h"

#define SHARD_HEADER 64
static const char shard_magic[8] = {'B', 'R', 'A', 'I', 'D', 'T', 'O', 'K'};

struct br_shard {
    br_mmap_t map;
    const unsigned char *tokens;
    size_t ntokens;
    uint64_t nbytes;
    uint32_t vocab, width;
};

static uint32_t rd32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t rd64(const unsigned char *p) { return rd32(p) | (uint64_t)rd32(p + 4) << 32; }

static void wr32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}

static void wr64(unsigned char *p, uint64_t v)
{
    wr32(p, (uint32_t)v);
    wr32(p + 4, (uint32_t)(v >> 32));
}

br_status br_shard_open(br_shard_t **out, const char *path)
{
    *out = NULL;
    br_shard_t *s = calloc(1, sizeof *s);
    if (!s) return br_error(BR_ENOMEM, "%s: out of memory", path);
    br_status st = br_mmap_open(&s->map, path);
    if (st) {
        free(s);
        return st;
    }
    const unsigned char *h = s->map.data;
    const char *why = NULL;
    if (s->map.size < SHARD_HEADER) why = "shorter than the 64-byte header";
    else if (memcmp(h, shard_magic, 8)) why = "bad magic (not a braid token shard)";
    else if (rd32(h + 8) != 1) why = "unsupported version (braid reads version 1)";
    else if (rd32(h + 16) != 2 && rd32(h + 16) != 4) why = "bytes per token must be 2 or 4";
    else if (rd32(h + 12) == 0 || (rd32(h + 16) == 2 && rd32(h + 12) > 65536)) why = "vocab size does not fit the token width";
    else {
        s->width = rd32(h + 16);
        s->vocab = rd32(h + 12);
        uint64_t n = rd64(h + 24);
        if (n > (s->map.size - SHARD_HEADER) / s->width || SHARD_HEADER + n * s->width != s->map.size)
            why = "token count does not match the file size (truncated?)";
        s->ntokens = (size_t)n;
        s->nbytes = rd64(h + 32);
        s->tokens = h + SHARD_HEADER;
    }
    if (why) {
        br_shard_close(s);
        return br_error(BR_EFORMAT, "%s: %s", path, why);
    }
    *out = s;
    return BR_OK;
}

void br_shard_close(br_shard_t *s)
{
    if (!s) return;
    br_mmap_close(&s->map);
    free(s);
}

size_t br_shard_ntokens(const br_shard_t *s) { return s->ntokens; }
uint64_t br_shard_nbytes(const br_shard_t *s) { return s->nbytes; }
uint32_t br_shard_vocab(const br_shard_t *s) { return s->vocab; }

br_status br_shard_read(const br_shard_t *s, size_t start, size_t n, int32_t *out)
{
    if (start > s->ntokens || n > s->ntokens - start)
        return br_error(BR_ERANGE, "shard read [%zu, %zu) past its %zu tokens", start, start + n, s->ntokens);
    if (s->width == 2) {
        const unsigned char *p = s->tokens + 2 * start;
        for (size_t i = 0; i < n; i++) out[i] = (int32_t)(p[2 * i] | (uint32_t)p[2 * i + 1] << 8);
    } else {
        const unsigned char *p = s->tokens + 4 * start;
        for (size_t i = 0; i < n; i++) out[i] = (int32_t)rd32(p + 4 * i);
    }
    for (size_t i = 0; i < n; i++)
        if ((uint32_t)out[i] >= s->vocab)
            return br_error(BR_EFORMAT, "shard token %zu is %u, not below the vocab size %u", start + i,
                            (uint32_t)out[i], s->vocab);
    return BR_OK;
}

size_t br_shard_nwindows(const br_shard_t *s, size_t T)
{
    return T == 0 || s->ntokens < T + 1 ? 0 : (s->ntokens - 1) / T;
}

br_status br_shard_window(const br_shard_t *s, size_t n, size_t T, int32_t *out)
{
    if (T == 0) return br_error(BR_EINVAL, "shard window: T must be > 0");
    if (n >= br_shard_nwindows(s, T))
        return br_error(BR_ERANGE, "shard window %zu of length %zu: the shard holds %zu such windows", n, T + 1,
                        br_shard_nwindows(s, T));
    return br_shard_read(s, n * T, T + 1, out);
}

br_status br_shard_write(const char *path, const uint32_t *tokens, size_t n, uint32_t vocab, uint64_t nbytes)
{
    if (vocab == 0) return br_error(BR_EINVAL, "%s: vocab size 0", path);
    for (size_t i = 0; i < n; i++)
        if (tokens[i] >= vocab) return br_error(BR_ERANGE, "%s: token %zu is %u, not below the vocab size %u", path, i, tokens[i], vocab);
    uint32_t width = vocab <= 65536 ? 2 : 4;
    unsigned char h[SHARD_HEADER] = {0};
    memcpy(h, shard_magic, 8);
    wr32(h + 8, 1);
    wr32(h + 12, vocab);
    wr32(h + 16, width);
    wr64(h + 24, n);
    wr64(h + 32, nbytes);
    br_atomic_file_t af;
    BR_TRY(br_atomic_open(&af, path));
    int ok = fwrite(h, 1, sizeof h, af.f) == sizeof h;
    unsigned char buf[8192];
    size_t per = sizeof buf / width;
    for (size_t i = 0; ok && i < n; i += per) {
        size_t m = n - i < per ? n - i : per;
        for (size_t k = 0; k < m; k++) {
            if (width == 2) {
                buf[2 * k] = (unsigned char)tokens[i + k];
                buf[2 * k + 1] = (unsigned char)(tokens[i + k] >> 8);
            } else wr32(buf + 4 * k, tokens[i + k]);
        }
        ok = fwrite(buf, width, m, af.f) == m;
    }
    if (!ok) {
        br_atomic_abort(&af);
        return br_error(BR_EIO, "%s: write failed: %s", path, strerror(errno));
    }
    return br_atomic_commit(&af);
}

/* ---- mixture ---------------------------------------------------------------------------- */

typedef struct {
    char name[64];
    double weight;
    br_shard_t *shard;
} mix_domain_t;

struct br_mix {
    mix_domain_t *d;
    size_t n;
    double total;
    uint32_t vocab;
    br_rng_t rng;
    uint64_t batches, rows;
};

void br_mix_free(br_mix_t *m)
{
    if (!m) return;
    for (size_t i = 0; i < m->n; i++) br_shard_close(m->d[i].shard);
    free(m->d);
    free(m);
}

static br_status parse_item(mix_domain_t *d, const char *s, size_t len)
{
    while (len && isspace((unsigned char)*s)) s++, len--;
    while (len && isspace((unsigned char)s[len - 1])) len--;
    const char *eq = memchr(s, '=', len);
    size_t nl = eq ? (size_t)(eq - s) : len;
    if (nl == 0 || nl >= sizeof d->name) return br_error(BR_EINVAL, "mix: domain name in \"%.*s\" is empty or too long", (int)len, s);
    for (size_t i = 0; i < nl; i++)
        if (!isalnum((unsigned char)s[i]) && !strchr("_-.", s[i]))
            return br_error(BR_EINVAL, "mix: domain name \"%.*s\" may hold only letters, digits, '_', '-', '.'", (int)nl, s);
    if (nl == 1 && s[0] == '.') return br_error(BR_EINVAL, "mix: bad domain name \".\"");
    if (nl == 2 && s[0] == '.' && s[1] == '.') return br_error(BR_EINVAL, "mix: bad domain name \"..\"");
    memcpy(d->name, s, nl);
    d->name[nl] = 0;
    d->weight = 1;
    if (eq) {
        char num[64];
        size_t wl = len - nl - 1;
        if (wl == 0 || wl >= sizeof num) return br_error(BR_EINVAL, "mix: weight of %s is missing or too long", d->name);
        memcpy(num, eq + 1, wl);
        num[wl] = 0;
        char *end;
        errno = 0;
        d->weight = strtod(num, &end);
        if (*end || errno || !isfinite(d->weight) || d->weight < 0)
            return br_error(BR_EINVAL, "mix: weight of %s must be a number >= 0, got \"%s\"", d->name, num);
    }
    return BR_OK;
}

br_status br_mix_create(br_mix_t **out, const char *tok_dir, const char *mix_spec, const char *split, uint64_t seed)
{
    *out = NULL;
    if (!tok_dir || !mix_spec || !split) return br_error(BR_EINVAL, "mix: tok_dir, mix and split are required");
    if (!*split || strchr(split, '/')) return br_error(BR_EINVAL, "mix: bad split name \"%s\"", split);
    br_mix_t *m = calloc(1, sizeof *m);
    if (!m) return br_error(BR_ENOMEM, "mix: out of memory");
    size_t cap = 1;
    for (const char *p = mix_spec; *p; p++) cap += *p == ',';
    m->d = calloc(cap, sizeof *m->d);
    if (!m->d) {
        free(m);
        return br_error(BR_ENOMEM, "mix: out of memory");
    }
    br_status st = BR_OK;
    const char *p = mix_spec;
    while (st == BR_OK) {
        const char *c = strchr(p, ',');
        size_t len = c ? (size_t)(c - p) : strlen(p);
        mix_domain_t *d = &m->d[m->n];
        st = parse_item(d, p, len);
        if (st) break;
        for (size_t i = 0; i < m->n && st == BR_OK; i++)
            if (!strcmp(m->d[i].name, d->name)) st = br_error(BR_EINVAL, "mix: domain %s is listed twice", d->name);
        if (st) break;
        m->n++;
        if (d->weight > 0) {
            br_buf_t fileb = BR_BUF_INIT;
            st = br_buf_path(&fileb, tok_dir, d->name); /* TOK_DIR/DOMAIN/SPLIT.bin */
            if (st == BR_OK) st = br_buf_printf(&fileb, "/%s.bin", split);
            const char *file = br_buf_str(&fileb);
            if (st == BR_OK && !br_file_exists(file))
                st = br_error(BR_ENOTFOUND, "mix: domain %s has no %s shard (%s); run 'braid data prepare'", d->name, split, file);
            if (st == BR_OK) st = br_shard_open(&d->shard, file);
            if (st == BR_OK && br_shard_ntokens(d->shard) == 0) st = br_error(BR_EINVAL, "mix: %s is empty", file);
            if (st == BR_OK && m->vocab && br_shard_vocab(d->shard) != m->vocab)
                st = br_error(BR_EINVAL, "mix: %s has vocab %u but %s has %u (different tokenizers)", file,
                              br_shard_vocab(d->shard), m->d[0].name, m->vocab);
            if (st == BR_OK) m->vocab = br_shard_vocab(d->shard);
            br_buf_free(&fileb);
            m->total += d->weight;
        }
        if (!c) break;
        p = c + 1;
    }
    if (st == BR_OK && m->total <= 0) st = br_error(BR_EINVAL, "mix: \"%s\" gives no domain a positive weight", mix_spec);
    if (st) {
        br_mix_free(m);
        return st;
    }
    br_rng_seed(&m->rng, seed);
    *out = m;
    return BR_OK;
}

size_t br_mix_ndomains(const br_mix_t *m) { return m->n; }
const char *br_mix_domain(const br_mix_t *m, size_t i) { return i < m->n ? m->d[i].name : NULL; }
uint32_t br_mix_vocab(const br_mix_t *m) { return m->vocab; }

br_status br_mix_next_batch(br_mix_t *m, int32_t *tokens, size_t B, size_t T)
{
    if (T == 0) return br_error(BR_EINVAL, "mix: window length T must be > 0");
    for (size_t i = 0; i < m->n; i++)
        if (m->d[i].shard && br_shard_ntokens(m->d[i].shard) < T + 1)
            return br_error(BR_EINVAL, "mix: domain %s has %zu tokens, fewer than a window of %zu", m->d[i].name,
                            br_shard_ntokens(m->d[i].shard), T + 1);
    for (size_t b = 0; b < B; b++) {
        double u = br_rng_double(&m->rng) * m->total, acc = 0;
        size_t k = 0;
        for (size_t i = 0; i < m->n; i++) {
            if (m->d[i].weight <= 0) continue;
            k = i; /* rounding past the end leaves the last positive weight */
            acc += m->d[i].weight;
            if (u < acc) break;
        }
        const br_shard_t *s = m->d[k].shard;
        size_t start = (size_t)br_rng_below(&m->rng, br_shard_ntokens(s) - T);
        BR_TRY(br_shard_read(s, start, T + 1, tokens + b * (T + 1)));
        m->rows++;
    }
    m->batches++;
    return BR_OK;
}

void br_mix_get_state(const br_mix_t *m, br_mix_state_t *st)
{
    memset(st, 0, sizeof *st);
    for (int i = 0; i < 4; i++) st->words[i] = m->rng.s[i];
    st->words[4] = m->batches;
    st->words[5] = m->rows;
}

void br_mix_set_state(br_mix_t *m, const br_mix_state_t *st)
{
    for (int i = 0; i < 4; i++) m->rng.s[i] = st->words[i];
    m->batches = st->words[4];
    m->rows = st->words[5];
}
