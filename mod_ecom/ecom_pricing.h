/*
 * ecom_pricing.h: the sale price in the statements that show or charge a
 * price (issue 10, Sales). The rule and the arithmetic live in SQL, in one
 * place (sql/023_discounts.sql: ecom_sale, ecom_sale_price); a statement
 * joins ECOM_SALE_JOIN(alias) of its products row and reads
 * ECOM_SALE_PRICE(alias) where it read alias.price (the cart, the
 * checkout); the product list and detail read the sale stored on the row
 * (ECOM_ROW_PRICE, sql/025). The routes of the
 * rules themselves are ecom_pricing.c.
 */
#ifndef ECOM_PRICING_H
#define ECOM_PRICING_H

/* The sale of the product row p now (columns percent_off, ends_at; NULLs
 * without one), as the relation "sale": one inlined LATERAL subquery. */
#define ECOM_SALE_JOIN(p) \
    "LEFT JOIN LATERAL ecom_sale(" p ".id, " p ".category_id) sale ON true "
/* The effective price of the product row p (ECOM_SALE_JOIN joined). */
#define ECOM_SALE_PRICE(p) "ecom_sale_price(" p ".price, sale.percent_off)"

/* The list and the detail (many rows): the sale stored on the products row
 * p itself (sql/025_sale_columns.sql, kept by the rule writes' triggers
 * and the window edges job, EcomSaleEdgeInterval), no join. The effective
 * price, and when the sale ends (NULL without one), both inlined CASEs on
 * now(): exact when a sale ends; a sale that starts shows at the job's
 * next run. The cart and the checkout keep the exact ECOM_SALE_JOIN. */
#define ECOM_ROW_PRICE(p) \
    "ecom_price_now(" p ".price, " p ".sale_percent, " p ".sale_starts_at, " \
    p ".sale_ends_at)"
#define ECOM_ROW_SALE_ENDS(p) \
    "ecom_sale_ends_now(" p ".sale_starts_at, " p ".sale_ends_at)"

#include "httpd.h"
#include "apr_pools.h"

/* One run of the window edges job (sql/025 ecom_sale_edges) for s's
 * database (mod_watchdog's thread, no request): stores the sales that
 * started, or took over, since the last run; invalidates the catalog pages
 * of the cache when a product's sale changed. Logs what it did.
 * APR_EGENERAL when its statement failed (logged), else APR_SUCCESS. */
apr_status_t ecom_sale_edges_run(server_rec *s, apr_pool_t *p);

#endif /* ECOM_PRICING_H */
