-- 032: search relevance that scales (issue 8, step 3). sort=relevance,
-- the default with q, ordered the matches by ts_rank, so every page of a
-- common word computed the rank of every product it matches and sorted
-- them all (on the 1,000,000 product catalog of `make bench-catalog`,
-- q=small: 13,241 matches ranked per page, about 40 requests/s).
--
-- Relevance is now two tiers that an index delivers page by page:
--   tier 2: every word matches in the NAME (the search tsvector weights
--           the name A, sql/014, so a tsquery whose terms carry :A or :*A
--           matches name lexemes only, and the GIN index serves it);
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
-- for a word that matches nothing). Every other sort with q is unchanged
-- but no longer computes ts_rank for a key it does not use.

-- q as a tsquery matching the product's name only: ecom_search_query's
-- words (sql/014), each restricted to weight A (the name's lexemes).
CREATE FUNCTION ecom_search_name_query(p_q text) RETURNS tsquery
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN count(*) > 0 THEN to_tsquery('english',
           string_agg(quote_literal(w) || CASE WHEN last AND p_q !~ '\s$'
                                               THEN ':*A' ELSE ':A' END,
                      ' & ' ORDER BY i)) END
      FROM (SELECT m[1] AS w, row_number() OVER () AS i,
                   row_number() OVER () = count(*) OVER () AS last
              FROM regexp_matches(lower(p_q), '[[:alnum:]]+', 'g') m) s
$$;

-- sql/031's writer of a page's ids, sort s (relevance) with the exact
-- words now in tiers (above). Parameters as before: $5 q, $7 the cursor's
-- tier, $8 its id, $9 limit + 1. A cursor's tier above 2 (none is
-- written) reads as 2, below 1 as 1.
CREATE OR REPLACE FUNCTION ecom_products_ids_sql(p_category boolean, p_min boolean,
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
    IF p_q AND NOT p_fuzzy AND p_sort = 's' THEN
        -- tier 2 names the name query alone: it implies the whole one, and
        -- PostgreSQL, which takes two conditions on search as independent,
        -- would guess their conjunction a hundred times too rare
        RETURN '(SELECT p.id, 2::bigint AS rk FROM products p WHERE '
            || ecom_products_where(p_category, p_min, p_max, p_in_stock,
                                   false, false)
            || ' AND p.search @@ ecom_search_name_query($5)'
            || ' AND COALESCE($7, 2) >= 2 AND p.id > COALESCE($8, 0)'
            || ' ORDER BY p.id LIMIT $9)'
            || ' UNION ALL '
            || '(SELECT p.id, 1::bigint AS rk FROM products p WHERE ' || w
            || ' AND NOT p.search @@ ecom_search_name_query($5)'
            || ' AND p.id > CASE WHEN COALESCE($7, 2) >= 2 THEN 0'
            || ' ELSE COALESCE($8, 0) END'
            || ' ORDER BY p.id LIMIT $9) LIMIT $9';
    END IF;
    IF p_q AND p_fuzzy THEN
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
