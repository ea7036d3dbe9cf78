-- 015: facets on the product list (issue 8, item 4): with
-- ?facets=category,price,in_stock the list answer adds, for the current
-- filters, the number of active products per category, per price bucket
-- and in / out of stock, so a storefront draws its filter sidebar from one
-- call.
--
-- Counting a million products on every request is too slow (a sequential
-- count of every active product takes a few hundred milliseconds), so the
-- counts per (category, price bucket, in stock) of the active products
-- are kept in product_facet_counts, a table of a few hundred rows, by a
-- trigger on products, in the transaction of every product write that
-- moves a product between cells (insert, delete, a change of price bucket,
-- category, active, or stock to or from 0). A checkout's stock update
-- fires it only when it sells the last unit (the trigger's WHEN clause is
-- evaluated without calling the function). Facets of a list filtered by
-- category and in_stock only are sums over that table; with a price bound
-- or a search they are counted over the matching products (the filters
-- narrow what is read), with the same SQL fragments as the page.
--
-- Price buckets, in minor units: [0, 500), [500, 1000), [1000, 2500),
-- [2500, 5000), [5000, 10000), [10000, 25000), [25000, 50000), and 50000
-- or more (the last has no max).

CREATE FUNCTION ecom_price_bucket(p bigint) RETURNS smallint
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT (CASE WHEN p < 500 THEN 0 WHEN p < 1000 THEN 1 WHEN p < 2500 THEN 2
                 WHEN p < 5000 THEN 3 WHEN p < 10000 THEN 4 WHEN p < 25000 THEN 5
                 WHEN p < 50000 THEN 6 ELSE 7 END)::smallint
$$;

CREATE TABLE product_facet_counts (
    category_id bigint   NOT NULL,   -- 0: no category
    bucket      smallint NOT NULL,
    in_stock    boolean  NOT NULL,
    n           bigint   NOT NULL CHECK (n >= 0),
    PRIMARY KEY (category_id, bucket, in_stock)
);

INSERT INTO product_facet_counts (category_id, bucket, in_stock, n)
SELECT coalesce(category_id, 0), ecom_price_bucket(price), stock > 0, count(*)
  FROM products WHERE active
 GROUP BY 1, 2, 3;

CREATE FUNCTION ecom_facet_move() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') AND OLD.active THEN
        UPDATE product_facet_counts SET n = n - 1
         WHERE category_id = coalesce(OLD.category_id, 0)
           AND bucket = ecom_price_bucket(OLD.price)
           AND in_stock = (OLD.stock > 0);
    END IF;
    IF TG_OP IN ('UPDATE', 'INSERT') AND NEW.active THEN
        INSERT INTO product_facet_counts AS f (category_id, bucket, in_stock, n)
        VALUES (coalesce(NEW.category_id, 0), ecom_price_bucket(NEW.price),
                NEW.stock > 0, 1)
        ON CONFLICT (category_id, bucket, in_stock) DO UPDATE SET n = f.n + 1;
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER products_facets_ins AFTER INSERT ON products
    FOR EACH ROW WHEN (NEW.active) EXECUTE FUNCTION ecom_facet_move();
CREATE TRIGGER products_facets_del AFTER DELETE ON products
    FOR EACH ROW WHEN (OLD.active) EXECUTE FUNCTION ecom_facet_move();
CREATE TRIGGER products_facets_upd AFTER UPDATE ON products
    FOR EACH ROW WHEN (OLD.active IS DISTINCT FROM NEW.active
                       OR OLD.category_id IS DISTINCT FROM NEW.category_id
                       OR (OLD.stock > 0) <> (NEW.stock > 0)
                       OR ecom_price_bucket(OLD.price) <> ecom_price_bucket(NEW.price))
    EXECUTE FUNCTION ecom_facet_move();

-- The facets of a list: the counts of what its pages list. The grouped
-- counts (category, bucket, in stock, n) come as four arrays, from the
-- table or from the products matching the filters (the only dynamic
-- statement, and only with a price bound or q); the object is built by a
-- static statement, planned once per session.
CREATE FUNCTION ecom_products_facets(p_category text, p_min bigint,
                                     p_max bigint, p_in_stock boolean,
                                     p_q text)
RETURNS text
LANGUAGE plpgsql STABLE AS $$
DECLARE
    cats bigint[];
    gc   bigint[];
    gb   smallint[];
    gs   boolean[];
    gn   bigint[];
BEGIN
    IF p_category IS NOT NULL THEN
        cats := ecom_category_subtree(p_category);
    END IF;
    IF p_min IS NULL AND p_max IS NULL AND p_q IS NULL THEN
        SELECT array_agg(f.category_id), array_agg(f.bucket),
               array_agg(f.in_stock), array_agg(f.n)
          INTO gc, gb, gs, gn
          FROM product_facet_counts f
         WHERE f.n > 0
           AND (cats IS NULL OR f.category_id = ANY (cats))
           AND (p_in_stock IS NULL OR f.in_stock = p_in_stock);
    ELSE
        EXECUTE 'SELECT array_agg(g.c), array_agg(g.b), array_agg(g.s), '
             || 'array_agg(g.n) FROM (SELECT coalesce(p.category_id, 0) AS c, '
             || 'ecom_price_bucket(p.price) AS b, p.stock > 0 AS s, count(*) AS n '
             || 'FROM products p WHERE '
             || ecom_products_where(p_category IS NOT NULL, p_min IS NOT NULL,
                                    p_max IS NOT NULL, p_in_stock,
                                    p_q IS NOT NULL,
                                    -- as the page: typo-tolerant when the
                                    -- words match no product at all
                                    p_q IS NOT NULL AND NOT EXISTS (
                                        SELECT 1 FROM products p
                                         WHERE p.active
                                           AND p.search @@ ecom_search_query(p_q)))
             || ' GROUP BY 1, 2, 3) g'
            INTO gc, gb, gs, gn
            USING cats, p_min, p_max, p_in_stock, p_q;
    END IF;
    RETURN (
        WITH g AS (SELECT * FROM unnest(coalesce(gc, '{}'), coalesce(gb, '{}'),
                                        coalesce(gs, '{}'), coalesce(gn, '{}'))
                                 AS u(category_id, bucket, in_stock, n))
        SELECT json_build_object(
            'category', (SELECT coalesce(json_agg(json_build_object(
                                    'slug', c.slug, 'name', c.name, 'count', s.n)
                                    ORDER BY s.n DESC, c.slug), '[]')
                           FROM (SELECT g.category_id, sum(g.n) AS n FROM g
                                  GROUP BY 1) s
                           JOIN categories c ON c.id = s.category_id),
            'price', (SELECT json_agg(json_build_object(
                                 'min', b.lo, 'max', b.hi,
                                 'count', coalesce(t.n, 0)) ORDER BY b.i)
                        FROM (VALUES (0, 0, 500), (1, 500, 1000), (2, 1000, 2500),
                                     (3, 2500, 5000), (4, 5000, 10000),
                                     (5, 10000, 25000), (6, 25000, 50000),
                                     (7, 50000, NULL)) AS b(i, lo, hi)
                        LEFT JOIN (SELECT g.bucket, sum(g.n) AS n FROM g
                                    GROUP BY 1) t ON t.bucket = b.i),
            'in_stock', json_build_object(
                'true', (SELECT coalesce(sum(g.n), 0) FROM g WHERE g.in_stock),
                'false', (SELECT coalesce(sum(g.n), 0) FROM g
                           WHERE NOT g.in_stock)))::text);
END $$;
