-- 032: search relevance that scales (issue 8, step 3). sort=relevance,
-- the default with q, ordered the matches by ts_rank, so every page of a
-- common word computed the rank of every product it matches and sorted
-- them all (on the 1,000,000 product catalog of `make bench-catalog`,
-- q=small: 13,241 matches ranked per page, 28 to 71 requests/s).
--
-- Relevance is now two tiers that an index delivers page by page:
--   tier 2: every word matches in the NAME (the search tsvector weights
--           the name A, sql/014: its lexemes of weight A, which a GIN
--           index of their own serves, below);
--   tier 1: the other matches (a word only in the description);
-- tier 2 first, and within a tier by id ascending (the tie-break of the
-- other sorts). The cursor holds (tier, id). A page is the tier 2 part
-- (ORDER BY id LIMIT n, skipped once the cursor is past tier 2), then, only
-- when it returned fewer than n, the tier 1 part, each planned by EXECUTE
-- for the actual words: PostgreSQL walks the id index filtering on the
-- words for a common word (stopping after n matches) or reads a rare
-- word's few matches from a GIN index and sorts them. (A single
-- (tier 2 ... LIMIT n) UNION ALL (tier 1 ... LIMIT n) LIMIT n, with the
-- cursor's tier as a one-time filter, gave the same pages; planning both
-- parts on every page cost 0.6 ms against 0.24 for tier 2 alone.)
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
-- ANALYZE gathers the statistics of the indexed expression, which the
-- planner reads only from an index without a predicate: so no WHERE
-- active here (the 2 % inactive rows of the generated catalog are indexed
-- too). A checkout's stock update stays HOT: the expression reads search
-- only.
CREATE INDEX products_search_name ON products
    USING gin (ts_filter(search, '{a}'));
ANALYZE products;

-- The SQL of one tier's ids, by id from a cursor's id (same parameters
-- as sql/031's page SQL: $1 the subtree's ids, $2 and $3 the price bounds,
-- $5 q, $8 the id after which the tier starts, $9 how many).
-- Tier 2 names the name's condition alone: it implies the whole query's,
-- and PostgreSQL, which takes two conditions as independent, would guess
-- their conjunction far too rare.
CREATE FUNCTION ecom_products_tier_sql(p_category boolean, p_min boolean,
    p_max boolean, p_in_stock boolean, p_tier int)
RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT 'SELECT p.id, ' || p_tier || '::bigint AS rk FROM products p WHERE '
        || ecom_products_where(p_category, p_min, p_max, p_in_stock,
                               p_tier = 1, false)
        || CASE WHEN p_tier = 2
                THEN ' AND ts_filter(p.search, ''{a}'') @@ ecom_search_query($5)'
                ELSE ' AND NOT ts_filter(p.search, ''{a}'') @@ ecom_search_query($5)' END
        || ' AND p.id > COALESCE($8, 0) ORDER BY p.id LIMIT $9'
$$;

-- One page of relevance: tier 2 from the cursor (or from the start), and
-- tier 1 only when tier 2 did not fill the page, each planned by EXECUTE
-- for the words (planning both parts of one UNION ALL cost 0.6 ms a page,
-- tier 2 alone 0.24 ms, on the 1,000,000 product catalog). The cursor:
-- p_k1 its tier (NULL: the first page; above 2 reads as 2, below as 1),
-- p_k2 its id.
CREATE FUNCTION ecom_products_tiers(p_cats bigint[], p_min bigint, p_max bigint,
    p_in_stock boolean, p_q text, p_k1 bigint, p_k2 bigint, p_limit int)
RETURNS TABLE (id bigint, rk bigint)
LANGUAGE plpgsql STABLE ROWS 21 AS $$
DECLARE
    n    bigint := 0;
    from_id bigint := p_k2;
BEGIN
    IF COALESCE(p_k1, 2) >= 2 THEN
        RETURN QUERY EXECUTE ecom_products_tier_sql(
            p_cats IS NOT NULL, p_min IS NOT NULL, p_max IS NOT NULL,
            p_in_stock, 2)
            USING p_cats, p_min, p_max, p_in_stock, p_q, NULL::text,
                  NULL::bigint, p_k2, p_limit;
        GET DIAGNOSTICS n = ROW_COUNT;
        from_id := NULL;
    END IF;
    IF n < p_limit THEN
        RETURN QUERY EXECUTE ecom_products_tier_sql(
            p_cats IS NOT NULL, p_min IS NOT NULL, p_max IS NOT NULL,
            p_in_stock, 1)
            USING p_cats, p_min, p_max, p_in_stock, p_q, NULL::text,
                  NULL::bigint, from_id, (p_limit - n)::int;
    END IF;
END $$;

-- sql/031's writer of a page's ids keeps its name for its caller
-- (ecom_products_ids) and, for sort s with exact words, now calls the
-- tiers; every other page is still sql/031's SQL, under the name
-- ecom_products_keyed_sql (renamed, unchanged: the typo-tolerant fallback
-- keeps its order by similarity, the other sorts their keys).
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
    RETURN 'SELECT t.id, t.rk FROM ecom_products_tiers($1, $2, $3, $4, $5, '
        || '$7, $8, $9) t LIMIT $9';
END $$;
