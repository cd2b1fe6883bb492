/* The routing heat map of `braid eval --routing`: one panel per domain, layers down, FFN
 * experts across, each cell the share of that domain's tokens the layer sends to the expert
 * (white 0% to dark blue 100%, the value printed and as a tooltip).  The per-layer view of
 * plot/runs.h (domains down, one panel per layer) answers "what does layer l do"; this one
 * answers "where does domain d go, layer by layer". */
#ifndef BR_PLOT_ROUTING_H
#define BR_PLOT_ROUTING_H
#include <stddef.h>

#include "base/status.h"

/* Writes the SVG atomically to path.  shares (nd, L, E): shares[(d * L + l) * E + j];
 * expert_labels (E) may be NULL or hold NULL entries (then "e<j>"); title may be NULL.
 * BR_EINVAL for empty or oversized dimensions (at most 64 domains, 256 layers, 256 experts). */
br_status br_plot_routing(const char *path, const char *title, const char *const *domains, size_t nd, size_t L,
                          size_t E, const char *const *expert_labels, const double *shares);
#endif
