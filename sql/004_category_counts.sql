-- 004: GET /categories/ counts each category's active products; this
-- index answers those counts without reading the products table.
CREATE INDEX products_category_active ON products (category_id) WHERE active;
