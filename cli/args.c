#include "args.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/status.h"

static bool name_matches(const char *spec_name, const char *arg, size_t len)
{
    /* spec "n|max-tokens": either alias matches */
    const char *p = spec_name;
    while (*p) {
        const char *bar = strchr(p, '|');
        size_t n = bar ? (size_t)(bar - p) : strlen(p);
        if (n == len && strncmp(p, arg, len) == 0) return true;
        if (!bar) break;
        p = bar + 1;
    }
    return false;
}

static const char *long_name(const char *spec_name)
{
    const char *bar = strrchr(spec_name, '|');
    return bar ? bar + 1 : spec_name;
}

static int set_value(const opt_t *o, const char *v)
{
    char *end = NULL;
    errno = 0;
    switch (o->kind) {
    case OPT_STR: *(const char **)o->dest = v; return 0;
    case OPT_INT: {
        long long x = strtoll(v, &end, 10);
        if (errno || end == v || *end || x < INT_MIN || x > INT_MAX) break;
        *(int *)o->dest = (int)x;
        return 0;
    }
    case OPT_LONG: {
        long long x = strtoll(v, &end, 10);
        if (errno || end == v || *end || x < LONG_MIN || x > LONG_MAX) break;
        *(long *)o->dest = (long)x;
        return 0;
    }
    case OPT_FLOAT: case OPT_DOUBLE: {
        double x = strtod(v, &end);
        if (errno || end == v || *end || !isfinite(x)) break;
        if (o->kind == OPT_FLOAT) *(float *)o->dest = (float)x;
        else *(double *)o->dest = x;
        return 0;
    }
    case OPT_BOOL: {
        if (!strcmp(v, "1") || !strcmp(v, "true") || !strcmp(v, "yes")) *(bool *)o->dest = true;
        else if (!strcmp(v, "0") || !strcmp(v, "false") || !strcmp(v, "no")) *(bool *)o->dest = false;
        else break;
        return 0;
    }
    }
    fprintf(stderr, "braid: error: --%s: invalid value '%s' (expected %s)\n", long_name(o->name), v,
            o->kind == OPT_INT || o->kind == OPT_LONG ? "an integer"
            : o->kind == OPT_BOOL                     ? "true or false"
                                                      : "a number");
    return -1;
}

void args_print_help(const cmd_spec_t *s)
{
    printf("usage: %s\n\n", s->usage);
    if (s->summary) printf("%s\n\n", s->summary);
    printf("options:\n");
    for (size_t i = 0; i < s->nopts; i++) {
        const opt_t *o = &s->opts[i];
        char left[96];
        const char *bar = strchr(o->name, '|');
        if (bar)
            snprintf(left, sizeof left, "-%.*s, --%s%s%s", (int)(bar - o->name), o->name, bar + 1,
                     o->metavar ? " " : "", o->metavar ? o->metavar : "");
        else
            snprintf(left, sizeof left, "--%s%s%s", o->name, o->metavar ? " " : "",
                     o->metavar ? o->metavar : "");
        printf("  %-30s %s%s\n", left, o->help ? o->help : "", o->required ? " (required)" : "");
    }
    printf("  %-30s %s\n", "-h, --help", "show this help");
}

int args_parse(const cmd_spec_t *s, int argc, char **argv, char ***pos, int *npos)
{
    *pos = NULL;
    *npos = 0;
    /* Positional arguments are moved to the front of argv (argv[1..np]) as they are met:
     * slot np+1 <= i has always been consumed already, so nothing is allocated. */
    char **positional = argv + 1;
    bool *seen = calloc(s->nopts + 1, sizeof *seen);
    if (!seen) {
        fprintf(stderr, "braid: error: out of memory\n");
        return 2;
    }
    int np = 0, rc = 0;
    bool only_pos = false;
    for (int i = 1; i < argc && rc == 0; i++) {
        char *a = argv[i];
        if (only_pos || a[0] != '-' || a[1] == 0) {
            positional[np++] = a;
            continue;
        }
        if (!strcmp(a, "--")) { only_pos = true; continue; }
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { args_print_help(s); rc = 1; break; }
        const char *nm = a + (a[1] == '-' ? 2 : 1);
        const char *eq = strchr(nm, '=');
        size_t len = eq ? (size_t)(eq - nm) : strlen(nm);
        const opt_t *o = NULL;
        size_t oi = 0;
        for (size_t j = 0; j < s->nopts; j++)
            if (name_matches(s->opts[j].name, nm, len)) { o = &s->opts[j]; oi = j; break; }
        if (!o) {
            fprintf(stderr, "braid: error: unknown option '%.*s' (see '%s --help')\n",
                    (int)(len + (size_t)(nm - a)), a, argv[0]);
            rc = 2;
            break;
        }
        seen[oi] = true;
        const char *v = eq ? eq + 1 : NULL;
        if (o->kind == OPT_BOOL && !v) { *(bool *)o->dest = true; continue; }
        if (!v) {
            if (i + 1 >= argc) {
                fprintf(stderr, "braid: error: --%s needs a value (%s)\n", long_name(o->name),
                        o->metavar ? o->metavar : "value");
                rc = 2;
                break;
            }
            v = argv[++i];
        }
        if (set_value(o, v) != 0) rc = 2;
    }
    for (size_t j = 0; j < s->nopts && rc == 0; j++)
        if (s->opts[j].required && !seen[j]) {
            fprintf(stderr, "braid: error: --%s is required (see '%s --help')\n", long_name(s->opts[j].name), argv[0]);
            rc = 2;
        }
    if (rc == 0 && (np < s->min_pos || (s->max_pos >= 0 && np > s->max_pos))) {
        if (s->min_pos == s->max_pos)
            fprintf(stderr, "braid: error: expected %d argument%s, got %d\n", s->min_pos, s->min_pos == 1 ? "" : "s", np);
        else if (np < s->min_pos)
            fprintf(stderr, "braid: error: expected at least %d argument%s, got %d\n", s->min_pos, s->min_pos == 1 ? "" : "s", np);
        else
            fprintf(stderr, "braid: error: expected at most %d argument%s, got %d\n", s->max_pos, s->max_pos == 1 ? "" : "s", np);
        fprintf(stderr, "usage: %s\n", s->usage);
        rc = 2;
    }
    free(seen);
    if (rc != 0) return rc;
    *pos = positional;
    *npos = np;
    return 0;
}

int run_subcommand(const char *group, const subcmd_t *subs, size_t n, int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
        printf("usage: braid %s COMMAND [options]\n\ncommands:\n", group);
        for (size_t i = 0; i < n; i++) printf("  %-14s %s\n", subs[i].name, subs[i].help);
        printf("\n'braid %s COMMAND --help' shows a command's options.\n", group);
        return argc < 2 ? 2 : 0;
    }
    for (size_t i = 0; i < n; i++)
        if (!strcmp(argv[1], subs[i].name)) return subs[i].run(argc - 1, argv + 1);
    fprintf(stderr, "braid: error: unknown command '%s %s' (see 'braid %s --help')\n", group, argv[1], group);
    return 2;
}

int fail_status(int status, const char *what)
{
    const char *m = br_errmsg();
    size_t wl = what ? strlen(what) : 0;
    if (what && m && !strncmp(m, what, wl) && m[wl] == ':') what = NULL; /* the message names it already */
    if (what) fprintf(stderr, "braid: error: %s: %s\n", what, m && *m ? m : br_status_name((br_status)status));
    else fprintf(stderr, "braid: error: %s\n", m && *m ? m : br_status_name((br_status)status));
    return 1;
}
