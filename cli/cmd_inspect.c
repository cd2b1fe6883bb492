/* braid inspect FILE.safetensors: tensors (name, dtype, shape, bytes) and metadata. */
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "args.h"
#include "base/safetensors.h"
#include "commands.h"

static void human_bytes(char *buf, size_t cap, double b)
{
    const char *u[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int i = 0;
    while (b >= 1024 && i < 4) {
        b /= 1024;
        i++;
    }
    snprintf(buf, cap, i ? "%.1f %s" : "%.0f %s", b, u[i]);
}

int cmd_inspect(int argc, char **argv)
{
    bool json = false;
    const opt_t opts[] = {
        {"json", OPT_BOOL, &json, NULL, "print JSON instead of a table", false},
    };
    cmd_spec_t spec = {"braid inspect [options] FILE.safetensors",
                       "Lists the tensors (name, dtype, shape, bytes) and the __metadata__ of a "
                       "safetensors file after validating it completely. A malformed file prints "
                       "the problem and exits with status 1.",
                       opts, sizeof opts / sizeof *opts, 1, 1};
    char **pos;
    int npos, rc = args_parse(&spec, argc, argv, &pos, &npos);
    if (rc) return rc == 1 ? 0 : 2;
    br_safetensors_t *st;
    br_status s = br_st_open(&st, pos[0]);
    if (s != BR_OK) return fail_status(s, NULL);
    size_t n = br_st_count(st), total = 0, params = 0;
    json_t *jt = json_array();
    if (!json) printf("%-56s %-5s %-22s %12s\n", "tensor", "dtype", "shape", "bytes");
    for (size_t i = 0; i < n; i++) {
        const br_st_tensor_t *t = br_st_tensor(st, i);
        char shape[160] = "[";
        json_t *js = json_array();
        for (int d = 0; d < t->ndim; d++) {
            snprintf(shape + strlen(shape), sizeof shape - strlen(shape), "%s%lld", d ? ", " : "", (long long)t->shape[d]);
            json_array_append_new(js, json_integer(t->shape[d]));
        }
        strncat(shape, "]", sizeof shape - strlen(shape) - 1);
        json_array_append_new(jt, json_pack("{s:s, s:s, s:o, s:I}", "name", t->name, "dtype",
                                            br_dtype_name(t->dtype), "shape", js, "bytes", (json_int_t)t->nbytes));
        if (!json) printf("%-56s %-5s %-22s %12zu\n", t->name, br_dtype_name(t->dtype), shape, t->nbytes);
        total += t->nbytes;
        params += t->numel;
    }
    json_t *meta = json_object();
    for (size_t i = 0; i < br_st_metadata_count(st); i++)
        json_object_set_new(meta, br_st_metadata_key(st, i), json_string(br_st_metadata_value(st, i)));
    if (json) {
        json_t *root = json_pack("{s:s, s:o, s:o, s:I, s:I}", "file", pos[0], "tensors", jt, "metadata", meta,
                                 "total_bytes", (json_int_t)total, "total_elements", (json_int_t)params);
        json_dumpf(root, stdout, JSON_INDENT(1) | JSON_PRESERVE_ORDER);
        putchar('\n');
        json_decref(root);
    } else {
        char hb[32];
        human_bytes(hb, sizeof hb, (double)total);
        printf("%zu tensors, %zu elements, %s\n", n, params, hb);
        for (size_t i = 0; i < br_st_metadata_count(st); i++)
            printf("metadata %s = %s\n", br_st_metadata_key(st, i), br_st_metadata_value(st, i));
        json_decref(jt);
        json_decref(meta);
    }
    br_st_close(st);
    return 0;
}
