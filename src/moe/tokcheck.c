/* Comparing the tokenizers of two model folders (moe/tokcheck.h). */
#include "moe/tokcheck.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/fileio.h"

/* DIR/name read whole (*data NULL when the file does not exist). */
static br_status read_opt(const char *dir, const char *name, char **data, size_t *n)
{
    *data = NULL, *n = 0;
    br_buf_t p = BR_BUF_INIT;
    br_status s = br_buf_path(&p, dir, name);
    if (!s && br_file_exists(br_buf_str(&p))) s = br_read_file(br_buf_str(&p), data, n);
    br_buf_free(&p);
    return s;
}

/* The first token of a's vocabulary whose id differs in b (or b lacks), as an error. */
static br_status vocab_diff(json_t *va, json_t *vb, const char *what)
{
    const char *tok;
    json_t *id;
    json_object_foreach(va, tok, id) {
        json_t *other = json_object_get(vb, tok);
        if (!other)
            return br_error(BR_EINVAL, "%s: tokenizer.json has no token '%s' (id %lld in the base's): experts must "
                            "share the base's tokenizer", what, tok, (long long)json_integer_value(id));
        if (!json_equal(id, other))
            return br_error(BR_EINVAL, "%s: token '%s' has id %lld, the base's has %lld: experts must share the base's "
                            "tokenizer", what, tok, (long long)json_integer_value(other), (long long)json_integer_value(id));
    }
    if (json_object_size(vb) != json_object_size(va))
        return br_error(BR_EINVAL, "%s: tokenizer.json has %zu tokens, the base's %zu: experts must share the base's "
                        "tokenizer", what, json_object_size(vb), json_object_size(va));
    return BR_OK;
}

/* added_tokens entries as (content, id) pairs: other flags (special, normalized) do not change ids. */
static br_status added_diff(json_t *aa, json_t *ab, const char *what)
{
    size_t na = json_array_size(aa), nb = json_array_size(ab);
    for (size_t i = 0; i < na; i++) {
        json_t *x = json_array_get(aa, i);
        json_t *c = json_object_get(x, "content"), *id = json_object_get(x, "id");
        bool found = false;
        for (size_t j = 0; j < nb && !found; j++) {
            json_t *y = json_array_get(ab, j);
            found = json_equal(c, json_object_get(y, "content")) && json_equal(id, json_object_get(y, "id"));
        }
        if (!found)
            return br_error(BR_EINVAL, "%s: added token '%s' (id %lld in the base's tokenizer.json) is not the same "
                            "in this one: experts must share the base's tokenizer", what,
                            json_is_string(c) ? json_string_value(c) : "?", (long long)json_integer_value(id));
    }
    if (na != nb)
        return br_error(BR_EINVAL, "%s: tokenizer.json has %zu added tokens, the base's %zu: experts must share the "
                        "base's tokenizer", what, nb, na);
    return BR_OK;
}

static br_status json_tok_check(const char *ta, size_t na, const char *tb, size_t nb, const char *what)
{
    json_error_t err;
    json_t *a = json_loadb(ta, na, 0, &err), *b = json_loadb(tb, nb, 0, &err);
    br_status s = a && b ? BR_OK : br_error(BR_EFORMAT, "%s: tokenizer.json: %s", what, err.text);
    json_t *ma = json_object_get(a, "model"), *mb = json_object_get(b, "model");
    if (!s && !json_equal(ma, mb)) {
        json_t *va = json_object_get(ma, "vocab"), *vb = json_object_get(mb, "vocab");
        if (json_is_object(va) && json_is_object(vb)) s = vocab_diff(va, vb, what);
        if (!s)
            s = br_error(BR_EINVAL, "%s: tokenizer.json's model (type, merges or settings) differs from the base's: "
                         "experts must share the base's tokenizer", what);
    }
    if (!s) s = added_diff(json_object_get(a, "added_tokens"), json_object_get(b, "added_tokens"), what);
    json_decref(a);
    json_decref(b);
    return s;
}

br_status br_moe_tokenizer_check(const char *a, const char *b, const char *what)
{
    static const char *const files[] = {"tokenizer.json", "tokenizer.model"};
    br_status s = BR_OK;
    for (int f = 0; f < 2 && !s; f++) {
        char *ta = NULL, *tb = NULL;
        size_t na = 0, nb = 0;
        s = read_opt(a, files[f], &ta, &na);
        if (!s) s = read_opt(b, files[f], &tb, &nb);
        if (!s && ta && tb && (na != nb || memcmp(ta, tb, na))) {
            if (f == 0) s = json_tok_check(ta, na, tb, nb, what);
            else s = br_error(BR_EINVAL, "%s: tokenizer.model differs from the base's: experts must share the base's "
                              "tokenizer", what);
        }
        free(ta);
        free(tb);
    }
    return s;
}
