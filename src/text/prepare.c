/* data/raw/<domain>/{train,val}.txt -> data/tok/<domain>/{train,val}.bin (see prepare.h). */
#include "text/prepare.h"

#include <jansson.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/buf.h"
#include "base/fileio.h"
#include "base/progress.h"
#include "base/timer.h"
#include "base/threads.h"
#include "text/bpe_train.h"
#include "text/corpus.h"
#include "text/data.h"
#include "text/tokenizer.h"
#include "text/utf8.h"

typedef struct {
    const char *p;
    size_t n;
    int32_t *ids;
    size_t nids;
    br_status st;
} doc_t;

static br_status encode_split(const br_tokenizer_t *tok, const char *path, const char *out_path, int nth, int quiet,
                              const char *label, br_prepare_split_t *res)
{
    char *text;
    size_t len;
    BR_TRY(br_read_file(path, &text, &len));
    br_status st = br_utf8_check(path, text, len);
    if (len && text[len - 1] == '\n') len--; /* the file's final newline ends the last document */
    doc_t *docs = NULL;
    size_t nd = 0, cap = 0;
    const char *sep = BR_DOC_SEPARATOR;
    size_t sl = strlen(sep), pos = 0;
    while (st == BR_OK && pos < len) {
        const char *hit = memmem(text + pos, len - pos, sep, sl);
        size_t end = hit ? (size_t)(hit - text) : len;
        if (end > pos) {
            if (nd == cap) {
                size_t nc = cap ? cap * 2 : 1024;
                doc_t *ndocs = realloc(docs, nc * sizeof *ndocs);
                if (!ndocs) {
                    st = br_error(BR_ENOMEM, "out of memory");
                    break;
                }
                docs = ndocs;
                cap = nc;
            }
            docs[nd++] = (doc_t){text + pos, end - pos, NULL, 0, BR_OK};
        }
        pos = hit ? end + sl : len;
    }
    if (st == BR_OK && nd == 0) st = br_error(BR_EINVAL, "%s: empty (no documents)", path);
    if (st) {
        free(docs);
        free(text);
        return st;
    }
    int32_t eos = br_tokenizer_eos_id(tok);
    br_progress_t prog;
    if (!quiet) br_progress_start(&prog, label, (double)len / 1e6, "MB");
    size_t done = 0;
    double t0 = br_now();
#pragma omp parallel for schedule(dynamic, 1) num_threads(nth)
    for (size_t i = 0; i < nd; i++) {
        docs[i].st = br_tokenizer_encode(tok, docs[i].p, docs[i].n, 0, &docs[i].ids, &docs[i].nids);
        if (!quiet) {
            size_t dn;
#pragma omp atomic capture
            dn = done += docs[i].n;
            if (omp_get_thread_num() == 0) br_progress_update(&prog, (double)dn / 1e6);
        }
    }
    double secs = br_now() - t0;
    if (!quiet) br_progress_finish(&prog);
    size_t total = 0;
    uint64_t bytes = 0;
    for (size_t i = 0; i < nd; i++) {
        if (docs[i].st && st == BR_OK) st = br_error(docs[i].st, "%s: document %zu does not encode", path, i);
        total += docs[i].nids + 1;
        bytes += docs[i].n;
    }
    uint32_t *all = st == BR_OK ? malloc(total * sizeof *all) : NULL;
    if (st == BR_OK && !all) st = br_error(BR_ENOMEM, "out of memory");
    if (st == BR_OK) {
        size_t k = 0;
        for (size_t i = 0; i < nd; i++) {
            for (size_t j = 0; j < docs[i].nids; j++) all[k++] = (uint32_t)docs[i].ids[j];
            all[k++] = (uint32_t)eos;
        }
        st = br_shard_write(out_path, all, total, (uint32_t)br_tokenizer_vocab_size(tok), bytes);
    }
    for (size_t i = 0; i < nd; i++) free(docs[i].ids);
    free(all);
    free(docs);
    free(text);
    res->docs = nd;
    res->tokens = total;
    res->bytes = bytes;
    res->seconds = secs;
    return st;
}

br_status br_data_prepare(const char *raw_dir, const char *tokenizer, const char *out_dir, const br_prepare_opts_t *o,
                          br_prepare_result_t *res)
{
    memset(res, 0, sizeof *res);
    if (!br_dir_exists(raw_dir)) return br_error(BR_ENOTFOUND, "%s: no such folder (run 'braid data fetch')", raw_dir);
    br_tokenizer_t *tok;
    BR_TRY(br_tokenizer_load(&tok, tokenizer));
    if (br_tokenizer_eos_id(tok) < 0) {
        br_tokenizer_free(tok);
        return br_error(BR_EINVAL, "%s: the tokenizer has no <|endoftext|> token to separate documents", tokenizer);
    }
    res->vocab = br_tokenizer_vocab_size(tok);
    int nth = o && o->threads > 0 ? o->threads : br_get_threads();
    char **files;
    size_t nfiles;
    br_status st = br_list_text_files(raw_dir, "train", o ? o->exclude : NULL, &files, &nfiles);
    if (st) {
        br_tokenizer_free(tok);
        return st;
    }
    json_t *man = json_object(), *doms = json_object();
    json_object_set_new(man, "tokenizer", json_string(tokenizer));
    json_object_set_new(man, "vocab_size", json_integer((json_int_t)res->vocab));
    json_object_set_new(man, "eos_id", json_integer(br_tokenizer_eos_id(tok)));
    json_object_set_new(man, "shard_format", json_string("BRAIDTOK v1 (src/text/data.h)"));
    br_buf_t in = BR_BUF_INIT, odir = BR_BUF_INIT, out = BR_BUF_INIT;
    for (size_t f = 0; f < nfiles && st == BR_OK; f++) {
        /* <raw>/<domain>/train.txt: the domain is the parent folder's name */
        char *slash = strrchr(files[f], '/');
        if (!slash) continue;
        *slash = 0;
        const char *dname = strrchr(files[f], '/');
        dname = dname ? dname + 1 : files[f];
        if (o && o->domains && *o->domains && !br_name_in_list(o->domains, dname)) continue;
        if (res->ndomains == BR_PREPARE_MAX_DOMAINS) {
            st = br_error(BR_EINVAL, "more than %d domains", BR_PREPARE_MAX_DOMAINS);
            break;
        }
        br_prepare_domain_t *d = &res->domains[res->ndomains];
        if (strlen(dname) >= sizeof d->name) {
            st = br_error(BR_EINVAL, "%s: the domain name '%s' is longer than %zu bytes", files[f], dname, sizeof d->name - 1);
            break;
        }
        res->ndomains++;
        strcpy(d->name, dname);
        json_t *jd = json_object();
        json_object_set_new(doms, d->name, jd);
        for (int s = 0; s < 2 && st == BR_OK; s++) {
            const char *split = s ? "val" : "train";
            char name[32], label[96];
            snprintf(name, sizeof name, "%s.txt", split);
            st = br_buf_path(&in, files[f], name);
            if (st == BR_OK) st = br_buf_path(&odir, out_dir, d->name);
            snprintf(name, sizeof name, "%s.bin", split);
            if (st == BR_OK) st = br_buf_path(&out, br_buf_str(&odir), name);
            if (st == BR_OK) st = br_mkdir_p(br_buf_str(&odir));
            if (st == BR_OK && !br_file_exists(br_buf_str(&in)))
                st = br_error(BR_ENOTFOUND, "%s: missing (every domain needs train.txt and val.txt)", br_buf_str(&in));
            snprintf(label, sizeof label, "prepare %s/%s", d->name, split);
            br_prepare_split_t *r = s ? &d->val : &d->train;
            if (st == BR_OK) st = encode_split(tok, br_buf_str(&in), br_buf_str(&out), nth, o ? o->quiet : 0, label, r);
            if (st == BR_OK) {
                json_object_set_new(jd, split, json_pack("{s:s, s:I, s:I, s:I}", "path", br_buf_str(&out), "documents", (json_int_t)r->docs,
                                                         "tokens", (json_int_t)r->tokens, "bytes", (json_int_t)r->bytes));
                res->seconds += r->seconds;
                res->bytes += r->bytes;
            }
        }
    }
    br_buf_free(&in);
    br_buf_free(&odir);
    br_buf_free(&out);
    if (st == BR_OK && res->ndomains == 0) st = br_error(BR_ENOTFOUND, "%s: no domain matched", raw_dir);
    if (st == BR_OK) {
        json_object_set_new(man, "domains", doms);
        doms = NULL;
        br_buf_t path = BR_BUF_INIT;
        st = br_buf_path(&path, out_dir, "MANIFEST.json");
        char *text = st == BR_OK ? json_dumps(man, JSON_INDENT(2)) : NULL;
        if (text) {
            st = br_write_file_atomic(br_buf_str(&path), text, strlen(text));
            free(text);
        }
        br_buf_free(&path);
    }
    json_decref(doms);
    json_decref(man);
    br_free_paths(files, nfiles);
    br_tokenizer_free(tok);
    return st;
}
