-- 002: indexes for the keyset-paginated catalog (ecom_products.c).
-- id order walks the primary key; price order (price, id); descending
-- price walks (-price, id), so the keyset condition is one row comparison.
CREATE INDEX products_active_price_desc ON products ((-price), id) WHERE active;
CREATE INDEX products_active_id ON products (id) WHERE active;
