/* Routing report of an MoE for braid eval: per layer, the share of each domain's tokens sent to
 * each expert, expert load, and how specialised the routing is. */
#include "moe_report.h"

#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lm/config_moe.h"

uint64_t *moe_routing_alloc(const br_model_t *m, size_t nd)
{
    if (!br_config_has_moe_ffn(&m->cfg)) return NULL;
    return calloc(nd * (size_t)m->cfg.num_hidden_layers * (size_t)m->cfg.num_local_experts, sizeof(uint64_t));
}

/* Expert j's domain name from DIR/upcycle.json (the basename of its --domain-data, or of its
 * expert directory when it ends in -<domain>); NULL when unknown. */
static char **expert_domains(const char *model_dir, size_t E)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/upcycle.json", model_dir);
    json_t *o = json_load_file(path, 0, NULL);
    if (!o) return NULL;
    json_t *dd = json_object_get(o, "domain_data"), *ex = json_object_get(o, "experts");
    json_t *b = json_object_get(o, "base_as_expert");
    size_t off = json_is_true(b) ? 1 : 0;
    char **names = calloc(E, sizeof *names);
    for (size_t j = off; names && j < E; j++) {
        json_t *v = json_array_size(dd) == E - off ? json_array_get(dd, j - off) : json_array_get(ex, j - off);
        if (!json_is_string(v)) continue;
        char tmp[4096];
        snprintf(tmp, sizeof tmp, "%s", json_string_value(v));
        const char *base = basename(tmp), *dash = strrchr(base, '-');
        names[j] = strdup(json_array_size(dd) == E - off || !dash ? base : dash + 1);
    }
    json_decref(o);
    return names;
}

void moe_routing_report(const br_model_t *m, const char *model_dir, char **doms, size_t nd,
                        const uint64_t *counts, bool markdown, json_t *root)
{
    if (!counts) return;
    size_t L = (size_t)m->cfg.num_hidden_layers, E = (size_t)m->cfg.num_local_experts;
    char **own = expert_domains(model_dir, E);
    json_t *jr = json_object(), *jl = json_array();
    double *top = calloc(nd, sizeof *top), *mine = calloc(nd, sizeof *mine);
    if (markdown) printf("\nrouting: share of each domain's tokens sent to each FFN expert (top-%d)\n",
                         m->cfg.num_experts_per_tok ? m->cfg.num_experts_per_tok : 1);
    for (size_t l = 0; l < L; l++) {
        json_t *jlay = json_object(), *jdom = json_object();
        uint64_t *load = calloc(E, sizeof *load);
        uint64_t all = 0;
        if (markdown) {
            printf("\n| layer %zu |", l);
            for (size_t j = 0; j < E; j++) printf(" expert %zu%s%s%s |", j, own && own[j] ? " (" : "", own && own[j] ? own[j] : "", own && own[j] ? ")" : "");
            printf("\n|---|");
            for (size_t j = 0; j < E; j++) printf("---:|");
            printf("\n");
        }
        for (size_t d = 0; d < nd; d++) {
            const uint64_t *c = counts + (d * L + l) * E;
            uint64_t tot = 0, mx = 0;
            for (size_t j = 0; j < E; j++) tot += c[j], mx = c[j] > mx ? c[j] : mx, load[j] += c[j];
            all += tot;
            json_t *row = json_array();
            if (markdown) printf("| %s |", doms[d]);
            for (size_t j = 0; j < E; j++) {
                double sh = tot ? (double)c[j] / (double)tot : 0;
                json_array_append_new(row, json_real(sh));
                if (markdown) printf(" %.1f%% |", 100 * sh);
                if (own && own[j] && !strcmp(own[j], doms[d])) mine[d] += sh / (double)L;
            }
            if (markdown) printf("\n");
            top[d] += tot ? (double)mx / (double)tot / (double)L : 0;
            json_object_set_new(jdom, doms[d], row);
        }
        json_t *jload = json_array();
        if (markdown) printf("| *load* |");
        for (size_t j = 0; j < E; j++) {
            double sh = all ? (double)load[j] / (double)all : 0;
            json_array_append_new(jload, json_real(sh));
            if (markdown) printf(" %.1f%% |", 100 * sh);
        }
        if (markdown) printf("\n");
        json_object_set_new(jlay, "domains", jdom);
        json_object_set_new(jlay, "load", jload);
        json_array_append_new(jl, jlay);
        free(load);
    }
    json_t *js = json_object();
    if (markdown) printf("\nspecialisation (mean over layers): top-expert share%s\n", own ? ", own-expert share" : "");
    for (size_t d = 0; d < nd; d++) {
        bool has_own = false;
        for (size_t j = 0; own && j < E; j++) has_own |= own[j] && !strcmp(own[j], doms[d]);
        json_t *o = json_pack("{s:f}", "top_expert_share", top[d]);
        if (has_own) json_object_set_new(o, "own_expert_share", json_real(mine[d]));
        json_object_set_new(js, doms[d], o);
        if (markdown) {
            printf("  %-10s top %.1f%%", doms[d], 100 * top[d]);
            if (has_own) printf("   own %.1f%%", 100 * mine[d]);
            printf("\n");
        }
    }
    json_object_set_new(jr, "layers", jl);
    json_object_set_new(jr, "specialisation", js);
    if (own) {
        json_t *je = json_array();
        for (size_t j = 0; j < E; j++) json_array_append_new(je, own[j] ? json_string(own[j]) : json_null());
        json_object_set_new(jr, "expert_domains", je);
        for (size_t j = 0; j < E; j++) free(own[j]);
        free(own);
    }
    if (root) json_object_set_new(root, "routing", jr);
    else json_decref(jr);
    free(top);
    free(mine);
}
