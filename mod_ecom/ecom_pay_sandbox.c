/*
 * ecom_pay_sandbox.c: the built-in "sandbox" payment provider
 * (ecom_payment.h), so that the whole flow runs offline. It charges
 * nothing and knows three test tokens:
 *   tok_ok        succeeded
 *   tok_declined  declined ("card_declined")
 *   tok_async     processing: the outcome comes later through the signed
 *                 webhook (scripts/ecom-admin webhook sends one)
 * Any other token is invalid (422). Its reference is "sb_" and 16 random
 * hex digits, like a real provider's charge id.
 */
#include "ecom_payment.h"

#include "httpd.h"
#include "http_config.h"
#include "ap_provider.h"
#include "apr_strings.h"
#include "apr_general.h"

static void sandbox_charge(apr_pool_t *p, long long order_id, long long amount,
                           const char *currency, const char *token,
                           ecom_pay_outcome *out)
{
    unsigned char rnd[8];
    char hex[sizeof(rnd) * 2 + 1];

    out->reference = NULL;
    out->reason = NULL;
    if (strcmp(token, "tok_ok") == 0) {
        out->status = ECOM_PAY_SUCCEEDED;
    }
    else if (strcmp(token, "tok_async") == 0) {
        out->status = ECOM_PAY_PROCESSING;
    }
    else if (strcmp(token, "tok_declined") == 0) {
        out->status = ECOM_PAY_DECLINED;
        out->reason = "card_declined: the sandbox declines tok_declined";
    }
    else {
        out->status = ECOM_PAY_INVALID_TOKEN;
        return;
    }
    if (apr_generate_random_bytes(rnd, sizeof(rnd)) != APR_SUCCESS) {
        memset(rnd, 0, sizeof(rnd));
    }
    for (apr_size_t i = 0; i < sizeof(rnd); i++) {
        apr_snprintf(hex + 2 * i, 3, "%02x", rnd[i]);
    }
    out->reference = apr_pstrcat(p, "sb_", hex, NULL);
}

static const ecom_payment_provider sandbox = { "sandbox", sandbox_charge };

void ecom_pay_sandbox_register(apr_pool_t *p)
{
    ap_register_provider(p, ECOM_PAYMENT_GROUP, sandbox.name,
                         ECOM_PAYMENT_VERSION, &sandbox);
}
