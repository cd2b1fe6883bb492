/* braid upcycle and braid extend as one library call each (moe/upcycle.h): validation, Nexus
 * domain embeddings, assembly and provenance, in that order, so that bad input writes nothing. */
#include <stdlib.h>

#include "base/buf.h"
#include "base/fileio.h"
#include "moe/domain.h"
#include "moe/provenance.h"
#include "moe/upcycle.h"

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
    float *emb = NULL;
    if (nexus) BR_TRY(br_domain_embeddings(u.base, domain_data, n_domain_data, domain_tokens, &emb, &u.domain_dim));
    u.domain_emb = emb;
    u.check_only = false;
    br_status s = br_upcycle(&u, out_cfg);
    free(emb);
    if (!s)
        s = br_provenance_write(u.out, br_upcycle_method_name(u.method), u.base, u.base_as_expert, u.experts,
                                u.n_experts, domain_data, n_domain_data);
    return s;
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
    if (mc.router_nexus) {
        if (!domain_data) return br_error(BR_EINVAL, "extend: a Nexus MoE needs --domain-data for the new domain");
        char *seed = seed_dir ? NULL : br_provenance_base(o->moe);
        if (!seed_dir && !seed)
            return br_error(BR_EINVAL, "extend: %s/upcycle.json does not name the seed; pass --base DIR", o->moe);
        int dim = 0;
        br_status s = br_domain_embeddings(seed_dir ? seed_dir : seed, &domain_data, 1, domain_tokens, &emb, &dim);
        free(seed);
        if (s) return s;
        if (dim != mc.nexus_domain_dim) {
            free(emb);
            return br_error(BR_EINVAL, "extend: the domain embedding has %d values, the MoE's router takes %d", dim,
                            mc.nexus_domain_dim);
        }
    }
    e.domain_emb = emb;
    br_status s = br_extend(&e, out_cfg);
    free(emb);
    if (!s) s = br_provenance_extend(o->moe, o->out, o->expert, domain_data);
    return s;
}
