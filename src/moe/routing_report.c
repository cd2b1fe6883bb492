/* Routing report of an MoE (moe/routing_report.h). */
#include "moe/routing_report.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lm/config_moe.h"
#include "moe/provenance.h"

uint64_t *br_routing_counts_alloc(const br_model_t *m, size_t nd)
{
    if (!br_config_has_moe_ffn(&m->cfg)) return NULL;
    return calloc(nd * (size_t)m->cfg.num_hidden_layers * (size_t)m->cfg.num_local_experts, sizeof(uint64_t));
}

br_status br_routing_shares(const br_model_t *m, const uint64_t *counts, size_t nd, double **out)
{
    *out = NULL;
    if (!counts) return br_error(BR_EINVAL, "routing shares: the model has no MoE FFN (no routing to report)");
    size_t L = (size_t)m->cfg.num_hidden_layers, E = (size_t)m->cfg.num_local_experts;
    size_t n = nd * L * E;
    double *v = malloc((n ? n : 1) * sizeof *v);
    if (!v) return br_error(BR_ENOMEM, "out of memory");
    for (size_t r = 0; r < nd * L; r++) {
        uint64_t tot = 0;
        for (size_t j = 0; j < E; j++) tot += counts[r * E + j];
        for (size_t j = 0; j < E; j++) v[r * E + j] = tot ? (double)counts[r * E + j] / (double)tot : 0;
    }
    *out = v;
    return BR_OK;
}

void br_routing_report(const br_model_t *m, const char *model_dir, char *const *doms, size_t nd,
                       const uint64_t *counts, FILE *md, json_t *root)
{
    if (!counts) return;
    size_t L = (size_t)m->cfg.num_hidden_layers, E = (size_t)m->cfg.num_local_experts;
    char **own = br_provenance_expert_domains(model_dir, E);
    json_t *jr = json_object(), *jl = json_array();
    double *top = calloc(nd, sizeof *top), *mine = calloc(nd, sizeof *mine);
    if (md) fprintf(md, "\nrouting: share of each domain's tokens sent to each FFN expert (top-%d)\n",
                         m->cfg.num_experts_per_tok ? m->cfg.num_experts_per_tok : 1);
    for (size_t l = 0; l < L; l++) {
        json_t *jlay = json_object(), *jdom = json_object();
        uint64_t *load = calloc(E, sizeof *load);
        uint64_t all = 0;
        if (md) {
            fprintf(md, "\n| layer %zu |", l);
            for (size_t j = 0; j < E; j++) fprintf(md, " expert %zu%s%s%s |", j, own && own[j] ? " (" : "", own && own[j] ? own[j] : "", own && own[j] ? ")" : "");
            fprintf(md, "\n|---|");
            for (size_t j = 0; j < E; j++) fprintf(md, "---:|");
            fprintf(md, "\n");
        }
        for (size_t d = 0; d < nd; d++) {
            const uint64_t *c = counts + (d * L + l) * E;
            uint64_t tot = 0, mx = 0;
            for (size_t j = 0; j < E; j++) tot += c[j], mx = c[j] > mx ? c[j] : mx, load[j] += c[j];
            all += tot;
            json_t *row = json_array();
            if (md) fprintf(md, "| %s |", doms[d]);
            for (size_t j = 0; j < E; j++) {
                double sh = tot ? (double)c[j] / (double)tot : 0;
                json_array_append_new(row, json_real(sh));
                if (md) fprintf(md, " %.1f%% |", 100 * sh);
                if (own && own[j] && !strcmp(own[j], doms[d])) mine[d] += sh / (double)L;
            }
            if (md) fprintf(md, "\n");
            top[d] += tot ? (double)mx / (double)tot / (double)L : 0;
            json_object_set_new(jdom, doms[d], row);
        }
        json_t *jload = json_array();
        if (md) fprintf(md, "| *load* |");
        for (size_t j = 0; j < E; j++) {
            double sh = all ? (double)load[j] / (double)all : 0;
            json_array_append_new(jload, json_real(sh));
            if (md) fprintf(md, " %.1f%% |", 100 * sh);
        }
        if (md) fprintf(md, "\n");
        json_object_set_new(jlay, "domains", jdom);
        json_object_set_new(jlay, "load", jload);
        json_array_append_new(jl, jlay);
        free(load);
    }
    json_t *js = json_object();
    if (md) fprintf(md, "\nspecialisation (mean over layers): top-expert share%s\n", own ? ", own-expert share" : "");
    for (size_t d = 0; d < nd; d++) {
        bool has_own = false;
        for (size_t j = 0; own && j < E; j++) has_own |= own[j] && !strcmp(own[j], doms[d]);
        json_t *o = json_pack("{s:f}", "top_expert_share", top[d]);
        if (has_own) json_object_set_new(o, "own_expert_share", json_real(mine[d]));
        json_object_set_new(js, doms[d], o);
        if (md) {
            fprintf(md, "  %-10s top %.1f%%", doms[d], 100 * top[d]);
            if (has_own) fprintf(md, "   own %.1f%%", 100 * mine[d]);
            fprintf(md, "\n");
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
