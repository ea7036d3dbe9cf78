-- 032: search relevance that scales (issue 8, step 3). sort=relevance,
-- the default with q, ordered the matches by ts_rank, so every page of a
-- common word computed the rank of every product it matches and sorted
-- them all (on the 1,000,000 product catalog of `make bench-catalog`,
-- q=small: 13,241 matches ranked per page, about 40 requests/s).
--
-- Relevance is now two tiers that an index delivers page by page:
--   tier 2: every word matches in the NAME (the search tsvector weights
--           the name A, sql/014: its lexemes of weight A, which a GIN
--           index of their own serves, below);
--   tier 1: the other matches (a word only in the description);
-- tier 2 first, and within a tier by id ascending (the tie-break of the
-- other sorts). The cursor holds (tier, id). A page is
--   (tier 2 part ORDER BY id LIMIT n) UNION ALL (tier 1 part ORDER BY id
--   LIMIT n) LIMIT n
-- and EXECUTE plans it for the actual words and cursor (ecom_products_ids,
-- sql/031): the cursor's tier folds into a one-time filter that switches
-- the tier 2 part off once the walk is past it, and PostgreSQL walks the
-- id index filtering on the words for a common word (stopping after n
-- matches) or reads a rare word's few matches from the GIN index and
-- sorts them. The second part does not run at all when the first one
-- fills the page.
--
-- The typo-tolerant fallback (no product matches the words at all) keeps
-- its order by similarity (it only runs on what pg_trgm's index returns
-- for a word that matches nothing), and every other sort with q is
-- unchanged.

-- The name's lexemes: the search tsvector's positions of weight A
-- (ts_filter, from the stored tsvector: nothing is parsed again), indexed
-- so that tier 2 has statistics of its own. A condition on search with
-- weighted terms (:A) would match the same products, but PostgreSQL's
-- estimate of a tsquery ignores weights: a word in every description and
-- no name (q=benchmark on the generated catalog) was taken for a match on
-- every row, and tier 2 walked the whole id index to find none (6.6 s).
-- ANALYZE gathers the statistics of the indexed expression. A checkout's
-- stock update stays HOT: the expression reads search only.
CREATE INDEX products_search_name ON products
    USING gin (ts_filter(search, '{a}')) WHERE active;
ANALYZE products;

-- sql/031's writer of a page's ids keeps its name for the callers
-- (ecom_products_ids, t/41) and writes the tiers for sort s with exact
-- words; every other page is still sql/031's SQL, under the name
-- ecom_products_keyed_sql (renamed, unchanged: the typo-tolerant fallback
-- keeps its order by similarity, the other sorts their keys).
-- Parameters as before: $5 q, $7 the cursor's tier, $8 its id, $9 limit
-- + 1. A cursor's tier above 2 (none is written) reads as 2, below 2 as 1.
ALTER FUNCTION ecom_products_ids_sql(boolean, boolean, boolean, boolean,
                                     boolean, boolean, text)
    RENAME TO ecom_products_keyed_sql;
CREATE FUNCTION ecom_products_ids_sql(p_category boolean, p_min boolean, p_max boolean,
    p_in_stock boolean, p_q boolean, p_fuzzy boolean, p_sort text)
RETURNS text LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    IF NOT p_q OR p_fuzzy OR p_sort <> 's' THEN
        RETURN ecom_products_keyed_sql(p_category, p_min, p_max, p_in_stock,
                                       p_q, p_fuzzy, p_sort);
    END IF;
    -- tier 2 names the name's condition alone: it implies the whole
    -- query's, and PostgreSQL, which takes two conditions as independent,
    -- would guess their conjunction far too rare
    RETURN '(SELECT p.id, 2::bigint AS rk FROM products p WHERE '
        || ecom_products_where(p_category, p_min, p_max, p_in_stock,
                               false, false)
        || ' AND ts_filter(p.search, ''{a}'') @@ ecom_search_query($5)'
        || ' AND COALESCE($7, 2) >= 2 AND p.id > COALESCE($8, 0)'
        || ' ORDER BY p.id LIMIT $9)'
        || ' UNION ALL '
        || '(SELECT p.id, 1::bigint AS rk FROM products p WHERE '
        || ecom_products_where(p_category, p_min, p_max, p_in_stock,
                               true, false)
        || ' AND NOT ts_filter(p.search, ''{a}'') @@ ecom_search_query($5)'
        || ' AND p.id > CASE WHEN COALESCE($7, 2) >= 2 THEN 0'
        || ' ELSE COALESCE($8, 0) END'
        || ' ORDER BY p.id LIMIT $9) LIMIT $9';
END $$;
