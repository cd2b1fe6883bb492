/* Plain text as training data (lm/train.h, br_trainer_text): tokenised by the model's own
 * tokenizer into the token shards the trainer's data loader reads. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/fileio.h"
#include "lm/train.h"
#include "text/bpe_train.h"
#include "text/data.h"
#include "text/tokcfg.h"
#include "text/tokenizer.h"
#include "text/utf8.h"

/* The ids a document gets around its tokens: BOS when tokenizer_config.json asks for it
 * (add_bos_token), and the end-of-sequence id that separates documents (generation_config's
 * first eos_token_id, else tokenizer_config's eos_token, else the tokenizer's end-of-text). */
static br_status special_ids(const br_tokenizer_t *tok, const char *tokenizer, int32_t *bos, int32_t *eos)
{
    *bos = *eos = -1;
    char dir[4096];
    const char *slash = strrchr(tokenizer, '/');
    if (br_dir_exists(tokenizer)) snprintf(dir, sizeof dir, "%s", tokenizer);
    else if (slash) snprintf(dir, sizeof dir, "%.*s", slash > tokenizer ? (int)(slash - tokenizer) : 1, tokenizer);
    else snprintf(dir, sizeof dir, ".");
    br_tokcfg_t c;
    br_status s = br_tokcfg_load(&c, dir);
    if (s) return s;
    if (c.n_eos) *eos = c.eos_ids[0];
    else if (c.eos_token) *eos = br_tokenizer_token_id(tok, c.eos_token);
    if (*eos < 0) *eos = br_tokenizer_eos_id(tok);
    if (c.add_bos_token == 1) {
        *bos = c.bos_token ? br_tokenizer_token_id(tok, c.bos_token) : c.bos_id;
        if (*bos < 0) s = br_error(BR_EFORMAT, "%s: tokenizer_config.json sets add_bos_token but names no BOS token "
                                   "the tokenizer has", tokenizer);
    }
    br_tokcfg_free(&c);
    return s;
}

/* ids (growable) += the documents of one file: [BOS] tokens EOS for each. */
static br_status encode_file(const br_tokenizer_t *tok, const char *path, int32_t bos, int32_t eos, uint32_t **ids,
                             size_t *n, size_t *cap, uint64_t *bytes)
{
    char *text;
    size_t len;
    BR_TRY(br_read_file(path, &text, &len));
    br_status s = br_utf8_check(path, text, len);
    const char *sep = BR_DOC_SEPARATOR;
    size_t sl = strlen(sep), pos = 0;
    while (!s && pos < len) {
        const char *hit = memmem(text + pos, len - pos, sep, sl);
        size_t end = hit ? (size_t)(hit - text) : len;
        int32_t *doc = NULL;
        size_t nd = 0;
        if (end > pos) s = br_tokenizer_encode(tok, text + pos, end - pos, 0, &doc, &nd);
        if (!s && nd && *n + nd + 2 > *cap) {
            size_t nc = (*n + nd + 2) * 2;
            uint32_t *g = realloc(*ids, nc * sizeof *g);
            if (!g) s = br_error(BR_ENOMEM, "out of memory for %zu tokens", nc);
            else *ids = g, *cap = nc;
        }
        if (!s && nd) {
            if (bos >= 0) (*ids)[(*n)++] = (uint32_t)bos;
            for (size_t i = 0; i < nd; i++) (*ids)[(*n)++] = (uint32_t)doc[i];
            if (eos >= 0) (*ids)[(*n)++] = (uint32_t)eos;
            *bytes += end - pos;
        }
        free(doc);
        pos = hit ? end + sl : len;
    }
    free(text);
    return s;
}

br_status br_trainer_text(const char *text, const char *tokenizer, const char *shard_dir, size_t min_tokens,
                          br_text_data_t *info)
{
    memset(info, 0, sizeof *info);
    br_tokenizer_t *tok = NULL;
    char **files = NULL;
    size_t nfiles = 0, n = 0, cap = 0;
    uint32_t *ids = NULL;
    uint64_t bytes = 0;
    int32_t bos, eos;
    br_status s = br_tokenizer_load(&tok, tokenizer);
    if (s) return br_error_wrap(s, "the tokenizer for --text (tokenizer.json of the model folder, or --tokenizer)");
    s = special_ids(tok, tokenizer, &bos, &eos);
    if (!s) s = br_list_text_files(text, NULL, NULL, &files, &nfiles);
    for (size_t i = 0; i < nfiles && !s; i++) s = encode_file(tok, files[i], bos, eos, &ids, &n, &cap, &bytes);
    /* the last tenth (at least min_tokens) validates, the rest trains */
    size_t nval = n / 10 > min_tokens ? n / 10 : min_tokens;
    if (!s && n < nval + min_tokens)
        s = br_error(BR_EINVAL, "%s gives %zu tokens with this tokenizer: too few for %zu-token windows in both a "
                     "training and a validation part (give more text or a smaller --seq)", text, n, min_tokens);
    br_buf_t dir = BR_BUF_INIT, path = BR_BUF_INIT;
    if (!s) s = br_buf_path(&dir, shard_dir, BR_TEXT_DOMAIN);
    if (!s) s = br_mkdir_p(br_buf_str(&dir));
    uint32_t vocab = tok ? (uint32_t)br_tokenizer_vocab_size(tok) : 0;
    uint64_t vbytes = n ? (uint64_t)((double)bytes * (double)nval / (double)n) : 0;
    if (!s) s = br_buf_path(&path, br_buf_str(&dir), "train.bin");
    if (!s) s = br_shard_write(br_buf_str(&path), ids, n - nval, vocab, bytes - vbytes);
    if (!s) s = br_buf_path(&path, br_buf_str(&dir), "val.bin");
    if (!s) s = br_shard_write(br_buf_str(&path), ids + n - nval, nval, vocab, vbytes);
    if (!s) *info = (br_text_data_t){nfiles, n - nval, nval, bytes, vocab, bos, eos};
    br_buf_free(&dir);
    br_buf_free(&path);
    free(ids);
    br_free_paths(files, nfiles);
    br_tokenizer_free(tok);
    return s;
}
