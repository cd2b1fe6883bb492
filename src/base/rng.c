#include "base/rng.h"

#include <math.h>

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

void br_rng_seed(br_rng_t *r, uint64_t seed)
{
    uint64_t x = seed;
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&x);
}

void br_rng_seed_stream(br_rng_t *r, uint64_t seed, uint64_t stream)
{
    uint64_t x = seed ^ (stream * 0xd1b54a32d192ed03ull);
    br_rng_seed(r, splitmix64(&x));
}

uint64_t br_rng_u64(br_rng_t *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

uint32_t br_rng_u32(br_rng_t *r) { return (uint32_t)(br_rng_u64(r) >> 32); }

uint64_t br_rng_below(br_rng_t *r, uint64_t n)
{
    uint64_t limit = -n % n; /* 2^64 mod n */
    for (;;) {
        uint64_t x = br_rng_u64(r);
        if (x >= limit) return x % n;
    }
}

float br_rng_float(br_rng_t *r) { return (float)(br_rng_u64(r) >> 40) * 0x1.0p-24f; }
double br_rng_double(br_rng_t *r) { return (double)(br_rng_u64(r) >> 11) * 0x1.0p-53; }

double br_rng_normal(br_rng_t *r)
{
    double u1 = br_rng_double(r), u2 = br_rng_double(r);
    if (u1 < 1e-300) u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

void br_rng_fill_normal(br_rng_t *r, float *out, size_t n, float std)
{
    for (size_t i = 0; i < n; i += 2) {
        double u1 = br_rng_double(r), u2 = br_rng_double(r);
        if (u1 < 1e-300) u1 = 1e-300;
        double rad = sqrt(-2.0 * log(u1)), th = 6.283185307179586 * u2;
        out[i] = (float)(rad * cos(th)) * std;
        if (i + 1 < n) out[i + 1] = (float)(rad * sin(th)) * std;
    }
}

void br_rng_fill_uniform(br_rng_t *r, float *out, size_t n, float lo, float hi)
{
    for (size_t i = 0; i < n; i++) out[i] = lo + (hi - lo) * br_rng_float(r);
}

uint64_t br_hash64(const void *data, size_t n, uint64_t seed)
{
    /* FNV-1a over bytes, then a splitmix finaliser for avalanche. */
    const unsigned char *p = data;
    uint64_t h = 0xcbf29ce484222325ull ^ seed;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ull;
    }
    return splitmix64(&h);
}
