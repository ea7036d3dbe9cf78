-- 031: the catalog list at a million products (issue 8's targets: every
-- list scenario at 2,000 requests/s or more). Measured on the 1,000,000
-- product catalog of `make bench-catalog` (pgbench, one client, the
-- statements the module ran): a filtered page cost 0.7 to 1.6 ms of
-- PostgreSQL time against 0.24 ms for the unfiltered one. Where it went:
--   * ecom_category_subtree (sql/014), a LANGUAGE sql function that is
--     not inlined (a recursive CTE): PostgreSQL plans its query again on
--     every call, 0.25 ms of a ?category= page. As PL/pgSQL its plan is
--     cached per session (below);
--   * the PL/pgSQL page function, its EXECUTE (parse and plan per call)
--     and the module's wrapper, which probed products again for each row's
--     sale columns: in_stock and category now have static statements in
--     ecom_products.c that a generic plan serves at any value, and only
--     price bounds and q still plan per request (ecom_products_ids below);
--   * the rows read: ?min_price=40000 by id walked products_active_id and
--     read 4,620 heap rows to keep 21 (1.5 ms). The page's ids are now
--     chosen by a query that reads only index columns, and a covering
--     index on (id) INCLUDE (price) lets that walk filter on the index
--     alone (an index-only scan: 0.3 ms for the same 4,620 entries), the
--     21 rows being read afterwards by primary key.

--   * in_stock=false walked the id order filtering on stock, and the
--     catalog's first 3,808 products (the demo's) are all in stock: 4,000
--     rows read for a page. Indexing stock is not an option (sql/014: a
--     checkout's stock update must stay HOT), so the ids of the sold-out
--     products are kept in a table of their own (below).

-- A category and its subtree: the same query as sql/014, its plan now
-- kept by PL/pgSQL for the session instead of made again per call.
CREATE OR REPLACE FUNCTION ecom_category_subtree(p_slug text) RETURNS bigint[]
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN (WITH RECURSIVE sub(id) AS (
                SELECT c0.id FROM categories c0 WHERE c0.slug = p_slug
                UNION SELECT k.id FROM categories k JOIN sub ON k.parent_id = sub.id)
            SELECT coalesce(array_agg(sub.id), '{}') FROM sub);
END $$;

-- The id walk of the list, covering price: the walks of sort=id and
-- sort=newest filter a price bound on the index entries. price is already
-- a key of products_active_price, so a price update was never HOT and
-- this index costs it nothing more; stock stays out of every index (a
-- checkout's stock update stays HOT, see sql/014). It replaces
-- products_active_id, which it serves as well.
CREATE INDEX products_active_id_price ON products (id) INCLUDE (price) WHERE active;
DROP INDEX products_active_id;
-- An early version of sql/014 created a partial index on stock = 0, which
-- the deployed sql/014 does not have (it made every checkout's stock update
-- non-HOT): a database migrated with that version loses it here, so every
-- database lists sold-out products the same way.
DROP INDEX IF EXISTS products_sold_out;

-- The SQL of a page's ids: the ids (and the relevance key, 0 for other
-- sorts) of the page's products in order, reading only what the filters and
-- the sort need, so PostgreSQL can answer it from an index alone. Same
-- parameters, sort tags and fragments (ecom_products_where) as sql/014's
-- ecom_products_page_sql, which it replaces. The subquery is flattened:
-- its columns that the sort does not use are not read.
CREATE FUNCTION ecom_products_ids_sql(p_category boolean, p_min boolean,
                                      p_max boolean, p_in_stock boolean,
                                      p_q boolean, p_fuzzy boolean,
                                      p_sort text)
RETURNS text
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    w    text := ecom_products_where(p_category, p_min, p_max, p_in_stock,
                                     p_q, p_fuzzy);
    rk   text := '0::bigint';
    keys text;
BEGIN
    IF p_q AND NOT p_fuzzy THEN
        rk := '(ts_rank(p.search, ecom_search_query($5)) * 1000000)::bigint';
    ELSIF p_q THEN
        rk := '(word_similarity(lower($5), lower(p.name)) * 1000000)::bigint';
    END IF;
    keys := CASE p_sort
        WHEN 'i' THEN 's.id > COALESCE($7, 0) ORDER BY s.id'
        WHEN 'n' THEN 's.id < COALESCE($7, 9223372036854775807) ORDER BY s.id DESC'
        WHEN 'p' THEN '(s.price, s.id) > (COALESCE($7, -1), COALESCE($8, 0)) '
                      'ORDER BY s.price, s.id'
        WHEN 'd' THEN '(-s.price, s.id) > (-COALESCE($7, 9223372036854775807), '
                      'COALESCE($8, 0)) ORDER BY -s.price, s.id'
        WHEN 'r' THEN '(-s.rating_key, s.id) > (-COALESCE($7::int, 2147483647), '
                      'COALESCE($8, 0)) ORDER BY -s.rating_key, s.id'
        WHEN 's' THEN '(-s.rk, s.id) > (-COALESCE($7, 9223372036854775807), '
                      'COALESCE($8, 0)) ORDER BY s.rk DESC, s.id'
        END;
    IF keys IS NULL THEN
        RAISE EXCEPTION 'ecom_products_ids_sql: unknown sort %', p_sort;
    END IF;
    RETURN 'SELECT s.id, s.rk FROM (SELECT p.id, p.price, p.rating_key, '
        || rk || ' AS rk FROM products p WHERE ' || w || ') s WHERE '
        || keys || ' LIMIT $9';
END $$;

-- The ids of one filtered page (ecom_products.c reads their rows by
-- primary key): as ecom_products_page (sql/014), planned per request for
-- the filters that are on and their values, with the same typo-tolerant
-- fallback when the words match no product at all.
CREATE FUNCTION ecom_products_ids(p_category text, p_min bigint,
                                  p_max bigint, p_in_stock boolean,
                                  p_q text, p_sort text, p_k1 bigint,
                                  p_k2 bigint, p_limit int)
RETURNS TABLE (id bigint, rk bigint)
LANGUAGE plpgsql STABLE ROWS 21 AS $$
DECLARE
    has_q boolean := p_q IS NOT NULL;
    cats  bigint[];
BEGIN
    IF p_category IS NOT NULL THEN
        cats := ecom_category_subtree(p_category);
    END IF;
    RETURN QUERY EXECUTE ecom_products_ids_sql(
        p_category IS NOT NULL, p_min IS NOT NULL, p_max IS NOT NULL,
        p_in_stock, has_q, false, p_sort)
        USING cats, p_min, p_max, p_in_stock, p_q, p_sort, p_k1, p_k2,
              p_limit;
    IF NOT FOUND AND has_q AND NOT EXISTS (
           SELECT 1 FROM products p
            WHERE p.active AND p.search @@ ecom_search_query(p_q)) THEN
        RETURN QUERY EXECUTE ecom_products_ids_sql(
            p_category IS NOT NULL, p_min IS NOT NULL, p_max IS NOT NULL,
            p_in_stock, true, true, p_sort)
            USING cats, p_min, p_max, p_in_stock, p_q, p_sort, p_k1,
                  p_k2, p_limit;
    END IF;
END $$;

-- sql/014's page function, which the builds before this migration call:
-- now the rows of ecom_products_ids' page, in its order (the same answer),
-- and its SQL writer, which nothing calls any more, goes.
CREATE OR REPLACE FUNCTION ecom_products_page(p_category text, p_min bigint,
                                              p_max bigint, p_in_stock boolean,
                                              p_q text, p_sort text, p_k1 bigint,
                                              p_k2 bigint, p_limit int)
RETURNS TABLE (id bigint, sku text, name text, description text,
               price bigint, currency text, stock int, active boolean,
               category text, created_at bigint, updated_at bigint,
               rating text, rating_key int, rk bigint)
LANGUAGE sql STABLE AS $$
    SELECT p.id, p.sku, p.name, p.description, p.price, p.currency, p.stock,
           p.active, c.slug, floor(extract(epoch FROM p.created_at))::bigint,
           floor(extract(epoch FROM p.updated_at))::bigint,
           json_build_object('average', CASE WHEN p.rating_count > 0
                             THEN (p.rating_key / 100.0)::numeric(3, 2) END,
                             'count', p.rating_count)::text,
           p.rating_key, x.rk
      FROM ecom_products_ids(p_category, p_min, p_max, p_in_stock, p_q,
                             p_sort, p_k1, p_k2, p_limit)
           WITH ORDINALITY AS x (id, rk, ord)
     CROSS JOIN LATERAL (SELECT * FROM products q WHERE q.id = x.id OFFSET 0) p
      LEFT JOIN categories c ON c.id = p.category_id
     ORDER BY x.ord
$$;
DROP FUNCTION ecom_products_page_sql(boolean, boolean, boolean, boolean,
                                     boolean, boolean, text);

-- The ids of the products whose stock is 0 (active or not: the list checks
-- active on the row), kept by triggers in the transaction of every write
-- that moves a product to or from 0. A checkout's stock update fires one
-- only when it sells the last unit (the WHEN clauses are evaluated without
-- calling the function), as sql/015's facet trigger. ?in_stock=false by id
-- or newest walks this table's primary key and probes products per id
-- (ecom_products.c), however the sold-out products are spread.
CREATE TABLE product_sold_out (id bigint PRIMARY KEY);
INSERT INTO product_sold_out (id) SELECT id FROM products WHERE stock = 0;

CREATE FUNCTION ecom_sold_out_move() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') AND OLD.stock = 0 THEN
        DELETE FROM product_sold_out WHERE id = OLD.id;
    END IF;
    IF TG_OP IN ('UPDATE', 'INSERT') AND NEW.stock = 0 THEN
        INSERT INTO product_sold_out (id) VALUES (NEW.id) ON CONFLICT DO NOTHING;
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER products_sold_out_ins AFTER INSERT ON products
    FOR EACH ROW WHEN (NEW.stock = 0) EXECUTE FUNCTION ecom_sold_out_move();
CREATE TRIGGER products_sold_out_del AFTER DELETE ON products
    FOR EACH ROW WHEN (OLD.stock = 0) EXECUTE FUNCTION ecom_sold_out_move();
CREATE TRIGGER products_sold_out_upd AFTER UPDATE OF stock ON products
    FOR EACH ROW WHEN ((OLD.stock = 0) <> (NEW.stock = 0))
    EXECUTE FUNCTION ecom_sold_out_move();
