/* Routing heat maps per domain (plot/routing.h). */
#include "plot/routing.h"

#include <stdio.h>
#include <stdlib.h>

#include "base/svg.h"
#include "plot/chart.h"

#define PANEL_W 300.0
#define PER_ROW 3

br_status br_plot_routing(const char *path, const char *title, const char *const *domains, size_t nd, size_t L,
                          size_t E, const char *const *expert_labels, const double *shares)
{
    if (!nd || !L || !E || nd > 64 || L > 256 || E > 256)
        return br_error(BR_EINVAL, "routing heat map: %zu domains, %zu layers, %zu experts (1..64, 1..256, 1..256)", nd,
                        L, E);
    char (*cols)[48] = malloc(E * sizeof *cols), (*rows)[16] = malloc(L * sizeof *rows);
    const char **cp = malloc(E * sizeof *cp), **rp = malloc(L * sizeof *rp);
    if (!cols || !rows || !cp || !rp) {
        free(cols), free(rows), free(cp), free(rp);
        return br_error(BR_ENOMEM, "out of memory");
    }
    for (size_t j = 0; j < E; j++) {
        const char *own = expert_labels ? expert_labels[j] : NULL;
        snprintf(cols[j], sizeof cols[j], own ? "e%zu %.30s" : "e%zu", j, own);
        cp[j] = cols[j];
    }
    for (size_t l = 0; l < L; l++) {
        snprintf(rows[l], sizeof rows[l], "layer %zu", l);
        rp[l] = rows[l];
    }
    size_t per_row = nd < PER_ROW ? nd : PER_ROW, nrows = (nd + per_row - 1) / per_row;
    double cell = PANEL_W > 90.0 * (double)E + 90 ? 90.0 : (PANEL_W - 90) / (double)E;
    double pw = 90 + cell * (double)E + 10, ph = 52 + 18.0 * (double)L;
    br_svg_t s;
    br_svg_begin(&s, 20 + pw * (double)per_row, 50 + ph * (double)nrows);
    br_svg_text(&s, 10, 24, BR_SVG_START, 14, 0, "#222222", "%s",
                title ? title : "MoE routing: share of each domain's tokens (per layer) sent to each FFN expert");
    for (size_t d = 0; d < nd; d++)
        br_chart_heatmap(&s, 10 + pw * (double)(d % per_row), 40 + ph * (double)(d / per_row), pw - 10, ph - 8,
                         domains[d], rp, L, cp, E, shares + d * L * E);
    free(cols), free(rows), free(cp), free(rp);
    return br_svg_save(&s, path);
}
