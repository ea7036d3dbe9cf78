/*
 * ecom_pricing.h: the sale price in the statements that show or charge a
 * price (issue 10, Sales). The rule and the arithmetic live in SQL, in one
 * place (sql/023_discounts.sql: ecom_sale, ecom_sale_price); a statement
 * joins ECOM_SALE_JOIN(alias) of its products row and reads
 * ECOM_SALE_PRICE(alias) where it read alias.price. The routes of the
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

#endif /* ECOM_PRICING_H */
