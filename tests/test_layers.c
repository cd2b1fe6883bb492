/* The layer order of docs/design.md, checked on the source tree: a file in src/<layer>/ may
 * include headers of its own layer and of the layers listed for it below, nothing else (and
 * never cli/).  A new layer or a new edge is a design decision: change the table here and the
 * picture in docs/design.md together.  Also checks that no library function runs past
 * MAX_FN_LINES without a comment saying why (a comment line starting "long:" in the N_PREV lines
 * above its opening brace). */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define MAX_FN_LINES 120
#define N_PREV 8 /* lines above a body searched for "long:" */

typedef struct {
    const char *layer;
    const char *may_use; /* space-separated */
} layer_rule;

static const layer_rule rules[] = {
    {"base", ""},
    {"kernels", "base"},
    {"text", "base"},
    {"nn", "base kernels"},
    {"lm", "base kernels text nn"},
    {"moe", "base kernels text nn lm"},
    {"guard", "base kernels text nn lm"},
    {"rl", "base kernels nn"},
    {"serve", "base kernels text nn lm moe guard"},
    {"plot", "base"},
};
#define N_RULES (sizeof rules / sizeof rules[0])

static const layer_rule *rule_of(const char *layer) {
    for (size_t i = 0; i < N_RULES; i++)
        if (!strcmp(rules[i].layer, layer)) return &rules[i];
    return NULL;
}

/* 1 when a file in layer `from` may include a header of folder `to`. */
static int layer_allows(const char *from, const char *to) {
    if (!strcmp(from, to)) return 1;
    const layer_rule *r = rule_of(from);
    if (!r) return 0;
    size_t n = strlen(to);
    for (const char *p = r->may_use; (p = strstr(p, to)) != NULL; p += n) {
        int starts = p == r->may_use || p[-1] == ' ';
        int ends = p[n] == '\0' || p[n] == ' ';
        if (starts && ends) return 1;
    }
    return 0;
}

/* The folder named by an include line `#include "x/y.h"`, or 0 when it names none. */
static int include_folder(const char *line, char *out, size_t cap) {
    const char *p = line;
    while (*p == ' ' || *p == '\t') p++;
    if (*p++ != '#') return 0;
    while (*p == ' ' || *p == '\t') p++;
    if (strncmp(p, "include", 7)) return 0;
    p += 7;
    while (*p == ' ' || *p == '\t') p++;
    if (*p++ != '"') return 0;
    const char *slash = strchr(p, '/'), *quote = strchr(p, '"');
    if (!slash || !quote || slash > quote || (size_t)(slash - p) >= cap) return 0;
    memcpy(out, p, (size_t)(slash - p));
    out[slash - p] = '\0';
    return 1;
}

static int has_suffix(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcmp(s + a - b, suf);
}

/* A function body starts with a "{" alone in column 0 (the house style: the signature above it)
 * or with a column-0 signature line ending in '{' that is not a struct/enum/array initialiser;
 * it ends at a "}" in column 0. */
static int starts_function(const char *line) {
    if (line[0] == '{' && (line[1] == '\n' || line[1] == '\0')) return 1;
    size_t n = strlen(line);
    while (n && (line[n - 1] == '\n' || line[n - 1] == ' ')) n--;
    if (!n || line[n - 1] != '{' || line[0] == ' ' || line[0] == '\t' || line[0] == '#') return 0;
    if (!strchr(line, '(') || strchr(line, '=')) return 0;
    return strncmp(line, "struct", 6) && strncmp(line, "typedef", 7) && strncmp(line, "enum", 4);
}

/* A comment line that starts with "long:" (after a comment opener or a continuation star), not
 * any text that happens to contain the word. */
static int is_long_comment(const char *line) {
    while (*line == ' ' || *line == '\t') line++;
    if (line[0] == '/' && line[1] == '*') line += 2;
    else if (line[0] == '*') line += 1;
    else return 0;
    while (*line == ' ') line++;
    return !strncmp(line, "long:", 5);
}

/* `layer` NULL: a cli/ file, which may include any layer (only function lengths are checked). */
static void check_file(const char *dir, const char *layer, const char *name) {
    char path[1024];
    if (layer) snprintf(path, sizeof path, "%s/%s/%s", dir, layer, name);
    else snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "r");
    CHECK_MSG(f != NULL, "cannot open %s", path);
    if (!f) return;
    char line[4096], folder[64], prev[N_PREV][4096] = {{0}};
    int lineno = 0, fn_start = 0, fn_excused = 0;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        if (layer && include_folder(line, folder, sizeof folder))
            CHECK_MSG(layer_allows(layer, folder), "%s:%d: src/%s may not include %s/ (docs/design.md, layers)",
                      path, lineno, layer, folder);
        if (!fn_start && starts_function(line)) {
            fn_start = lineno;
            fn_excused = 0;
            for (int i = 0; i < N_PREV; i++) fn_excused |= is_long_comment(prev[i]);
        } else if (fn_start && line[0] == '}') {
            int len = lineno - fn_start + 1;
            CHECK_MSG(len <= MAX_FN_LINES || fn_excused,
                      "%s:%d: function of %d lines (> %d) without a 'long:' comment saying why", path, fn_start,
                      len, MAX_FN_LINES);
            fn_start = 0;
        }
        memmove(prev[1], prev[0], sizeof prev[0] * (N_PREV - 1));
        snprintf(prev[0], sizeof prev[0], "%s", line);
    }
    fclose(f);
}

static int is_source(const char *name) {
    return has_suffix(name, ".c") || has_suffix(name, ".h") || has_suffix(name, ".inc");
}

static void check_cli(const char *cli) {
    DIR *d = opendir(cli);
    CHECK_MSG(d != NULL, "cannot open %s", cli);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d)))
        if (is_source(e->d_name)) check_file(cli, NULL, e->d_name);
    closedir(d);
}

static void check_tree(const char *src) {
    DIR *top = opendir(src);
    CHECK_MSG(top != NULL, "cannot open %s", src);
    if (!top) return;
    int files = 0;
    struct dirent *e;
    while ((e = readdir(top))) {
        if (e->d_name[0] == '.') continue;
        CHECK_MSG(rule_of(e->d_name) != NULL, "src/%s/ is not a layer in the table of tests/test_layers.c",
                  e->d_name);
        char sub[1024];
        snprintf(sub, sizeof sub, "%s/%s", src, e->d_name);
        DIR *d = opendir(sub);
        if (!d) continue;
        struct dirent *g;
        while ((g = readdir(d)))
            if (is_source(g->d_name)) {
                check_file(src, e->d_name, g->d_name);
                files++;
            }
        closedir(d);
    }
    closedir(top);
    CHECK_MSG(files > 50, "only %d source files found under %s", files, src);
}

int main(void) {
    /* The checker itself: edges that must be refused and allowed. */
    CHECK(!layer_allows("base", "lm"));
    CHECK(!layer_allows("text", "lm"));
    CHECK(!layer_allows("nn", "lm"));
    CHECK(!layer_allows("lm", "serve"));
    CHECK(!layer_allows("kernels", "nn"));
    CHECK(!layer_allows("rl", "lm"));
    CHECK(!layer_allows("lm", "cli"));
    CHECK(!layer_allows("nn", "n"));  /* a prefix of a name is not the name */
    CHECK(layer_allows("serve", "guard"));
    CHECK(layer_allows("lm", "text"));
    CHECK(layer_allows("nn", "nn"));
    char folder[64];
    CHECK(include_folder("#include \"lm/model.h\"", folder, sizeof folder) && !strcmp(folder, "lm"));
    CHECK(include_folder("  #  include \"base/x.h\" // c", folder, sizeof folder) && !strcmp(folder, "base"));
    CHECK(!include_folder("#include \"harness.h\"", folder, sizeof folder));
    CHECK(!include_folder("#include <sys/stat.h>", folder, sizeof folder));
    CHECK(starts_function("static int f(int a) {\n"));
    CHECK(starts_function("br_status br_x(void) {\n"));
    CHECK(!starts_function("static const int t[] = {\n"));
    CHECK(!starts_function("    if (x) {\n"));
    CHECK(!starts_function("struct s {\n"));
    CHECK(starts_function("{\n"));
    CHECK(is_long_comment("/* long: a table of 200 options */\n"));
    CHECK(is_long_comment(" * long: the reason\n"));
    CHECK(!is_long_comment("        return br_error(BR_ERANGE, \"path too long: %s\", p);\n"));
    CHECK(!starts_function("{ 1, 2 },\n"));

    check_tree("src");
    check_cli("cli");
    return th_exit();
}
