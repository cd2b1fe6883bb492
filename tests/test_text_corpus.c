/* Corpus building and `data prepare`: SHA-256 vectors and sha256sum, the Brown and Metamath
 * cleaners on real snippets, the hash-based budgeted train/val split, and prepare end to end
 * (shards decode back to the documents, byte counts, bad domains). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/fileio.h"
#include "base/sha256.h"
#include "harness.h"
#include "text/bpe_train.h"
#include "text/corpus.h"
#include "text/data.h"
#include "text/prepare.h"
#include "text/tokenizer.h"

static char dir[] = "/tmp/braid-corpus-XXXXXX";

static void test_sha256(void)
{
    br_sha256_t c;
    char hex[65];
    br_sha256_init(&c);
    br_sha256_final_hex(&c, hex);
    CHECK_STR(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    br_sha256_init(&c);
    br_sha256_update(&c, "abc", 3);
    br_sha256_final_hex(&c, hex);
    CHECK_STR(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    br_sha256_init(&c);
    const char *m = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    for (size_t i = 0; i < strlen(m); i++) br_sha256_update(&c, m + i, 1); /* byte by byte */
    br_sha256_final_hex(&c, hex);
    CHECK_STR(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    /* a real file against coreutils */
    const char *f = "/usr/share/common-licenses/GPL-3";
    FILE *p = popen("sha256sum /usr/share/common-licenses/GPL-3 2>/dev/null", "r");
    char want[80] = "";
    if (p && fgets(want, sizeof want, p) && strlen(want) >= 64) {
        want[64] = 0;
        CHECK_OK(br_sha256_file(f, hex));
        CHECK_STR(hex, want);
    } else SKIP("sha256sum or GPL-3 absent");
    if (p) pclose(p);
    CHECK_STATUS(br_sha256_file("/nonexistent", hex), BR_ENOTFOUND);
}

static void test_cleaners(void)
{
    /* the first sentences of Brown corpus file ca01 */
    const char *brown = "\n\n\tThe/at Fulton/np-tl County/nn-tl Grand/jj-tl Jury/nn-tl said/vbd Friday/nr an/at "
                        "investigation/nn of/in Atlanta's/np$ recent/jj primary/nn election/nn produced/vbd ``/`` "
                        "no/at evidence/nn ''/'' that/cs any/dti irregularities/nns took/vbd place/nn ./.\n\n\n\t"
                        "The/at jury/nn further/rbr said/vbd in/in term-end/nn presentments/nns that/cs the/at "
                        "City/nn-tl Executive/jj-tl Committee/nn-tl ,/, which/wdt had/hvd over-all/jj charge/nn of/in "
                        "the/at election/nn ,/, ``/`` deserves/vbz the/at praise/nn and/cc thanks/nns of/in the/at "
                        "City/nn-tl of/in-tl Atlanta/np-tl ''/'' for/in the/at manner/nn in/in which/wdt the/at "
                        "election/nn was/bedz conducted/vbn ./.\n";
    char *out;
    size_t n;
    CHECK_OK(br_clean_brown(brown, strlen(brown), &out, &n));
    CHECK_STR(out, "The Fulton County Grand Jury said Friday an investigation of Atlanta's recent primary election "
                   "produced \"no evidence\" that any irregularities took place.\n"
                   "The jury further said in term-end presentments that the City Executive Committee, which had "
                   "over-all charge of the election, \"deserves the praise and thanks of the City of Atlanta\" for "
                   "the manner in which the election was conducted.\n");
    CHECK_INT(n, strlen(out));
    free(out);
    /* set.mm: theorem idi with its proof */
    const char *mm = "  $( (_Note_:  The proof of ~ idi is trivial.) $)\n"
                     "  ${\n    idi.1 $e |- ph $.\n    $( Inference form of ~ id . $)\n"
                     "    idi $p |- ph $=\n      ( ) B $.\n  $}\n";
    CHECK_OK(br_clean_metamath(mm, strlen(mm), &out, &n));
    CHECK(strstr(out, "idi $p |- ph $= ... $.") != NULL);
    CHECK(strstr(out, "( ) B") == NULL);
    CHECK(strstr(out, "idi.1 $e |- ph $.") != NULL);
    free(out);
    CHECK_OK(br_clean_metamath("x $= unterminated", 17, &out, &n));
    CHECK_STR(out, "x $= unterminated");
    free(out);
    CHECK(br_name_in_list("general,code", "code"));
    CHECK(!br_name_in_list("general,code", "cod"));
    CHECK(!br_name_in_list(NULL, "x"));
}

/* Documents from the licence texts; two domains for prepare. */
static void add_licences(br_docs_t *d, const char *prefix, int which)
{
    const char *files[] = {"GPL-3", "Apache-2.0", "MPL-2.0", "LGPL-2.1", "Artistic", "GFDL-1.3", "GPL-2", "MPL-1.1"};
    for (int i = 0; i < 8; i++) {
        if ((i & 1) != which) continue;
        char p[256], id[64], *t;
        size_t n;
        snprintf(p, sizeof p, "/usr/share/common-licenses/%s", files[i]);
        if (br_read_file(p, &t, &n)) continue;
        snprintf(id, sizeof id, "%s:%s", prefix, files[i]);
        CHECK_OK(br_docs_add_chunked(d, id, t, n, 2000));
        free(t);
    }
}

static void test_split(void)
{
    br_docs_t d = {0};
    add_licences(&d, "a", 0);
    CHECK(d.n > 20);
    size_t before = d.n;
    CHECK_OK(br_docs_add(&d, "bad:latin1", "caf\xe9", 4));
    CHECK_OK(br_docs_add(&d, "bad:sep", "x <|endoftext|> y", 17));
    CHECK_OK(br_docs_add(&d, "bad:blank", " \n\t ", 4));
    CHECK_INT(d.n, before);
    CHECK_INT(d.skipped, 3);
    char out[300];
    snprintf(out, sizeof out, "%s/raw/alpha", dir);
    br_split_stats_t st;
    CHECK_OK(br_docs_write(&d, out, 0, 0.1, &st));
    CHECK_INT(st.docs[0] + st.docs[1], d.n);
    CHECK(st.docs[1] > 0 && st.docs[0] > st.docs[1]);
    CHECK_INT(st.bytes[0] + st.bytes[1], d.bytes);
    char p[400], *a, *b;
    size_t na, nb;
    snprintf(p, sizeof p, "%s/train.txt", out);
    CHECK_OK(br_read_file(p, &a, &na));
    /* same documents in another insertion order -> same files */
    br_docs_t r = {0};
    for (size_t i = d.n; i-- > 0;) CHECK_OK(br_docs_add(&r, d.v[i].id, d.v[i].text, d.v[i].len));
    char out2[300];
    snprintf(out2, sizeof out2, "%s/raw2/alpha", dir);
    CHECK_OK(br_docs_write(&r, out2, 0, 0.1, &st));
    snprintf(p, sizeof p, "%s/train.txt", out2);
    CHECK_OK(br_read_file(p, &b, &nb));
    CHECK(a && b && na == nb && !memcmp(a, b, na));
    free(a);
    free(b);
    /* budget */
    CHECK_OK(br_docs_write(&r, out2, 30000, 0.3, &st));
    CHECK(st.bytes[0] + st.bytes[1] <= 30000 && st.dropped > 0);
    br_docs_free(&r);
    /* errors: no documents, a split left empty */
    br_docs_t e = {0};
    CHECK_STATUS(br_docs_write(&e, out2, 0, 0.1, &st), BR_EINVAL);
    CHECK_OK(br_docs_add(&e, "only", "one document", 12));
    CHECK_STATUS(br_docs_write(&e, out2, 0, 0.1, &st), BR_EINVAL);
    CHECK(strstr(br_errmsg(), "empty") != NULL);
    br_docs_free(&e);
    /* a second domain */
    br_docs_free(&d);
    add_licences(&d, "b", 1);
    snprintf(out, sizeof out, "%s/raw/beta", dir);
    CHECK_OK(br_docs_write(&d, out, 0, 0.1, &st));
    br_docs_free(&d);
}

static void test_prepare(void)
{
    char raw[300], tok[300], tj[300];
    snprintf(raw, sizeof raw, "%s/raw", dir);
    snprintf(tok, sizeof tok, "%s/tok", dir);
    snprintf(tj, sizeof tj, "%s/tokenizer.json", dir);
    br_bpe_train_opts_t o = {.vocab_size = 600, .quiet = 1, .max_bytes = 20000, .split = "train"};
    br_bpe_train_stats_t bs;
    CHECK_OK(br_bpe_train(raw, tj, &o, &bs)); /* a budget takes a share of every domain */
    CHECK_MSG(bs.files == 2 && bs.bytes <= 20000 && bs.bytes > 18000, "%zu files, %zu bytes", bs.files, bs.bytes);
    o.max_bytes = 0;
    CHECK_OK(br_bpe_train(raw, tj, &o, NULL));
    br_prepare_opts_t po = {.threads = 2, .quiet = 1};
    br_prepare_result_t *res = calloc(1, sizeof *res);
    CHECK_OK(br_data_prepare(raw, tj, tok, &po, res));
    CHECK_INT(res->ndomains, 2);
    CHECK_INT(res->vocab, 600);
    br_tokenizer_t *t = NULL;
    CHECK_OK(br_tokenizer_load(&t, tj));
    for (int s = 0; s < 2 && t; s++) {
        char sp[400], tp[400];
        snprintf(sp, sizeof sp, "%s/alpha/%s.bin", tok, s ? "val" : "train");
        snprintf(tp, sizeof tp, "%s/alpha/%s.txt", raw, s ? "val" : "train");
        br_shard_t *sh = NULL;
        CHECK_OK(br_shard_open(&sh, sp));
        if (!sh) continue;
        CHECK_INT(br_shard_vocab(sh), 600);
        size_t n = br_shard_ntokens(sh);
        int32_t *ids = malloc(n * sizeof *ids);
        CHECK_OK(br_shard_read(sh, 0, n, ids));
        CHECK_INT(ids[n - 1], br_tokenizer_eos_id(t));
        char *dec, *orig;
        size_t dl, ol;
        CHECK_OK(br_tokenizer_decode(t, ids, n, &dec, &dl));
        CHECK_OK(br_read_file(tp, &orig, &ol));
        /* the text file is the documents joined by "\n<|endoftext|>\n" plus a final newline; the
         * shard is each document followed by <|endoftext|> */
        size_t docs = s ? res->domains[0].val.docs : res->domains[0].train.docs;
        CHECK_INT(dl, ol - 1 - 2 * (docs - 1) + 13);
        CHECK_INT(br_shard_nbytes(sh), ol - 1 - 15 * (docs - 1));
        size_t i = 0, j = 0;
        int same = 1;
        while (same && i < ol - 1 && j < dl) {
            if (!memcmp(orig + i, BR_DOC_SEPARATOR, 15)) i += 15, j += 13;
            else same = orig[i++] == dec[j++];
        }
        CHECK_MSG(same, "shard %s does not decode to the documents", sp);
        free(dec);
        free(orig);
        free(ids);
        br_shard_close(sh);
    }
    br_tokenizer_free(t);
    char man[400];
    snprintf(man, sizeof man, "%s/MANIFEST.json", tok);
    CHECK(br_file_exists(man));
    /* the loader reads the prepared domains */
    br_mix_t *m = NULL;
    CHECK_OK(br_mix_create(&m, tok, "alpha=1,beta=1", "val", 3));
    int32_t batch[2 * 33];
    if (m) CHECK_OK(br_mix_next_batch(m, batch, 2, 32));
    br_mix_free(m);
    /* bad domains: empty train.txt, missing val.txt, non-UTF-8 text, a tokenizer without <|endoftext|> */
    char p[400];
    snprintf(p, sizeof p, "%s/empty", raw);
    CHECK_OK(br_mkdir_p(p));
    snprintf(p, sizeof p, "%s/empty/train.txt", raw);
    CHECK_OK(br_write_file_atomic(p, "", 0));
    snprintf(p, sizeof p, "%s/empty/val.txt", raw);
    CHECK_OK(br_write_file_atomic(p, "x\n", 2));
    CHECK_STATUS(br_data_prepare(raw, tj, tok, &po, res), BR_EINVAL);
    CHECK(strstr(br_errmsg(), "empty") != NULL);
    snprintf(p, sizeof p, "%s/empty/train.txt", raw);
    CHECK_OK(br_write_file_atomic(p, "ol\xe9\n", 4));
    CHECK_STATUS(br_data_prepare(raw, tj, tok, &po, res), BR_EFORMAT);
    CHECK(strstr(br_errmsg(), "UTF-8") != NULL);
    snprintf(p, sizeof p, "%s/empty/val.txt", raw);
    remove(p);
    po.domains = "empty";
    CHECK_STATUS(br_data_prepare(raw, tj, tok, &po, res), BR_EFORMAT);
    snprintf(p, sizeof p, "%s/empty/train.txt", raw);
    CHECK_OK(br_write_file_atomic(p, "ok\n", 3));
    CHECK_STATUS(br_data_prepare(raw, tj, tok, &po, res), BR_ENOTFOUND);
    CHECK(strstr(br_errmsg(), "val.txt") != NULL);
    po.domains = "nosuch";
    CHECK_STATUS(br_data_prepare(raw, tj, tok, &po, res), BR_ENOTFOUND);
    po.domains = NULL;
    CHECK_STATUS(br_data_prepare("/nonexistent/raw", tj, tok, &po, res), BR_ENOTFOUND);
    CHECK_STATUS(br_data_prepare(raw, "/nonexistent/tok.json", tok, &po, res), BR_ENOTFOUND);
    free(res);
}

int main(void)
{
    if (!mkdtemp(dir)) return 1;
    test_sha256();
    test_cleaners();
    if (br_file_exists("/usr/share/common-licenses/GPL-3")) {
        test_split();
        test_prepare();
    } else SKIP("/usr/share/common-licenses absent");
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0);
    return th_exit();
}
