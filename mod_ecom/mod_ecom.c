/*
 * mod_ecom.c: the module record and its hooks.
 *
 * The handler declines anything not set to "ecom" and hands the rest to
 * the router. post_config registers every SQL statement with mod_dbd, once
 * per virtual host, so each pooled connection prepares them when it opens.
 * This file owns no request logic.
 */
#define ECOM_MODULE_C
#include "ecom.h"

#include "http_request.h"

static int ecom_handler(request_rec *r)
{
    if (!r->handler || strcmp(r->handler, "ecom") != 0) {
        return DECLINED;
    }
    return ecom_dispatch(r);
}

static int ecom_post_config(apr_pool_t *pconf, apr_pool_t *plog,
                            apr_pool_t *ptemp, server_rec *s)
{
    module *dbd = ap_find_linked_module("mod_dbd.c");
    apr_array_header_t *seen = apr_array_make(ptemp, 4, sizeof(void *));
    server_rec *sp;

    if (ecom_cache_post_config(pconf, ptemp, s) != OK) {
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    if (!APR_RETRIEVE_OPTIONAL_FN(ap_dbd_prepare)
        || !APR_RETRIEVE_OPTIONAL_FN(ap_dbd_acquire)) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, 0, s, APLOGNO(10901)
                     "mod_ecom needs mod_dbd: LoadModule dbd_module first");
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    for (sp = s; sp; sp = sp->next) {
        /* virtual hosts without DBD directives share the main server's
         * mod_dbd config: register once per distinct config */
        void *cfg = dbd ? ap_get_module_config(sp->module_config, dbd) : NULL;
        int dup = 0;
        for (int i = 0; i < seen->nelts && !dup; i++) {
            dup = APR_ARRAY_IDX(seen, i, void *) == cfg;
        }
        if (dup) {
            continue;
        }
        APR_ARRAY_PUSH(seen, void *) = cfg;
        ecom_db_register(sp);
    }
    return OK;
}

static int ecom_pre_config(apr_pool_t *pconf, apr_pool_t *plog,
                           apr_pool_t *ptemp)
{
    ecom_cache_pre_config(pconf);
    return OK;
}

static void ecom_register_hooks(apr_pool_t *p)
{
    /* before mod_dbd's post_config, which turns the registered statements
     * into per-connection-group prepare lists */
    static const char *const succ[] = { "mod_dbd.c", NULL };

    ap_hook_post_config(ecom_post_config, NULL, succ, APR_HOOK_MIDDLE);
    ap_hook_pre_config(ecom_pre_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_child_init(ecom_cache_child_init, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_handler(ecom_handler, NULL, NULL, APR_HOOK_MIDDLE);
}

/* ALWAYS_MERGE: every virtual host gets a server config of its own, even
 * one without Ecom directives, because each holds state of its own (its
 * part of the cache keys, see ecom_cache.c). */
AP_DECLARE_MODULE(ecom) = {
    STANDARD20_MODULE_STUFF,
    ecom_create_dir_conf,
    ecom_merge_dir_conf,
    ecom_create_srv_conf,
    ecom_merge_srv_conf,
    ecom_cmds,
    ecom_register_hooks,
    AP_MODULE_FLAG_ALWAYS_MERGE
};
