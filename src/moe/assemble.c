/* braid upcycle and braid extend as one library call each (moe/upcycle.h): validation, Nexus
 * domain embeddings, assembly and provenance, in that order, so that bad input writes nothing. */
#include <stdlib.h>

#include "base/buf.h"
#include "base/fileio.h"
#include "moe/domain.h"
#include "moe/provenance.h"
#include "moe/upcycle.h"

/* The hidden-state rows `kind` asks for (*out NULL for random and nexus): BR_EINVAL when the
 * kind does not fit the router or the samples are not one per expert. */
static br_status router_init_for(br_router_init_kind kind, bool nexus, const char *seed, const char *const *samples,
                                 size_t n, size_t E, const char *tokenizer, size_t tokens, br_router_init_t **out)
{
    *out = NULL;
    if (nexus != (kind == BR_ROUTER_INIT_NEXUS) && !(nexus && kind == BR_ROUTER_INIT_RANDOM && !n))
        return br_error(BR_EINVAL, nexus ? "--router-init %s: a Nexus router comes from its projector (use nexus)"
                                         : "--router-init %s is for Nexus mixtures; a linear router takes random or hidden",
                        br_router_init_name(kind));
    if (kind != BR_ROUTER_INIT_HIDDEN) {
        if (n) return br_error(BR_EINVAL, "--domain-text is used by --router-init hidden only");
        return BR_OK;
    }
    if (n != E)
        return br_error(BR_EINVAL, "--router-init hidden: --domain-text needs one sample per expert, in expert order "
                                   "(%zu experts, %zu given)", E, n);
    return br_router_init_compute(out, seed, samples, n, tokenizer, tokens, 128);
}

br_status br_upcycle_assemble(const br_upcycle_opts_t *o, const char *const *domain_data, size_t n_domain_data,
                              size_t domain_tokens, br_model_config_t *out_cfg)
{
    br_upcycle_opts_t u = *o;
    u.domain_emb = NULL;
    u.domain_dim = 0;
    u.check_only = true;
    BR_TRY(br_upcycle(&u, NULL));
    bool nexus = u.method == BR_UPCYCLE_NEXUS;
    if (nexus && n_domain_data != u.n_experts)
        return br_error(BR_EINVAL, "upcycle --method nexus: --domain-data needs one directory per expert (%zu experts, %zu given)",
                        u.n_experts, n_domain_data);
    if (nexus) BR_TRY(br_domain_check(domain_data, n_domain_data));
    br_router_init_t *ri = NULL;
    BR_TRY(router_init_for(u.router_init_kind, nexus, u.base, u.domain_text, u.n_domain_text, br_upcycle_num_experts(&u),
                           u.tokenizer, domain_tokens, &ri));
    float *emb = NULL;
    br_status s = BR_OK;
    if (nexus) s = br_domain_embeddings(u.base, domain_data, n_domain_data, domain_tokens, &emb, &u.domain_dim);
    u.domain_emb = emb;
    u.router_init = ri;
    u.check_only = false;
    if (!s) s = br_upcycle(&u, out_cfg);
    free(emb);
    br_router_init_free(ri);
    if (!s)
        s = br_provenance_write(u.out, br_upcycle_method_name(u.method), u.base, u.base_as_expert, u.experts,
                                u.n_experts, domain_data, n_domain_data);
    return s;
}

/* br_extend, then OUT/upcycle.json. */
static br_status extend_write(const br_extend_opts_t *e, const char *domain_data, br_model_config_t *out_cfg)
{
    BR_TRY(br_extend(e, out_cfg));
    return br_provenance_extend(e->moe, e->out, e->expert, domain_data);
}

br_status br_extend_assemble(const br_extend_opts_t *o, const char *seed_dir, const char *domain_data,
                             size_t domain_tokens, br_model_config_t *out_cfg)
{
    br_model_config_t mc;
    br_buf_t path = BR_BUF_INIT;
    br_status ls = br_buf_path(&path, o->moe, "config.json");
    if (!ls) ls = br_config_load(&mc, br_buf_str(&path));
    br_buf_free(&path);
    BR_TRY(ls);
    br_extend_opts_t e = *o;
    float *emb = NULL;
    br_router_init_t *ri = NULL;
    bool nexus = mc.router_nexus != 0, init = o->router_init_kind != BR_ROUTER_INIT_RANDOM || o->n_domain_text;
    if (!nexus && !init) return extend_write(&e, domain_data, out_cfg);
    if (nexus && !domain_data) return br_error(BR_EINVAL, "extend: a Nexus MoE needs --domain-data for the new domain");
    char *owned = seed_dir ? NULL : br_provenance_base(o->moe);
    const char *seed = seed_dir ? seed_dir : owned;
    if (!seed) return br_error(BR_EINVAL, "extend: %s/upcycle.json does not name the seed; pass --base DIR", o->moe);
    br_status s = BR_OK;
    if (init)
        s = router_init_for(o->router_init_kind, nexus, seed, o->domain_text, o->n_domain_text,
                            (size_t)mc.num_local_experts + 1, o->tokenizer, domain_tokens, &ri);
    int dim = 0;
    if (!s && nexus) s = br_domain_embeddings(seed, &domain_data, 1, domain_tokens, &emb, &dim);
    if (!s && nexus && dim != mc.nexus_domain_dim)
        s = br_error(BR_EINVAL, "extend: the domain embedding has %d values, the MoE's router takes %d", dim,
                     mc.nexus_domain_dim);
    free(owned);
    e.domain_emb = emb;
    e.router_init = ri;
    if (!s) s = extend_write(&e, domain_data, out_cfg);
    free(emb);
    br_router_init_free(ri);
    return s;
}
