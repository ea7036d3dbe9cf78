-- 014: the filtered product list plans each page for its own filters
-- (issue 8: "filtered lists scan the whole catalog"), and search that users
-- expect: stemming, relevance, type-ahead prefixes, typo tolerance.
--
-- Until now one prepared statement per sort held every filter behind
-- "(param IS NULL OR ...)". Its generic plan cannot tell which filters are
-- on, so it walked the sort's index through every active product and
-- filtered afterwards (?category= on a million products: 144 requests/s,
-- against 1,937/s for the same SQL with the unused filters folded away).
--
-- ecom_products_page() is called through one prepared statement by the
-- module (ecom_products.c, when the client filters or searches) and runs
-- the SQL that ecom_products_page_sql() writes for the filters that are
-- on: fixed fragments of this file only, never text from the request; the
-- values travel as parameters ($1 to $9, EXECUTE ... USING). PL/pgSQL's
-- EXECUTE plans every page for its values, so PostgreSQL chooses between
-- the sort's index (a common filter value: walk in order and stop after
-- limit + 1 rows) and the filter's index (a rare one: read the few
-- matches and sort them) with the statistics of the actual value.
-- Planning costs about 0.1 ms; the unfiltered list, the hot path, keeps
-- its prepared statements and generic plans.
--
-- Parameters: $1 the ids of the category's subtree (bigint[]), $2 min_price,
-- $3 max_price, $4 in_stock, $5 q, $6 sort tag, $7 and $8 the cursor's
-- keys, $9 limit + 1. Sort tags: i (id), n (newest), p (price), d
-- (-price), r (rating), s (relevance: q only). Columns: the list's
-- (PRODUCT_COLS in ecom_products.c) and a last one, the relevance key
-- (0 for other sorts), which the cursor of sort s carries.
--
-- Search: products.search becomes an English tsvector (stems: "mugs"
-- finds "MUG"), the name weighted above the description, kept by a
-- trigger (below).
-- ecom_search_query() turns q into a tsquery of its words (letters and
-- digits; every other character separates words, so no query syntax
-- reaches to_tsquery), all required, the last one also as a prefix
-- ("christmas lig" finds LIGHTS) unless q ends with a space. Relevance is
-- ts_rank of that query, in millionths, ties by id. When the words match
-- no product at all, the list falls back to typo-tolerant matching: the
-- products whose name holds a word similar to q (pg_trgm's word
-- similarity, <% with its default threshold 0.6, through a trigram index),
-- relevance then being that similarity.

CREATE EXTENSION IF NOT EXISTS pg_trgm;

-- Kept by a trigger that fires only when an UPDATE names name or
-- description, not as a generated column: PostgreSQL computes a stored
-- generated column again on every UPDATE of the row, so every checkout's
-- stock update would stem the product's name and description again.
CREATE FUNCTION ecom_product_search(p_name text, p_description text)
RETURNS tsvector
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT setweight(to_tsvector('english'::regconfig, p_name), 'A')
        || setweight(to_tsvector('english'::regconfig, p_description), 'B')
$$;
CREATE FUNCTION ecom_product_search_tg() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.search := ecom_product_search(NEW.name, NEW.description);
    RETURN NEW;
END $$;
ALTER TABLE products DROP COLUMN search;
ALTER TABLE products ADD COLUMN search tsvector;
UPDATE products SET search = ecom_product_search(name, description);
CREATE TRIGGER products_search BEFORE INSERT OR UPDATE OF name, description
    ON products FOR EACH ROW EXECUTE FUNCTION ecom_product_search_tg();
CREATE INDEX products_search ON products USING gin (search) WHERE active;
CREATE INDEX products_name_trgm ON products
    USING gin (lower(name) gin_trgm_ops) WHERE active;
-- No index on stock for in_stock: an index whose key or predicate names
-- stock makes every stock update (each checkout's) a non-HOT update that
-- inserts into every index of products, the two GIN indexes included (a
-- partial index on stock = 0 cost the mix a quarter of its orders/s).

-- q as a tsquery: its words, all required, the last also as a prefix; NULL
-- when q has no word that is not a stop word.
CREATE FUNCTION ecom_search_query(p_q text) RETURNS tsquery
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN count(*) > 0 THEN to_tsquery('english',
           string_agg(quote_literal(w) || CASE WHEN last AND p_q !~ '\s$'
                                               THEN ':*' ELSE '' END,
                      ' & ' ORDER BY i)) END
      FROM (SELECT m[1] AS w, row_number() OVER () AS i,
                   row_number() OVER () = count(*) OVER () AS last
              FROM regexp_matches(lower(p_q), '[[:alnum:]]+', 'g') m) s
$$;

-- The conditions of a page for the filters that are on (parameters: $1
-- the subtree's ids, $2 min_price, $3 max_price, $5 q; in_stock is part of
-- the text; p_fuzzy selects the typo-tolerant text condition), shared by
-- the page (below) and its facets (015), which so count what it lists.
CREATE FUNCTION ecom_products_where(p_category boolean, p_min boolean,
                                    p_max boolean, p_in_stock boolean,
                                    p_q boolean, p_fuzzy boolean)
RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT 'p.active'
        || CASE WHEN p_category THEN ' AND p.category_id = ANY ($1)' ELSE '' END
        || CASE WHEN p_min THEN ' AND p.price >= $2' ELSE '' END
        || CASE WHEN p_max THEN ' AND p.price <= $3' ELSE '' END
        || CASE WHEN p_in_stock THEN ' AND p.stock > 0'
                WHEN NOT p_in_stock THEN ' AND p.stock = 0' ELSE '' END
        || CASE WHEN p_q AND NOT p_fuzzy THEN ' AND p.search @@ ecom_search_query($5)'
                WHEN p_q THEN ' AND lower($5) <% lower(p.name)' ELSE '' END
$$;

-- The SQL of one page.
CREATE FUNCTION ecom_products_page_sql(p_category boolean, p_min boolean,
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
        RAISE EXCEPTION 'ecom_products_page_sql: unknown sort %', p_sort;
    END IF;
    RETURN 'SELECT s.id, s.sku, s.name, s.description, s.price, s.currency, '
        || 's.stock, s.active, c.slug, floor(extract(epoch FROM s.created_at))::bigint, '
        || 'floor(extract(epoch FROM s.updated_at))::bigint, '
        || 'json_build_object(''average'', CASE WHEN s.rating_count > 0 '
        || 'THEN (s.rating_key / 100.0)::numeric(3, 2) END, '
        || '''count'', s.rating_count)::text, s.rating_key, s.rk '
        || 'FROM (SELECT p.id, p.sku, p.name, p.description, p.price, p.currency, '
        || 'p.stock, p.active, p.category_id, p.created_at, p.updated_at, '
        || 'p.rating_count, p.rating_key, ' || rk || ' AS rk '
        || 'FROM products p WHERE ' || w || ') s '
        || 'LEFT JOIN categories c ON c.id = s.category_id WHERE '
        || keys || ' LIMIT $9';
END $$;

-- The ids of the category with that slug and of every category below it
-- (UNION, not UNION ALL: a cycle, which 012's trigger forbids, would still
-- end); an unknown slug is an empty list, so an empty page.
CREATE FUNCTION ecom_category_subtree(p_slug text) RETURNS bigint[]
LANGUAGE sql STABLE AS $$
    WITH RECURSIVE sub(id) AS (
        SELECT c0.id FROM categories c0 WHERE c0.slug = p_slug
        UNION SELECT k.id FROM categories k JOIN sub ON k.parent_id = sub.id)
    SELECT coalesce(array_agg(sub.id), '{}') FROM sub
$$;

CREATE FUNCTION ecom_products_page(p_category text, p_min bigint,
                                   p_max bigint, p_in_stock boolean,
                                   p_q text, p_sort text, p_k1 bigint,
                                   p_k2 bigint, p_limit int)
RETURNS TABLE (id bigint, sku text, name text, description text,
               price bigint, currency text, stock int, active boolean,
               category text, created_at bigint, updated_at bigint,
               rating text, rating_key int, rk bigint)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    has_q boolean := p_q IS NOT NULL;
    cats  bigint[];
BEGIN
    IF p_category IS NOT NULL THEN
        cats := ecom_category_subtree(p_category);
    END IF;
    RETURN QUERY EXECUTE ecom_products_page_sql(
        p_category IS NOT NULL, p_min IS NOT NULL, p_max IS NOT NULL,
        p_in_stock, has_q, false, p_sort)
        USING cats, p_min, p_max, p_in_stock, p_q, p_sort, p_k1, p_k2,
              p_limit;
    -- nothing matches the words at all (not merely past the cursor): the
    -- typo-tolerant matching instead
    IF NOT FOUND AND has_q AND NOT EXISTS (
           SELECT 1 FROM products p
            WHERE p.active AND p.search @@ ecom_search_query(p_q)) THEN
        RETURN QUERY EXECUTE ecom_products_page_sql(
            p_category IS NOT NULL, p_min IS NOT NULL, p_max IS NOT NULL,
            p_in_stock, true, true, p_sort)
            USING cats, p_min, p_max, p_in_stock, p_q, p_sort, p_k1,
                  p_k2, p_limit;
    END IF;
END $$;
