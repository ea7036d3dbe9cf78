-- 029: the content-based "similar" step (rec_similar) at a bounded cost per
-- product, whatever the size of the catalog (issue 10: "report the refresh
-- time on the generated million-product catalog, and how it grows").
--
-- Why: 021 found each product's candidates with the GIN trigram index on
-- lower(name) (lower(q.name) % lower(t.name)). On the demo catalog (3,808
-- names) that costs about 1 ms a product; on the generated million-product
-- catalog it cost about 170 ms (868 s for the 5,000 products of one run),
-- since names made of a small vocabulary share their trigrams with
-- thousands of others: the index probe reads long posting lists and
-- rechecks hundreds of rows. Measured on that catalog and not adopted: a
-- two-column GIN index (category_id, name trigrams; btree_gin) still
-- rechecks the whole trigram match (90 to 190 ms a probe), and a GiST
-- trigram index with KNN ordering within the category (btree_gist) took
-- 500 ms to 1.1 s a probe.
--
-- Now: a product with a category compares itself with at most
-- ecom.recs_similar_candidates (default 2,000) active products of that
-- category, its newest ones (the index products_category, (category_id,
-- id) WHERE active, reads them in order), and ranks them by name
-- similarity; the description's similarity (the costlier one: 200
-- characters against 30) is computed for the 100 best names only. Then as
-- in 021: 0.6 x name + 0.25 x description + 0.15 (same category), plus the
-- category's newest below any similar name, the best 30 kept. A category
-- of at most 2,000 products (every one of the demo's) gets the same
-- candidates as before, except that names below pg_trgm's threshold (0.3)
-- may now enter the list after the similar ones. A product without a
-- category keeps 021's trigram-index search over the whole catalog.
-- Cost: O(min(category size, 2,000)) a product; measured in the README.
CREATE OR REPLACE FUNCTION ecom_recs_update_similar(p_budget int) RETURNS int
LANGUAGE plpgsql AS $$
DECLARE
    todo bigint[];
    ncand int := COALESCE(NULLIF(current_setting('ecom.recs_similar_candidates', true), '')::int,
                          2000);
BEGIN
    SELECT array_agg(id) INTO todo FROM (
        SELECT p.id FROM products p
        LEFT JOIN rec_similar_state st ON st.product_id = p.id
        WHERE p.active AND (st.product_id IS NULL OR st.computed_at < p.updated_at)
        ORDER BY st.computed_at NULLS FIRST, p.id
        LIMIT GREATEST(p_budget, 0)) x;
    IF todo IS NULL THEN
        RETURN 0;
    END IF;
    ncand := GREATEST(ncand, 30);
    -- the uncategorised products' probes use the trigram index (see 021)
    IF to_regclass('products_name_trgm') IS NOT NULL
       AND EXISTS (SELECT 1 FROM products WHERE id = ANY (todo) AND category_id IS NULL) THEN
        PERFORM gin_clean_pending_list('products_name_trgm'::regclass);
    END IF;
    DELETE FROM rec_similar WHERE product_id = ANY (todo);
    INSERT INTO rec_similar (product_id, rank, neighbour_id, score)
    SELECT t.id, row_number() OVER (PARTITION BY t.id ORDER BY c.s DESC, c.id)::smallint,
           c.id, c.s
    FROM products t
    CROSS JOIN LATERAL (
        SELECT y.id, y.s FROM (SELECT DISTINCT ON (x.id) x.id, x.s FROM (
            -- a categorised product: the best names of its category's
            -- newest ncand, then their descriptions
            (SELECT n.id,
                    (0.6 * n.ns
                     + 0.25 * similarity(left(n.description, 200), left(t.description, 200))
                     + 0.15)::real AS s
             FROM (SELECT q.id, q.description,
                          similarity(lower(q.name), lower(t.name)) AS ns
                   FROM (SELECT q.id, q.name, q.description FROM products q
                         WHERE t.category_id IS NOT NULL
                           AND q.category_id = t.category_id
                           AND q.active AND q.id <> t.id
                         ORDER BY q.id DESC LIMIT ncand) q
                   ORDER BY 3 DESC LIMIT 100) n
             ORDER BY 2 DESC LIMIT 30)
            UNION ALL
            -- an uncategorised one: 021's trigram-similar names
            (SELECT q.id,
                    (0.6 * similarity(lower(q.name), lower(t.name))
                     + 0.25 * similarity(left(q.description, 200), left(t.description, 200)))::real
             FROM products q
             WHERE t.category_id IS NULL
               AND q.active AND lower(q.name) % lower(t.name) AND q.id <> t.id
             ORDER BY 2 DESC LIMIT 30)
            UNION ALL
            -- the same category's others, below any similar name
            (SELECT q.id, (0.1 / (1 + row_number() OVER (ORDER BY q.id DESC)))::real
             FROM products q
             WHERE t.category_id IS NOT NULL AND q.category_id = t.category_id
               AND q.active AND q.id <> t.id
             ORDER BY q.id DESC LIMIT 10)
        ) x ORDER BY x.id, x.s DESC) y
        ORDER BY y.s DESC LIMIT 30
    ) c
    WHERE t.id = ANY (todo);
    INSERT INTO rec_similar_state (product_id, computed_at)
    SELECT unnest(todo), now()
    ON CONFLICT (product_id) DO UPDATE SET computed_at = excluded.computed_at;
    RETURN cardinality(todo);
END
$$;
