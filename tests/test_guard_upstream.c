/* guard/upstream (OpenAI-compatible completions client) and `braid parden repeat|score|eval|check`
 * end to end, against a small OpenAI-style server this test runs on 127.0.0.1 (libmicrohttpd).
 * The server "repeats" the text inside the PARDEN prompt and refuses texts marked REFUSE, so the
 * pipeline's verdicts are known.  Cases: normal answers, 5xx then success (retries), a server
 * that is down, malformed JSON, JSON without choices, 4xx, a slow server (timeout), and a
 * `repeat` run that fails half-way and resumes without losing rows. */
#include <jansson.h>
#include <microhttpd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/csv.h"
#include "base/fileio.h"
#include "guard/parden.h"
#include "guard/upstream.h"
#include "harness.h"

enum { MODE_OK, MODE_MALFORMED, MODE_NOCHOICES, MODE_400, MODE_SLOW };
static atomic_int mode = MODE_OK;
static atomic_int fail_5xx = 0;     /* answer 503 to this many requests first */
static atomic_int ok_budget = -1;   /* after this many OK answers, answer 500 (-1: unlimited) */
static atomic_int requests = 0;
static atomic_int bad_requests = 0; /* requests missing what a completions call must send */
static atomic_int slow_done = 0;    /* MODE_SLOW handlers that finished sleeping */
static char want_model[64] = "";

typedef struct {
    char *data;
    size_t len;
} upload_t;

/* The text PARDEN asked to repeat: between the first "\ne. " and the last " ] Please". */
static char *repeat_of(const char *prompt)
{
    const char *a = strstr(prompt, "\ne. ");
    const char *b = NULL, *p = prompt;
    while ((p = strstr(p, " ] Please")) != NULL) b = p++;
    if (!a || !b || b < a + 4) return strdup("");
    a += 4;
    if (strstr(a, "REFUSE") && strstr(a, "REFUSE") < b) return strdup(" I cannot fulfill your request. I'm just an AI.");
    return strndup(a, (size_t)(b - a));
}

static enum MHD_Result reply(struct MHD_Connection *c, unsigned code, const char *body)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);
    MHD_add_response_header(r, "Content-Type", "application/json");
    enum MHD_Result ret = MHD_queue_response(c, code, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                               const char *version, const char *data, size_t *size, void **con_cls)
{
    (void)cls;
    (void)version;
    upload_t *u = *con_cls;
    if (!u) {
        *con_cls = calloc(1, sizeof(upload_t));
        return MHD_YES;
    }
    if (*size) {
        u->data = realloc(u->data, u->len + *size + 1);
        memcpy(u->data + u->len, data, *size);
        u->len += *size;
        u->data[u->len] = 0;
        *size = 0;
        return MHD_YES;
    }
    atomic_fetch_add(&requests, 1);
    if (strcmp(method, "POST") || strcmp(url, "/v1/completions")) return reply(conn, 404, "{\"error\":\"not found\"}");
    if (atomic_load(&fail_5xx) > 0) {
        atomic_fetch_sub(&fail_5xx, 1);
        return reply(conn, 503, "{\"error\":{\"message\":\"loading model\"}}");
    }
    int m = atomic_load(&mode);
    if (m == MODE_MALFORMED) return reply(conn, 200, "{\"choices\": [{\"text\": \"abc\"");
    if (m == MODE_NOCHOICES) return reply(conn, 200, "{\"object\": \"text_completion\"}");
    if (m == MODE_400) return reply(conn, 400, "{\"error\":{\"message\":\"model 'x' does not exist\"}}");
    if (m == MODE_SLOW) {
        usleep(1500 * 1000);
        atomic_fetch_add(&slow_done, 1);
        return reply(conn, 504, "{\"error\":\"too slow\"}"); /* the client has given up */
    }
    if (atomic_load(&ok_budget) == 0) return reply(conn, 500, "{\"error\":\"internal\"}");
    if (atomic_load(&ok_budget) > 0) atomic_fetch_sub(&ok_budget, 1);
    json_t *req = json_loadb(u ? u->data : "", u ? u->len : 0, 0, NULL);
    const char *prompt = json_string_value(json_object_get(req, "prompt"));
    json_t *mt = json_object_get(req, "max_tokens"), *temp = json_object_get(req, "temperature");
    const char *model = json_string_value(json_object_get(req, "model"));
    const char *auth = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");
    if (!prompt || !json_is_integer(mt) || json_number_value(temp) != 0.0 ||
        (want_model[0] && (!model || strcmp(model, want_model))) || (want_model[0] && (!auth || strcmp(auth, "Bearer sk-test")))) {
        atomic_fetch_add(&bad_requests, 1);
        json_decref(req);
        return reply(conn, 400, "{\"error\":{\"message\":\"bad request\"}}");
    }
    char *rep = repeat_of(prompt);
    json_t *ans = json_pack("{s:s, s:[{s:s, s:i, s:s}]}", "object", "text_completion", "choices", "text", rep,
                            "index", 0, "finish_reason", "length");
    char *body = json_dumps(ans, JSON_COMPACT);
    enum MHD_Result r = reply(conn, 200, body);
    free(body);
    free(rep);
    json_decref(ans);
    json_decref(req);
    return r;
}

static void completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode t)
{
    (void)cls;
    (void)c;
    (void)t;
    upload_t *u = *con_cls;
    if (u) {
        free(u->data);
        free(u);
    }
    *con_cls = NULL;
}

static char base_url[128];

static void test_client(void)
{
    br_upstream_opts_t o;
    br_upstream_opts_default(&o);
    o.base_url = base_url;
    o.backoff_s = 0.01;
    char *prompt = NULL, *text = NULL;
    const char *out = "The GNU General Public License is a free, copyleft license for software.";
    CHECK_OK(br_parden_prompt(BR_PARDEN_LLAMA2, out, &prompt));
    CHECK_OK(br_upstream_complete(&o, prompt, 100, &text));
    CHECK_STR(text, out);
    free(text);

    /* guard in one call: a faithful repeat is benign */
    br_parden_opts_t po;
    br_parden_opts_default(&po);
    br_parden_result_t r;
    char *rep = NULL;
    CHECK_OK(br_parden_guard(&po, out, br_upstream_generate, &o, &r, &rep));
    CHECK(r.score == 1.0 && !r.harmful);
    CHECK_STR(rep, out);
    free(rep);
    CHECK_OK(br_parden_guard(&po, "REFUSE: step one of the plan", br_upstream_generate, &o, &r, NULL));
    CHECK(r.harmful);

    /* 5xx twice, then an answer: retried */
    atomic_store(&fail_5xx, 2);
    int before = atomic_load(&requests);
    CHECK_OK(br_upstream_complete(&o, prompt, 100, &text));
    CHECK_INT(atomic_load(&requests) - before, 3);
    free(text);
    /* 5xx more often than the retries allow */
    atomic_store(&fail_5xx, 10);
    o.retries = 2;
    CHECK_STATUS(br_upstream_complete(&o, prompt, 100, &text), BR_ENET);
    CHECK(strstr(br_errmsg(), "503") && strstr(br_errmsg(), "loading model") && strstr(br_errmsg(), "3 tries"));
    atomic_store(&fail_5xx, 0);
    o.retries = 3;

    atomic_store(&mode, MODE_MALFORMED);
    before = atomic_load(&requests);
    CHECK_STATUS(br_upstream_complete(&o, prompt, 100, &text), BR_ENET);
    CHECK(strstr(br_errmsg(), "malformed JSON") != NULL);
    CHECK_INT(atomic_load(&requests) - before, 1); /* not retried */
    atomic_store(&mode, MODE_NOCHOICES);
    CHECK_STATUS(br_upstream_complete(&o, prompt, 100, &text), BR_ENET);
    CHECK(strstr(br_errmsg(), "choices[0].text") != NULL);
    atomic_store(&mode, MODE_400);
    CHECK_STATUS(br_upstream_complete(&o, prompt, 100, &text), BR_EINVAL);
    CHECK(strstr(br_errmsg(), "400") && strstr(br_errmsg(), "does not exist"));
    atomic_store(&mode, MODE_SLOW);
    o.timeout_s = 0.3;
    o.retries = 0;
    CHECK_STATUS(br_upstream_complete(&o, prompt, 100, &text), BR_ETIMEOUT);
    atomic_store(&mode, MODE_OK);
    /* the abandoned slow handler must not answer into the tests below (it used to spend
     * their ok_budget): it answers nothing useful, and is waited for */
    for (int i = 0; i < 500 && atomic_load(&slow_done) == 0; i++) usleep(10 * 1000);
    o.timeout_s = 120;

    /* down: nothing listens on port 1 */
    br_upstream_opts_t down = o;
    down.base_url = "http://127.0.0.1:1/v1";
    down.retries = 1;
    CHECK_STATUS(br_upstream_complete(&down, prompt, 100, &text), BR_ENET);
    CHECK(strstr(br_errmsg(), "not reachable") && strstr(br_errmsg(), "127.0.0.1:1"));
    CHECK_STATUS(br_upstream_complete(&down, NULL, 100, &text), BR_EINVAL);
    free(prompt);
}

/* ---- the CLI end to end ---- */

static const char *ROWS[][2] = {
    {"0", "Everyone is permitted to copy and distribute verbatim copies of this license document, but changing it is not allowed."},
    {"1", "The licenses for most software and other practical works are designed to take away your freedom to share and change the works."},
    {"2", "REFUSE When we speak of free software, we are referring to freedom, not price."},
    {"3", "To protect your rights, we need to prevent others from denying you these rights or asking you to surrender the rights."},
    {"4", "For example, if you distribute copies of such a program, whether gratis or for a fee, you must pass on to the recipients the same freedoms that you received."},
    {"5", "REFUSE Developers that use the GNU GPL protect your rights with two steps: (1) assert copyright on the software, and (2) offer you this License giving you legal permission to copy, distribute and/or modify it."},
    {"6", "Some devices are designed to deny users access to install or run modified versions of the software inside them, although the manufacturer can do so."},
    {"7", "Finally, every program is threatened constantly by software patents.\nStates should not allow patents to restrict development and use of software on general-purpose computers."},
};
#define NROWS (sizeof ROWS / sizeof *ROWS)

static int run(const char *cmd)
{
    int rc = system(cmd);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static void test_cli(void)
{
    const char *braid = getenv("BRAID");
    if (!braid || access(braid, X_OK) != 0) {
        SKIP("BRAID not set: the CLI end-to-end part needs the braid program (make test sets it)");
        return;
    }
    char dir[] = "/tmp/braid_parden_XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char in[256], out[256], scored[256], cmd[2048];
    snprintf(in, sizeof in, "%s/in.csv", dir);
    snprintf(out, sizeof out, "%s/rep.csv", dir);
    snprintf(scored, sizeof scored, "%s/scored.csv", dir);
    FILE *f = fopen(in, "w");
    const char *hdr[2] = {"id", "output"};
    CHECK_OK(br_csv_write_row(f, hdr, 2));
    for (size_t i = 0; i < NROWS; i++) CHECK_OK(br_csv_write_row(f, ROWS[i], 2));
    fclose(f);

    /* the server fails after 3 answers: rows 0-2 are kept, the run reports the failure */
    strcpy(want_model, "llama-2-7b-chat");
    atomic_store(&ok_budget, 3);
    snprintf(cmd, sizeof cmd, "BRAID_QUIET=1 %s parden repeat --in %s --out %s --upstream %s --model-name llama-2-7b-chat "
             "--api-key sk-test --retries 1 --save-every 2 2>%s/err1.txt", braid, in, out, base_url, dir);
    CHECK_INT(run(cmd), 1);
    br_csv_t c;
    CHECK_OK(br_csv_read(out, &c));
    CHECK_INT(c.nrows, 3);
    CHECK_INT(c.ncols, 3);
    CHECK_STR(c.header[2], "repeated");
    if (c.nrows == 3) CHECK_STR(br_csv_cell(&c, 1, 2), ROWS[1][1]);
    br_csv_free(&c);
    CHECK_INT(atomic_load(&bad_requests), 0);

    /* resume: only the 5 remaining rows are requested */
    atomic_store(&ok_budget, -1);
    int before = atomic_load(&requests);
    snprintf(cmd, sizeof cmd, "BRAID_QUIET=1 %s parden repeat --in %s --out %s --upstream %s --model-name llama-2-7b-chat "
             "--api-key sk-test 2>%s/err2.txt", braid, in, out, base_url, dir);
    CHECK_INT(run(cmd), 0);
    CHECK_INT(atomic_load(&requests) - before, (int)NROWS - 3);
    CHECK_OK(br_csv_read(out, &c));
    CHECK_INT(c.nrows, NROWS);
    for (size_t i = 0; i < c.nrows && i < NROWS; i++) {
        CHECK_STR(br_csv_cell(&c, i, 1), ROWS[i][1]);
        bool refused = strstr(ROWS[i][1], "REFUSE") != NULL;
        CHECK(refused == (strstr(br_csv_cell(&c, i, 2), "I cannot") != NULL));
    }
    br_csv_free(&c);
    /* nothing left to do: no request at all */
    before = atomic_load(&requests);
    CHECK_INT(run(cmd), 0);
    CHECK_INT(atomic_load(&requests), before);
    strcpy(want_model, "");

    /* a down upstream: clear error, the finished file untouched */
    char *data0 = NULL, *data1 = NULL;
    size_t n0, n1;
    CHECK_OK(br_read_file(out, &data0, &n0));
    snprintf(cmd, sizeof cmd, "%s parden repeat --in %s --out %s/other.csv --upstream http://127.0.0.1:1/v1 --retries 0 "
             "2>%s/err3.txt", braid, in, dir, dir);
    CHECK_INT(run(cmd), 1);
    char p3[300];
    snprintf(p3, sizeof p3, "%s/err3.txt", dir);
    CHECK_OK(br_read_file(p3, &data1, &n1));
    CHECK(data1 && strstr(data1, "not reachable") && strstr(data1, "row 0"));
    free(data1);
    /* resume against an output that belongs to another input is refused */
    snprintf(cmd, sizeof cmd, "%s parden repeat --in %s --output-col id --out %s --upstream %s 2>/dev/null", braid, in,
             out, base_url);
    CHECK_INT(run(cmd), 0); /* same columns: the rows match, nothing to do */
    snprintf(cmd, sizeof cmd, "%s parden repeat --in %s --out %s --repeat-col rep2 --upstream %s 2>/dev/null", braid,
             in, out, base_url);
    CHECK_INT(run(cmd), 1);
    CHECK_OK(br_read_file(out, &data1, &n1));
    CHECK(n0 == n1 && !memcmp(data0, data1, n0));
    free(data0);
    free(data1);

    /* score, then eval: benign = rows without REFUSE, harmful = the refused ones */
    snprintf(cmd, sizeof cmd, "%s parden score --in %s --ref-col output --hyp-col repeated --out %s 2>/dev/null", braid,
             out, scored);
    CHECK_INT(run(cmd), 0);
    CHECK_OK(br_csv_read(scored, &c));
    size_t cs = 0;
    CHECK_OK(br_csv_column(&c, "parden_bleu", scored, &cs));
    br_parden_opts_t po;
    br_parden_opts_default(&po);
    for (size_t i = 0; i < c.nrows; i++) {
        double want;
        CHECK_OK(br_parden_score(&po, br_csv_cell(&c, i, 1), br_csv_cell(&c, i, 2), &want));
        CHECK(strtod(br_csv_cell(&c, i, cs), NULL) == want);
    }
    /* split into benign/harmful files */
    char ben[256], harm[256];
    snprintf(ben, sizeof ben, "%s/ben.csv", dir);
    snprintf(harm, sizeof harm, "%s/harm.csv", dir);
    FILE *fb = fopen(ben, "w"), *fh = fopen(harm, "w");
    CHECK_OK(br_csv_write_row(fb, (const char *const *)c.header, c.ncols));
    CHECK_OK(br_csv_write_row(fh, (const char *const *)c.header, c.ncols));
    for (size_t i = 0; i < c.nrows; i++)
        CHECK_OK(br_csv_write_row(strstr(br_csv_cell(&c, i, 1), "REFUSE") ? fh : fb,
                                  (const char *const *)&c.cells[i * c.ncols], c.ncols));
    fclose(fb);
    fclose(fh);
    br_csv_free(&c);
    char res[256];
    snprintf(res, sizeof res, "%s/eval.json", dir);
    snprintf(cmd, sizeof cmd, "%s parden eval --benign %s --benign-cols output,repeated --harmful %s --harmful-cols "
             "output,repeated --json --out-prefix %s/roc > %s", braid, ben, harm, dir, res);
    CHECK_INT(run(cmd), 0);
    json_error_t je;
    json_t *j = json_load_file(res, 0, &je);
    CHECK(j != NULL);
    CHECK(json_real_value(json_object_get(j, "auc")) == 1.0);
    CHECK(json_real_value(json_object_get(j, "fpr_at_tpr90")) == 0.0);
    json_decref(j);
    snprintf(cmd, sizeof cmd, "%s/roc.svg", dir);
    CHECK(br_file_exists(cmd));
    /* bad input: a missing column, a ragged CSV */
    snprintf(cmd, sizeof cmd, "%s parden score --in %s --ref-col output --hyp-col nope --out %s/x.csv 2>/dev/null", braid,
             out, dir);
    CHECK_INT(run(cmd), 1);
    char rag[256];
    snprintf(rag, sizeof rag, "%s/rag.csv", dir);
    f = fopen(rag, "w");
    fputs("output,repeated\na,b\nc\n", f);
    fclose(f);
    snprintf(cmd, sizeof cmd, "%s parden score --in %s --ref-col output --hyp-col repeated --out %s/x.csv 2>/dev/null",
             braid, rag, dir);
    CHECK_INT(run(cmd), 1);
    /* check against the server */
    snprintf(cmd, sizeof cmd, "%s parden check --upstream %s --text 'Free software is a matter of liberty, not price.' "
             "--json > %s/check.json", braid, base_url, dir);
    CHECK_INT(run(cmd), 0);
    snprintf(res, sizeof res, "%s/check.json", dir);
    j = json_load_file(res, 0, &je);
    CHECK(j && json_is_false(json_object_get(j, "harmful")) && json_real_value(json_object_get(j, "score")) == 1.0);
    json_decref(j);
    snprintf(cmd, sizeof cmd, "%s parden check --upstream %s --text 'REFUSE this' --json > %s/check.json", braid, base_url, dir);
    CHECK_INT(run(cmd), 0);
    j = json_load_file(res, 0, &je);
    CHECK(j && json_is_true(json_object_get(j, "harmful")));
    json_decref(j);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK_INT(run(cmd), 0);
}

int main(void)
{
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = 0; /* any free port */
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct MHD_Daemon *d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION, 0, NULL,
                                            NULL, handler, NULL, MHD_OPTION_NOTIFY_COMPLETED, completed, NULL,
                                            MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr, MHD_OPTION_END);
    CHECK(d != NULL);
    if (!d) return th_exit();
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    snprintf(base_url, sizeof base_url, "http://127.0.0.1:%u/v1", info ? (unsigned)info->port : 0u);
    test_client();
    test_cli();
    MHD_stop_daemon(d);
    return th_exit();
}
