/*
 * ecom_products.h: the product summary the catalog list shows
 * (ecom_products.c), for other resources that answer with products
 * (ecom_recs.c): its SQL columns over "products p LEFT JOIN categories c"
 * and their JSON names. A statement selects PRODUCT_COLS after columns of
 * its own and renders them with ecom_row_json(q, row,
 * ecom_product_summary, <index of p.id>).
 */
#ifndef ECOM_PRODUCTS_H
#define ECOM_PRODUCTS_H

#include "ecom_db.h"
#include "ecom_pricing.h"

/* price is the effective price (a sale's, issue 10: the sale stored on the
 * row, sql/025, through ECOM_ROW_PRICE), list_price the product's own,
 * price_ends_at when the sale ends (null without one) */
#define PRODUCT_COLS \
    "p.id, p.sku, p.name, p.description, " ECOM_ROW_PRICE("p") ", " \
    "p.currency, p.stock, " \
    "p.active, c.slug, " ECOM_TS("p.created_at") ", " ECOM_TS("p.updated_at") \
    ", " PRODUCT_RATING ", p.price, " ECOM_TS(ECOM_ROW_SALE_ENDS("p")) \
    ", p.rating_key"

/* The rating summary {average, count} from the product row's own columns
 * (sql/013_reviews.sql and sql/020 keep them with every review write), as
 * one text column "<rating_key>/<rating_count>" that EC_RATING renders:
 * average is rating_key / 100, the mean of the visible reviews rounded
 * half up to two decimals, null without reviews (rating_key -1). Two
 * integers printed by PostgreSQL cost it a fifth of a json_build_object()
 * per row, and C reads them without a JSON parse. */
#define PRODUCT_RATING "p.rating_key::text || '/' || p.rating_count"


/* PRODUCT_COLS' JSON names, NULL-terminated (the last column, rating_key,
 * is read but not shown) */
extern const ecom_col *const ecom_product_summary;

/* The watchdog's job (mod_ecom.c): count the search terms' document
 * frequencies again (sql/034), from which a q page's reading is chosen,
 * once every ECOM_SEARCH_STATS_INTERVAL seconds across the nodes (the
 * claim), asked every ECOM_SEARCH_STATS_TICK seconds so that a node
 * started after a long pause counts soon (the watchdog has no database
 * connection yet when it starts). */
#define ECOM_SEARCH_STATS_INTERVAL 3600
#define ECOM_SEARCH_STATS_TICK 30
apr_status_t ecom_search_stats_run(server_rec *s, apr_pool_t *p);

#endif /* ECOM_PRODUCTS_H */
