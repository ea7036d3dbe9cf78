-- 033: price filters at a million products without planning per request
-- (issue 8: every list scenario at 2,000 requests/s or more).
--
-- Why: since sql/031 a page with min_price or max_price (and no other
-- filter) was planned per request by ecom_products_ids (EXECUTE): 0.25 to
-- 0.6 ms of planning a page, because a prepared generic plan cannot tell
-- a common price range (walk the id order, filter on the price, stop after
-- a page) from a rare one (read the range from the price index and sort
-- its few ids). And the walk itself grows with the catalog where the
-- range is neither: ?min_price=40000 on the 1,000,000-product catalog of
-- `make bench-catalog` (2.5 % of the products, none among the first 3,808)
-- read 4,620 index entries to keep 21. pgbench, 32 clients, that catalog:
-- the planned page's ids 2,504 tps, the same walk as a static statement
-- 3,845, the unfiltered page's ids 27,460.
--
-- How: the prices are cut into bands (20 per decade: a band is a price
-- range whose top is at most 1.13 times its bottom), and
--   * products_active_band_id indexes (band, id) of the active products,
--     covering price, so one band's products come in id order from the
--     index alone;
--   * product_price_bands counts the active products per band, kept by
--     triggers in the transaction of every write that moves a product
--     between bands (a checkout's stock update fires none: the update
--     trigger names price and active only);
--   * ecom_products_price_ids gives a page's ids by id or newest for a
--     price range, with statements PL/pgSQL prepares once per session
--     (generic plans, no planning per request). From the counts it
--     estimates how many products the range holds and takes the cheaper
--     of two ways, each bounded:
--       - a common range (the walk reads at most 2,000 entries by the
--         estimate): the id walk of products_active_id_price filtering on
--         the price, as the planner chose for such a range;
--       - otherwise one walk of products_active_band_id per band the range
--         touches, each stopping after a page, merged: the cost follows
--         the number of bands (the log of the price span), not the number
--         of products. A band the range covers only in part is walked
--         with the price filter when the estimate finds many of its
--         products in the range, or read from products_active_price and
--         sorted (at most ~2,000 entries by the estimate) when few.
--     The counts choose the way only: every band in the range is read
--     whatever its count, so a wrong count costs time, never a product.
-- A price order (sort=price, -price) with a price range needs none of
-- this: its index walk from the range's start is right at any value
-- (static statements in ecom_products.c). in_stock, category or q with a
-- price range, and sort=rating with one, are still planned per request
-- (ecom_products_ids).

-- The bands' bottoms: ceil(10^(i/20)) minor units for i = 0..240
-- (distinct), 1 up to 10^12 (the largest price, sql/016). Band 0 is
-- price 0, band i (1..) runs from the i-th bottom to the next one.
DO $do$
DECLARE
    b bigint[];
BEGIN
    SELECT array_agg(v ORDER BY v) INTO b
      FROM (SELECT DISTINCT ceil(10::numeric ^ (i / 20.0))::bigint AS v
              FROM generate_series(0, 240) i) s;
    EXECUTE format('CREATE FUNCTION ecom_price_band_bottoms() RETURNS bigint[] '
                   'LANGUAGE sql IMMUTABLE PARALLEL SAFE AS %L',
                   format('SELECT %L::bigint[]', b));
END $do$;

CREATE FUNCTION ecom_price_band(p bigint) RETURNS smallint
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT width_bucket(p, ecom_price_band_bottoms())::smallint
$$;

-- The part of band b (as a fraction of its width on a log scale: prices
-- spread about evenly there) that lies in [lo, hi]: 1 for a band inside
-- the range, 0 for one outside (prices are whole minor units: [lo, hi] is
-- [lo, hi + 1) on the line). Only an estimate, for the choice above. One
-- expression, so that PostgreSQL inlines it (a SQL function with a FROM
-- runs as a statement of its own per call: 2 ms for the counts' sum).
CREATE FUNCTION ecom_price_band_cover(b smallint, lo bigint, hi bigint)
RETURNS float8 LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN b = 0 THEN (lo <= 0 AND hi >= 0)::int::float8
           ELSE greatest(0::float8, least(1::float8,
                (ln(least(coalesce((ecom_price_band_bottoms())[b + 1],
                                   2000000000000)::float8, hi::float8 + 1))
                 - ln(greatest((ecom_price_band_bottoms())[b], lo)::float8))
                / ln(coalesce((ecom_price_band_bottoms())[b + 1],
                              2000000000000)::float8
                     / (ecom_price_band_bottoms())[b]::float8)))
           END
$$;

-- (band, id) of the active products, covering price: one band's products in
-- id order from the index alone. A price update was never HOT (price is a
-- key of products_active_price); stock is in no index (sql/014).
CREATE INDEX products_active_band_id ON products (ecom_price_band(price), id)
    INCLUDE (price) WHERE active;

CREATE TABLE product_price_bands (
    band smallint PRIMARY KEY,
    n    bigint   NOT NULL CHECK (n >= 0)
);
INSERT INTO product_price_bands (band, n)
SELECT ecom_price_band(price), count(*) FROM products WHERE active GROUP BY 1;

-- A move touches the lower band first, so two products moved the opposite
-- ways by two transactions lock the two rows in the same order (two
-- multi-row price updates can still deadlock on them, as on sql/015's
-- facet counts: PostgreSQL aborts one, which the module answers 503 with
-- Retry-After).
CREATE FUNCTION ecom_price_band_move() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    gone smallint;
    came smallint;
    b    smallint;
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') AND OLD.active THEN
        gone := ecom_price_band(OLD.price);
    END IF;
    IF TG_OP IN ('UPDATE', 'INSERT') AND NEW.active THEN
        came := ecom_price_band(NEW.price);
    END IF;
    IF gone IS NOT DISTINCT FROM came THEN
        RETURN NULL;
    END IF;
    -- one band, or both in ascending order (NULL: no band on that side)
    FOREACH b IN ARRAY ARRAY[least(gone, came), greatest(gone, came)] LOOP
        IF b = gone THEN
            UPDATE product_price_bands SET n = n - 1 WHERE band = b;
        ELSE
            INSERT INTO product_price_bands AS c (band, n) VALUES (b, 1)
            ON CONFLICT (band) DO UPDATE SET n = c.n + 1;
        END IF;
        EXIT WHEN gone IS NULL OR came IS NULL;
    END LOOP;
    RETURN NULL;
END $$;

CREATE TRIGGER products_price_bands_ins AFTER INSERT ON products
    FOR EACH ROW WHEN (NEW.active) EXECUTE FUNCTION ecom_price_band_move();
CREATE TRIGGER products_price_bands_del AFTER DELETE ON products
    FOR EACH ROW WHEN (OLD.active) EXECUTE FUNCTION ecom_price_band_move();
CREATE TRIGGER products_price_bands_upd AFTER UPDATE OF price, active ON products
    FOR EACH ROW WHEN (OLD.active IS DISTINCT FROM NEW.active
                       OR (OLD.active AND ecom_price_band(OLD.price)
                                          <> ecom_price_band(NEW.price)))
    EXECUTE FUNCTION ecom_price_band_move();

-- What the counts say about [lo, hi]: the active products (total), the
-- estimated matches (est: the bands inside the range, and the covered part
-- of a band at either end) and the non-empty bands it touches (nb). One
-- pass over the counts (at most about 230 rows); inlined into its callers.
CREATE FUNCTION ecom_price_range_estimate(lo bigint, hi bigint)
RETURNS TABLE (total float8, est float8, nb int)
LANGUAGE sql STABLE AS $$
    SELECT sum(b.n),
           sum(b.n * ecom_price_band_cover(b.band, lo, hi))
               FILTER (WHERE b.band BETWEEN ecom_price_band(lo)
                                        AND ecom_price_band(hi)),
           count(*) FILTER (WHERE b.n > 0 AND b.band BETWEEN ecom_price_band(lo)
                                                     AND ecom_price_band(hi))::int
      FROM product_price_bands b
$$;

-- The bands a page of [lo, hi] reads, from the cheapest to the dearest
-- active product's (two index probes), each with the part of the range in
-- it (blo, bhi) and how it is read: walked in id order (a band inside the
-- range, or one whose part in it holds many products by the counts) or
-- read from the price index and sorted (few). Inlined into its caller.
CREATE FUNCTION ecom_price_band_walks(lo bigint, hi bigint)
RETURNS TABLE (b int, blo bigint, bhi bigint, walk boolean)
LANGUAGE sql STABLE AS $$
    SELECT g.b, greatest(lo, (ecom_price_band_bottoms())[g.b]),
           least(hi, coalesce((ecom_price_band_bottoms())[g.b + 1] - 1,
                              9223372036854775807)),
           ecom_price_band_cover(g.b::smallint, lo, hi) >= 0.999
           OR ecom_price_band_cover(g.b::smallint, lo, hi) * coalesce(c.n, 0) > 2000
      FROM generate_series(
               ecom_price_band(greatest(lo, (SELECT min(q.price) FROM products q WHERE q.active)))::int,
               ecom_price_band(least(hi, (SELECT max(q.price) FROM products q WHERE q.active)))::int) g(b)
      LEFT JOIN product_price_bands c ON c.band = g.b
$$;

-- The ids of one page of the active products priced in [p_min, p_max]
-- (NULL: unbounded), by id (p_newest false: after p_after) or newest
-- first (before p_after), at most p_limit. The walk of the bands reads
-- the bands from the range's start to its end, each bounded by the
-- cheapest and dearest active product (two index probes). jit is off for
-- it: the generic plan of the bands' walk is costed high (PostgreSQL
-- assumes 1,000 bands from generate_series), above jit_above_cost, and
-- every call compiled it: 12 ms of a 0.2 ms page. No bitmap and no
-- sequential scans: the generic plans must be the walks written here
-- whatever the statistics say (a band's walk filters on the price, whose
-- generic estimate, 0.5 % of the band, made PostgreSQL read whole bands
-- through a bitmap and sort them on the test suite's catalog).
CREATE FUNCTION ecom_products_price_ids(p_min bigint, p_max bigint,
                                        p_newest boolean, p_after bigint,
                                        p_limit int)
RETURNS TABLE (id bigint)
LANGUAGE plpgsql STABLE ROWS 21
SET plan_cache_mode = force_generic_plan
SET jit = off
SET enable_bitmapscan = off
SET enable_seqscan = off AS $$
DECLARE
    lo    bigint := greatest(coalesce(p_min, 0), 0);
    hi    bigint := coalesce(p_max, 9223372036854775807);
    total float8;
    est   float8;
    nb    int;
BEGIN
    IF lo > hi THEN
        RETURN;
    END IF;
    SELECT e.total, e.est, e.nb INTO total, est, nb
      FROM ecom_price_range_estimate(lo, hi) e;
    -- the id walk reads about p_limit * total / est entries (if the range's
    -- products are spread evenly over the ids), the bands about
    -- nb * (p_limit + 10) (a page per band and its index descent): the
    -- walk when it is the cheaper and reads at most 2,000 (its price is
    -- written so that no price index serves it: the walk of
    -- products_active_id_price, index only)
    IF est > 0 AND p_limit * total <= est * least(2000, nb * (p_limit + 10)) THEN
        IF p_newest THEN
            RETURN QUERY
            SELECT p.id FROM products p
             WHERE p.active AND (p.price + 0) BETWEEN lo AND hi
               AND p.id < coalesce(p_after, 9223372036854775807)
             ORDER BY p.id DESC LIMIT p_limit;
        ELSE
            RETURN QUERY
            SELECT p.id FROM products p
             WHERE p.active AND (p.price + 0) BETWEEN lo AND hi
               AND p.id > coalesce(p_after, 0)
             ORDER BY p.id LIMIT p_limit;
        END IF;
        RETURN;
    END IF;
    -- otherwise per band: walked (inside the range, or mostly) or read
    -- from the price index and sorted (few of its products in the range)
    IF p_newest THEN
        RETURN QUERY
        SELECT y.id
          FROM ecom_price_band_walks(lo, hi) k
         CROSS JOIN LATERAL (
               (SELECT q.id FROM products q
                 WHERE k.walk AND q.active AND ecom_price_band(q.price) = k.b
                   AND (q.price + 0) BETWEEN k.blo AND k.bhi
                   AND q.id < coalesce(p_after, 9223372036854775807)
                 ORDER BY q.id DESC LIMIT p_limit)
               UNION ALL
               (SELECT q.id FROM products q
                 WHERE NOT k.walk AND q.active AND q.price BETWEEN k.blo AND k.bhi
                   AND q.id < coalesce(p_after, 9223372036854775807)
                 ORDER BY q.id + 0 DESC LIMIT p_limit)) y
         ORDER BY y.id DESC LIMIT p_limit;
    ELSE
        RETURN QUERY
        SELECT y.id
          FROM ecom_price_band_walks(lo, hi) k
         CROSS JOIN LATERAL (
               (SELECT q.id FROM products q
                 WHERE k.walk AND q.active AND ecom_price_band(q.price) = k.b
                   AND (q.price + 0) BETWEEN k.blo AND k.bhi
                   AND q.id > coalesce(p_after, 0)
                 ORDER BY q.id LIMIT p_limit)
               UNION ALL
               (SELECT q.id FROM products q
                 WHERE NOT k.walk AND q.active AND q.price BETWEEN k.blo AND k.bhi
                   AND q.id > coalesce(p_after, 0)
                 ORDER BY q.id + 0 LIMIT p_limit)) y
         ORDER BY y.id LIMIT p_limit;
    END IF;
END $$;

-- A category's subtree with a price range, by id or newest: one walk of
-- products_category per category of the subtree, each filtering on the
-- price and stopping after a page (ecom_products.c's category pages, with
-- the price), when the counts say the range holds enough of the catalog
-- that a walk reads at most about 2,000 entries per category (the range's
-- share of the catalog taken for each category's: pgbench, 32 clients, the
-- million-product catalog, a category of 55,000 with max_price=1000: 18,000
-- to 19,000 tps against 4,400 for the page planned per request). A rarer
-- range is planned per request (ecom_products_ids), as before.
CREATE FUNCTION ecom_products_cat_price_ids(p_category text, p_min bigint,
                                            p_max bigint, p_newest boolean,
                                            p_after bigint, p_limit int)
RETURNS TABLE (id bigint)
LANGUAGE plpgsql STABLE ROWS 21
SET plan_cache_mode = force_generic_plan
SET jit = off AS $$
DECLARE
    lo    bigint := greatest(coalesce(p_min, 0), 0);
    hi    bigint := coalesce(p_max, 9223372036854775807);
    total float8;
    est   float8;
BEGIN
    IF lo > hi THEN
        RETURN;
    END IF;
    SELECT e.total, e.est INTO total, est
      FROM ecom_price_range_estimate(lo, hi) e;
    IF NOT (est > 0 AND p_limit * total <= est * 2000) THEN
        RETURN QUERY
        SELECT x.id FROM ecom_products_ids(p_category, p_min, p_max, NULL, NULL,
                                           CASE WHEN p_newest THEN 'n' ELSE 'i' END,
                                           p_after, p_after, p_limit) x;
    ELSIF p_newest THEN
        RETURN QUERY
        SELECT x.id
          FROM unnest(ecom_category_subtree(p_category)) k(id)
         CROSS JOIN LATERAL (
               SELECT q.id FROM products q
                WHERE q.active AND q.category_id = k.id
                  AND (q.price + 0) BETWEEN lo AND hi
                  AND q.id < coalesce(p_after, 9223372036854775807)
                ORDER BY q.id DESC LIMIT p_limit) x
         ORDER BY x.id DESC LIMIT p_limit;
    ELSE
        RETURN QUERY
        SELECT x.id
          FROM unnest(ecom_category_subtree(p_category)) k(id)
         CROSS JOIN LATERAL (
               SELECT q.id FROM products q
                WHERE q.active AND q.category_id = k.id
                  AND (q.price + 0) BETWEEN lo AND hi
                  AND q.id > coalesce(p_after, 0)
                ORDER BY q.id LIMIT p_limit) x
         ORDER BY x.id LIMIT p_limit;
    END IF;
END $$;
