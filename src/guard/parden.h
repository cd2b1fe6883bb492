/* PARDEN (Zhang, Zhang, Foerster, ICML 2024): ask the model to repeat its own output; a
 * safety-aligned model refuses to repeat harmful text, so the repeat diverges.  Score =
 * character-level BLEU-4 (NLTK sentence_bleu, no smoothing) of the windowed (output, repeat)
 * pair; the output is flagged harmful when the score is below a threshold.
 *
 * Windowed score, exactly as the reference's final metric (see docs/parden.md):
 *   1. remove the literal two characters "/n" from both texts (not newlines);
 *   2. k = min(window, pieces of output split on " ", pieces of repeat split on " ");
 *   3. strip both (Unicode whitespace), keep the first k " "-separated pieces of each;
 *   4. collapse runs of Unicode whitespace into one space;
 *   5. sentence_bleu([output], repeat) over characters.
 * window = 0 skips steps 1-4 (plain sentence BLEU of the whole texts).
 *
 * The server guards a response in two steps: br_parden_prompt() builds the repeat prompt,
 * the model generates greedily (<= max_new_tokens), and br_parden_check() scores it — or in
 * one call with br_parden_guard() and a generation callback.  Everything here is thread-safe:
 * no global state, options are read-only. */
#ifndef BR_GUARD_PARDEN_H
#define BR_GUARD_PARDEN_H
#include <stdbool.h>
#include <stddef.h>
#include "base/buf.h"
#include "base/status.h"
#include "guard/bleu.h"

typedef enum {
    BR_PARDEN_LLAMA2 = 0, /* Llama-2 chat with its system prompt: the paper's prompt verbatim */
    BR_PARDEN_MISTRAL,    /* "<s>[INST] ... [/INST]" without a system prompt (Mistral-Instruct) */
    BR_PARDEN_CHATML,     /* generic chat: <|im_start|>system/user/assistant (Qwen, many others) */
    BR_PARDEN_PLAIN,      /* no chat wrapper: the instruction text only (base models) */
    BR_PARDEN_TEMPLATE_COUNT
} br_parden_template;

/* Default threshold: the threshold at the TPR-90% point of the 60-word metric on the stored
 * history pairs (docs/parden.md: `braid parden eval ...`).  Tune it for a new model with eval. */
#define BR_PARDEN_DEFAULT_THRESHOLD 0.6

typedef struct {
    int window;                  /* words; default 60; 0 = whole texts */
    double threshold;            /* flag harmful when score < threshold */
    br_parden_template tmpl;     /* repeat prompt; default BR_PARDEN_LLAMA2 */
    int max_new_tokens;          /* repeat length; default 100 (the paper's) */
    br_bleu_unit unit;           /* default BR_BLEU_CHAR (the paper's) */
} br_parden_opts_t;

void br_parden_opts_default(br_parden_opts_t *o);
/* "llama2" | "mistral" | "chatml" | "plain" -> template; BR_EINVAL naming the choices otherwise. */
br_status br_parden_template_parse(const char *name, br_parden_template *t);
const char *br_parden_template_name(br_parden_template t);

/* The repeat prompt for `output`; *prompt is malloc'd (free with free()). */
br_status br_parden_prompt(br_parden_template t, const char *output, char **prompt);

/* Steps 1-4 above for both texts.  *ref_out and *hyp_out are malloc'd, NUL-terminated. */
br_status br_parden_window(const char *ref, size_t ref_bytes, const char *hyp, size_t hyp_bytes, int window,
                           char **ref_out, size_t *ref_out_bytes, char **hyp_out, size_t *hyp_out_bytes);

/* The PARDEN score of (output, repeat) with the options' window and unit. */
br_status br_parden_score(const br_parden_opts_t *o, const char *output, const char *repeat, double *score);
/* The early prototype's score (the stored `bleu` of history/71add30): both texts cut to the
 * shorter one's length in characters, then sentence BLEU. */
br_status br_parden_score_trunc(const char *output, const char *repeat, double *score);

typedef struct {
    double score;     /* BLEU of (output, repeat) in [0, 1] */
    double threshold; /* the threshold used */
    bool harmful;     /* score < threshold */
} br_parden_result_t;

/* Scores an (output, repeat) pair and gives the verdict. */
br_status br_parden_check(const br_parden_opts_t *o, const char *output, const char *repeat,
                          br_parden_result_t *res);

/* Generates a completion of `prompt` (greedy, at most max_new_tokens); *text is malloc'd.
 * Returns a status with a message on failure. */
typedef br_status (*br_parden_generate_fn)(void *user, const char *prompt, int max_new_tokens, char **text);

/* Builds the repeat prompt, calls gen, checks the repeat.  *repeat_out (optional) receives the
 * repeat (malloc'd) when the call succeeds. */
br_status br_parden_guard(const br_parden_opts_t *o, const char *output, br_parden_generate_fn gen, void *user,
                          br_parden_result_t *res, char **repeat_out);

/* The PARDEN data folder (holding history/ and PARDEN_data/), when present: $BRAID_SHARED/data/parden
 * if BRAID_SHARED is set, else the first shared/data/parden found walking up from the current
 * directory (/work/main -> /work/shared/data/parden), into dir (replaced; cleared when absent).
 * BR_ENOTFOUND when absent, BR_ENOMEM (or BR_ERANGE for a fixed dir) when the path does not fit. */
br_status br_parden_data_dir(br_buf_t *dir);
#endif
