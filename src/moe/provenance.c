/* DIR/upcycle.json (moe/provenance.h). */
#include "moe/provenance.h"

#include <jansson.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/fileio.h"

static json_t *abs_path(const char *p)
{
    char *abs = realpath(p, NULL); /* any length */
    json_t *j = json_string(abs ? abs : p);
    free(abs);
    return j;
}

static br_status save(json_t *o, const char *dir)
{
    char *text = json_dumps(o, JSON_INDENT(2));
    json_decref(o);
    if (!text) return br_error(BR_ENOMEM, "out of memory");
    br_buf_t path = BR_BUF_INIT;
    br_status s = br_buf_path(&path, dir, "upcycle.json");
    if (!s) s = br_write_file_atomic(br_buf_str(&path), text, strlen(text));
    br_buf_free(&path);
    free(text);
    return s;
}

static json_t *load(const char *dir)
{
    br_buf_t path = BR_BUF_INIT;
    json_t *o = br_buf_path(&path, dir, "upcycle.json") ? NULL : json_load_file(br_buf_str(&path), 0, NULL);
    br_buf_free(&path);
    return o;
}

br_status br_provenance_write(const char *out, const char *method, const char *base, bool base_as_expert,
                              const char *const *experts, size_t n_experts, const char *const *domain_data,
                              size_t n_domain_data)
{
    json_t *o = json_object(), *a = json_array(), *d = json_array();
    json_object_set_new(o, "method", json_string(method));
    json_object_set_new(o, "base", abs_path(base));
    for (size_t i = 0; i < n_experts; i++) json_array_append_new(a, abs_path(experts[i]));
    for (size_t i = 0; i < n_domain_data; i++) json_array_append_new(d, abs_path(domain_data[i]));
    json_object_set_new(o, "base_as_expert", json_boolean(base_as_expert));
    json_object_set_new(o, "experts", a);
    json_object_set_new(o, "domain_data", d);
    return save(o, out);
}

br_status br_provenance_extend(const char *moe, const char *out, const char *expert, const char *domain_data)
{
    json_t *o = load(moe);
    if (!json_is_object(o)) {
        json_decref(o);
        o = json_pack("{s:s, s:[], s:[]}", "method", "unknown", "experts", "domain_data");
    }
    json_t *ex = json_object_get(o, "experts"), *dd = json_object_get(o, "domain_data");
    if (!json_is_array(ex)) json_object_set_new(o, "experts", ex = json_array());
    if (!json_is_array(dd)) json_object_set_new(o, "domain_data", dd = json_array());
    json_array_append_new(ex, abs_path(expert));
    if (domain_data && json_array_size(dd) + 1 == json_array_size(ex)) json_array_append_new(dd, abs_path(domain_data));
    json_object_set_new(o, "extended_from", abs_path(moe));
    return save(o, out);
}

char *br_provenance_base(const char *dir)
{
    json_t *o = load(dir);
    json_t *b = o ? json_object_get(o, "base") : NULL;
    char *r = json_is_string(b) ? strdup(json_string_value(b)) : NULL;
    json_decref(o);
    return r;
}

char **br_provenance_expert_domains(const char *dir, size_t E)
{
    json_t *o = load(dir);
    if (!o) return NULL;
    json_t *dd = json_object_get(o, "domain_data"), *ex = json_object_get(o, "experts");
    json_t *b = json_object_get(o, "base_as_expert");
    size_t off = json_is_true(b) ? 1 : 0;
    char **names = calloc(E, sizeof *names);
    for (size_t j = off; names && j < E; j++) {
        json_t *v = json_array_size(dd) == E - off ? json_array_get(dd, j - off) : json_array_get(ex, j - off);
        if (!json_is_string(v)) continue;
        char *tmp = strdup(json_string_value(v)); /* basename may write into it */
        if (!tmp) continue;
        const char *base = basename(tmp), *dash = strrchr(base, '-');
        names[j] = strdup(json_array_size(dd) == E - off || !dash ? base : dash + 1);
        free(tmp);
    }
    json_decref(o);
    return names;
}
