/*
 * ecom_payment.h: the payment provider interface.
 *
 * A provider is a small vtable registered with httpd's provider API under
 * the group "ecom_payment", version "0", as socache providers are:
 *
 *   ap_register_provider(p, ECOM_PAYMENT_GROUP, "acme",
 *                        ECOM_PAYMENT_VERSION, &acme_provider);
 *
 * from the register_hooks of any module (mod_ecom registers "sandbox",
 * ecom_pay_sandbox.c). `EcomPaymentProvider acme` (per server, default
 * sandbox) selects one; a name no module registered stops start-up with
 * a message listing the registered ones (ecom_config.c, ECOM0701).
 *
 * The payments resource (ecom_payments.c) calls charge() once per payment
 * attempt, INSIDE the transaction that holds the order row locked (FOR
 * UPDATE), after it checked that the order is pending and has no live
 * payment, and records the outcome in the same transaction. So a charge
 * must return within the database's bounded waits (the shipped
 * idle_in_transaction_session_timeout is 10 s): a provider that may take
 * longer answers PROCESSING and reports the end through the signed
 * webhook (POST /payments/webhook/, ECOM_PAY_* events), as tok_async does.
 * charge() must be thread-safe and keep no state between calls; anything
 * it allocates comes from p (the request pool). It never sees more of the
 * card than the client's token.
 */
#ifndef ECOM_PAYMENT_H
#define ECOM_PAYMENT_H

#include "apr_pools.h"

#define ECOM_PAYMENT_GROUP   "ecom_payment"
#define ECOM_PAYMENT_VERSION "0"
#define ECOM_PAYMENT_DEFAULT "sandbox"

typedef enum {
    ECOM_PAY_SUCCEEDED,     /* charged: 201, the order is paid */
    ECOM_PAY_PROCESSING,    /* accepted, the outcome comes by webhook: 202 */
    ECOM_PAY_DECLINED,      /* refused by the provider: 402, recorded */
    ECOM_PAY_INVALID_TOKEN, /* the token means nothing to the provider:
                             * 422, nothing recorded */
    ECOM_PAY_UNAVAILABLE    /* the provider could not be reached: 503
                             * with Retry-After, nothing recorded */
} ecom_pay_status;

typedef struct {
    ecom_pay_status status;
    const char *reference;  /* the provider's id of the charge (at most 255
                             * bytes), or NULL */
    const char *reason;     /* DECLINED: a short sentence for the client
                             * (at most 500 bytes), or NULL */
} ecom_pay_outcome;

typedef struct {
    const char *name;       /* as registered; stored in payments.provider
                             * (1 .. 32 bytes) */
    /* Charges amount (minor units, > 0) of currency (ISO 4217) for
     * order_id with the client's token (1 .. 255 visible bytes), and
     * fills *out. */
    void (*charge)(apr_pool_t *p, long long order_id, long long amount,
                   const char *currency, const char *token,
                   ecom_pay_outcome *out);
} ecom_payment_provider;

/* The provider registered as name, or NULL. */
const ecom_payment_provider *ecom_payment_provider_find(const char *name);
/* The registered names, comma-separated, in p (for messages). */
const char *ecom_payment_provider_names(apr_pool_t *p);
/* Registers the built-in sandbox provider (ecom_pay_sandbox.c); called
 * from mod_ecom's register_hooks. */
void ecom_pay_sandbox_register(apr_pool_t *p);

#endif /* ECOM_PAYMENT_H */
