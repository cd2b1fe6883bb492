/* Loading a checkpoint whose config.json does not match its model.safetensors (issue 20):
 * every size is checked against the file before any weight is allocated (each hostile config
 * loads in a child limited to a small address space, and must fail with a clear BR_EFORMAT,
 * not BR_ENOMEM), and every shape printed in an error message is the config's. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/fileio.h"
#include "base/safetensors.h"
#include "harness.h"
#include "lm/model.h"

/* Width 64 as in the report ("shape [640]" for a layer norm of a width-64 model); the
 * other sizes differ from each other so a message printing the wrong one is caught. */
static br_model_config_t small_config(void)
{
    br_model_config_t c;
    br_config_defaults(&c);
    c.vocab_size = 96;
    c.hidden_size = 64;
    c.intermediate_size = 80;
    c.num_hidden_layers = 2;
    c.num_attention_heads = 4;
    c.num_key_value_heads = 2;
    c.head_dim = 8;
    c.max_position_embeddings = 64;
    return c;
}

/* The shape a tensor must have, written from the config by hand (not from the model's table). */
static void expected_shape(const br_model_config_t *c, const char *name, char *out, size_t cap)
{
    int C = c->hidden_size, V = c->vocab_size, F = c->intermediate_size;
    int Dq = c->num_attention_heads * c->head_dim, Dkv = c->num_key_value_heads * c->head_dim;
    const char *s = strrchr(name, '.');
    while (s > name && s[-1] != '.') s--; /* "q_proj.weight", "norm.weight"... */
    if (strstr(name, "embed_tokens") || strstr(name, "lm_head")) snprintf(out, cap, "[%d, %d]", V, C);
    else if (strstr(name, "norm")) snprintf(out, cap, "[%d]", C);
    else if (!strcmp(s, "q_proj.weight")) snprintf(out, cap, "[%d, %d]", Dq, C);
    else if (!strcmp(s, "k_proj.weight") || !strcmp(s, "v_proj.weight")) snprintf(out, cap, "[%d, %d]", Dkv, C);
    else if (!strcmp(s, "o_proj.weight")) snprintf(out, cap, "[%d, %d]", C, Dq);
    else if (!strcmp(s, "gate_proj.weight") || !strcmp(s, "up_proj.weight")) snprintf(out, cap, "[%d, %d]", F, C);
    else if (!strcmp(s, "down_proj.weight")) snprintf(out, cap, "[%d, %d]", C, F);
    else snprintf(out, cap, "(unknown tensor)");
}

/* Writes m's tensors to path, leaving out `skip` and giving `reshape` the shape [7] (NULL:
 * neither). */
static void write_weights(const br_model_t *m, const char *path, const char *skip, const char *reshape)
{
    br_st_writer_t *w = NULL;
    br_status s = br_st_writer_create(&w);
    for (size_t i = 0; i < m->n_tensors && !s; i++) {
        const br_tensor_info_t *t = &m->tensors[i];
        if (skip && !strcmp(t->name, skip)) continue;
        int64_t seven = 7;
        bool odd = reshape && !strcmp(t->name, reshape);
        s = br_st_writer_add(w, t->name, BR_DT_F32, odd ? 1 : t->ndim, odd ? &seven : t->shape,
                             m->params + t->offset);
    }
    if (!s) s = br_st_writer_save(w, path);
    br_st_writer_free(w);
    CHECK_OK(s);
}

/* Every tensor missing in turn, then every tensor mis-shaped in turn: the message names the
 * tensor and the shape the config needs, as computed above. */
static void test_error_shapes(const char *dir)
{
    br_model_config_t c = small_config();
    br_model_t *m;
    CHECK_OK(br_model_create(&m, &c, false));
    if (!m) return;
    br_model_init_random(m, 1);
    CHECK_OK(br_model_save(m, dir, BR_DT_F32));
    char path[512], want[64], needle[256];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    int bad_missing = 0, bad_shape = 0;
    for (size_t i = 0; i < m->n_tensors; i++) {
        const char *name = m->tensors[i].name;
        expected_shape(&c, name, want, sizeof want);
        br_model_t *l = NULL;
        write_weights(m, path, name, NULL);
        br_status s = br_model_load(&l, dir, false);
        snprintf(needle, sizeof needle, "missing tensor '%s' (shape %s", name, want);
        if (s != BR_EFORMAT || !strstr(br_errmsg(), needle)) {
            bad_missing++;
            fprintf(stderr, "  want '%s' in: %s\n", needle, br_errmsg());
        }
        br_model_free(l);
        write_weights(m, path, NULL, name);
        s = br_model_load(&l, dir, false);
        snprintf(needle, sizeof needle, "tensor '%s' has shape [7], the config needs %s (", name, want);
        if (s != BR_EFORMAT || !strstr(br_errmsg(), needle)) {
            bad_shape++;
            fprintf(stderr, "  want '%s' in: %s\n", needle, br_errmsg());
        }
        br_model_free(l);
    }
    CHECK_INT(bad_missing, 0);
    CHECK_INT(bad_shape, 0);
    /* the messages name the config fields behind each dimension */
    br_model_t *l = NULL;
    write_weights(m, path, "model.layers.1.post_attention_layernorm.weight", NULL);
    CHECK_STATUS(br_model_load(&l, dir, false), BR_EFORMAT);
    CHECK(strstr(br_errmsg(), "(shape [64]: hidden_size)") != NULL);
    write_weights(m, path, NULL, "model.layers.0.self_attn.k_proj.weight");
    CHECK_STATUS(br_model_load(&l, dir, false), BR_EFORMAT);
    CHECK(strstr(br_errmsg(), "needs [16, 64] (num_key_value_heads * head_dim, hidden_size)") != NULL);
    /* br_model_load_weights into an existing model checks the same way */
    CHECK_STATUS(br_model_load_weights(m, path), BR_EFORMAT);
    CHECK(strstr(br_errmsg(), "k_proj.weight' has shape [7]") != NULL);
    write_weights(m, path, NULL, NULL); /* leave a valid checkpoint for the next test */
    br_model_free(m);
}

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif

#ifndef UNDER_ASAN
/* Bytes of address space the process maps now. */
static size_t mapped_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long pages = 0;
    if (f) {
        if (fscanf(f, "%lu", &pages) != 1) pages = 0;
        fclose(f);
    }
    return (size_t)pages * (size_t)sysconf(_SC_PAGESIZE);
}
#endif

/* Loads `dir` in a child whose address space may grow by at most 256 MB (ASan maps terabytes
 * of shadow at start, so under ASan the child runs without the limit) and returns the status,
 * the message in msg; -1 when the child crashed. */
static int load_bounded(const char *dir, char *msg, size_t cap)
{
    int fd[2];
    if (pipe(fd) != 0) return -1;
    pid_t pid = fork();
    if (pid == 0) {
        close(fd[0]);
#ifndef UNDER_ASAN
        struct rlimit rl = {.rlim_cur = mapped_bytes() + (256u << 20), .rlim_max = RLIM_INFINITY};
        rl.rlim_max = rl.rlim_cur;
        if (setrlimit(RLIMIT_AS, &rl) != 0) _exit(100);
#endif
        br_model_t *m = NULL;
        br_status s = br_model_load(&m, dir, true);
        br_model_free(m);
        const char *e = br_errmsg();
        if (write(fd[1], e, strlen(e)) < 0) _exit(101);
        _exit((int)s);
    }
    close(fd[1]);
    size_t n = 0;
    ssize_t got;
    while (n + 1 < cap && (got = read(fd[0], msg + n, cap - 1 - n)) > 0) n += (size_t)got;
    msg[n] = 0;
    close(fd[0]);
    int st = 0;
    if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st)) return -1;
    return WEXITSTATUS(st);
}

/* Configs whose sizes would need gigabytes, beside the small valid weights: each must fail
 * with BR_EFORMAT naming the field, inside the 256 MB limit (before the fix they failed with
 * BR_ENOMEM from a 4.2 GB allocation, or were killed). */
static void test_bounded(const char *dir)
{
    char cfgpath[512], msg[1024];
    snprintf(cfgpath, sizeof cfgpath, "%s/config.json", dir);
    br_model_config_t good = small_config();
    CHECK_OK(br_config_save(&good, cfgpath));
    CHECK_INT(load_bounded(dir, msg, sizeof msg), BR_OK); /* the limit leaves room for a real load */

    static const struct {
        const char *what, *needle;
    } cases[] = {
        {"vocab_size 16777216", "has shape [96, 64], the config needs [16777216, 64] (vocab_size, hidden_size)"},
        {"4096 layers", "holds 2 decoder layers (model.layers.N.*), config.json says num_hidden_layers = 4096"},
        {"intermediate_size 4194304", "needs [4194304, 64] (intermediate_size, hidden_size)"},
        {"4096 experts", "missing tensor 'model.layers.0.block_sparse_moe.gate.weight' (shape [4096, 64]: "
                         "num_local_experts, hidden_size)"},
        {"hidden_size 1048576", "needs [96, 1048576] (vocab_size, hidden_size)"},
        /* no tensor vouches for the context length: the config itself is refused */
        {"max_position_embeddings 16777216 x head_dim 16",
         "max_position_embeddings (16777216) x head_dim (16) is beyond what braid supports"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        br_model_config_t c = small_config();
        if (i == 0) c.vocab_size = 1 << 24;
        if (i == 1) c.num_hidden_layers = 4096;
        if (i == 2) c.intermediate_size = 1 << 22;
        if (i == 3) {
            c.num_local_experts = 4096;
            c.num_experts_per_tok = 2;
        }
        if (i == 4) {
            c.hidden_size = 1 << 20;
            c.head_dim = 0;
        }
        if (i == 5) {
            c.max_position_embeddings = 1 << 24;
            c.head_dim = 16;
        }
        CHECK_OK(br_config_save(&c, cfgpath));
        int rc = load_bounded(dir, msg, sizeof msg), want = i == 5 ? BR_EINVAL : BR_EFORMAT;
        CHECK_MSG(rc == want && strstr(msg, cases[i].needle), "%s: status %d (want %d), message '%s' lacks '%s'",
                  cases[i].what, rc, want, msg, cases[i].needle);
    }
    CHECK_OK(br_config_save(&good, cfgpath));
}

int main(void)
{
    char dir[] = "/tmp/braid-load-XXXXXX";
    if (!mkdtemp(dir)) {
        CHECK(!"mkdtemp");
        return th_exit();
    }
    test_error_shapes(dir);
    test_bounded(dir);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK(system(cmd) == 0);
    return th_exit();
}
