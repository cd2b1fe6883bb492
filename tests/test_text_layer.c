/* The text layer knows no model: no file in src/text/ includes a header of a layer above it
 * (lm, nn, moe, serve, guard, rl).  Reads the sources as text, from the repository root. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/fileio.h"
#include "harness.h"

static const char *const above[] = {"lm/", "nn/", "moe/", "serve/", "guard/", "rl/"};

/* The number of #include lines of text[0..n) that name a header of a layer above text. */
static int includes_from_above(const char *name, const char *text, size_t n)
{
    int bad = 0;
    for (const char *line = text; line && line < text + n;) {
        const char *end = memchr(line, '\n', (size_t)(text + n - line));
        size_t len = end ? (size_t)(end - line) : (size_t)(text + n - line);
        if (len > 10 && !strncmp(line, "#include \"", 10))
            for (size_t k = 0; k < sizeof above / sizeof *above; k++)
                if (!strncmp(line + 10, above[k], strlen(above[k]))) {
                    CHECK_MSG(false, "src/text/%s: %.*s (text may use only src/base and src/kernels)", name,
                              (int)len, line);
                    bad++;
                }
        line = end ? end + 1 : NULL;
    }
    return bad;
}

int main(void)
{
    DIR *d = opendir("src/text");
    CHECK_MSG(d != NULL, "src/text: cannot open (run from the repository root)");
    if (!d) return th_exit();
    int files = 0, bad = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t l = strlen(e->d_name);
        if (l < 3 || (strcmp(e->d_name + l - 2, ".c") && strcmp(e->d_name + l - 2, ".h"))) continue;
        char path[512], *text;
        size_t n;
        snprintf(path, sizeof path, "src/text/%s", e->d_name);
        if (br_read_file(path, &text, &n) != BR_OK) {
            CHECK_MSG(false, "%s: %s", path, br_errmsg());
            continue;
        }
        bad += includes_from_above(e->d_name, text, n);
        free(text);
        files++;
    }
    closedir(d);
    CHECK_MSG(files >= 10, "only %d sources found in src/text", files);
    CHECK_INT(bad, 0);
    return th_exit();
}
