-- 034: q pages without planning per request (issue 8: q at >= 2,000
-- requests/s at a million products).
--
-- sql/032 plans each relevance tier per request (EXECUTE), because one
-- generic plan cannot serve both kinds of word: a common word wants the
-- id walk that stops after a page, a rare one wants its few matches read
-- from a GIN index and sorted (the wrong choice costs seconds for a rare
-- word walked over the whole catalog, tens of ms for a common word's
-- thousands of matches sorted). Planning was most of a page's cost.
--
-- Here the choice is made from a table of the name lexemes' and the whole
-- search vector's document frequencies instead: ecom_products_q (below)
-- estimates each tier's matches from its terms' counts and runs one of two
-- STATIC statements per tier, each written so that its generic plan can
-- take only the intended path. The table is counted again (ts_stat, about
-- 3 s at a million products) by a background job (mod_ecom's watchdog,
-- hourly, claimed so one node runs it), by `ecom-admin search-stats`, the
-- demo import and the catalog generator, and once below; a stale table
-- only makes a page take the slower of the two paths, never changes the
-- page: both statements of a tier have the same conditions and order.
-- The module calls it for q alone or with in_stock, by relevance; every
-- other combination with q keeps ecom_products_ids (sql/031, sql/032).

-- The document frequencies of the active products' search lexemes: ndoc
-- in the whole vector (name and description), nname in the name alone
-- (weight A, as tier 2 reads it). COLLATE "C" so that a prefix is a range
-- of the primary key.
CREATE TABLE search_lexemes (
    lexeme text COLLATE "C" PRIMARY KEY,
    ndoc   int NOT NULL,
    nname  int NOT NULL
);
-- One row: how many active products the frequencies were counted on, how
-- many of them were sold out (in_stock scales the estimates), and when.
CREATE TABLE search_lexemes_meta (
    one          boolean PRIMARY KEY DEFAULT true CHECK (one),
    nproducts    bigint NOT NULL,
    nsold_out    bigint NOT NULL,
    refreshed_at timestamptz NOT NULL
);

-- Recount, in one transaction (readers see the old counts until it
-- commits). Returns the number of lexemes.
CREATE FUNCTION ecom_search_lexemes_refresh() RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    n bigint;
BEGIN
    -- one refresh at a time: a second one waits, then counts again
    LOCK TABLE search_lexemes IN SHARE ROW EXCLUSIVE MODE;
    DELETE FROM search_lexemes;
    INSERT INTO search_lexemes (lexeme, ndoc, nname)
    SELECT a.word, a.ndoc, coalesce(n.ndoc, 0)
      FROM ts_stat('SELECT search FROM products WHERE active') a
      LEFT JOIN ts_stat('SELECT ts_filter(search, ''{a}'') FROM products '
                        'WHERE active') n ON n.word = a.word;
    GET DIAGNOSTICS n = ROW_COUNT;
    INSERT INTO search_lexemes_meta (nproducts, nsold_out, refreshed_at)
    SELECT count(*), count(*) FILTER (WHERE stock = 0), now()
      FROM products WHERE active
    ON CONFLICT (one) DO UPDATE
       SET nproducts = EXCLUDED.nproducts, nsold_out = EXCLUDED.nsold_out,
           refreshed_at = EXCLUDED.refreshed_at;
    ANALYZE search_lexemes;
    RETURN n;
END $$;

-- The estimated matches of a tsquery of ecom_search_query among p_n
-- active products, per tier: nname (every term in the name: tier 2) and
-- ndoc (anywhere). One term: its count. Several (ANDed): as independent,
-- p_n times the product of their shares, as PostgreSQL's planner estimates
-- a conjunction (q=lights christmas on the generated catalog: 13,426 and
-- 12,072 names, 125 with both, estimated 165; the rarer term's count,
-- 12,072, chose the id walk, which read 165,000 rows, 45 requests/s in
-- pgbench against 335 planned). Words that go together in a real catalog
-- are underestimated so, and read from GIN: that costs at most the rarer
-- term's matches, where an overestimate's walk can read the catalog.
-- A prefix term (the last word, 'lig':*) counts the sum over the lexemes
-- it starts (an overestimate: a product with two of them counts twice),
-- read up to 1,000 lexemes: a prefix that starts more is taken as
-- matching every product. A term missing from the table (a word new since
-- the last refresh) counts 0. The terms are read from the tsquery's text,
-- as to_tsquery wrote them (stemmed, quoted, ':*' on a prefix).
-- PL/pgSQL, so that its plan is kept for the session: as a LANGUAGE sql
-- function (not inlined) it was planned on every call (0.47 ms).
CREATE FUNCTION ecom_search_estimate(p_query tsquery, p_n bigint,
    OUT nname bigint, OUT ndoc bigint)
LANGUAGE plpgsql STABLE AS $$
BEGIN
    SELECT CASE WHEN min(e.nname) > 0
                THEN round(p_n * exp(sum(ln(greatest(least(e.nname, p_n), 1)::float8 / p_n))))
                ELSE 0 END,
           CASE WHEN min(e.ndoc) > 0
                THEN round(p_n * exp(sum(ln(greatest(least(e.ndoc, p_n), 1)::float8 / p_n))))
                ELSE 0 END
      INTO nname, ndoc
      FROM regexp_matches(p_query::text, '''((?:[^'']|'''')*)''(:\*)?', 'g') m
     CROSS JOIN LATERAL (
           SELECT replace(m[1], '''''', '''') AS w, m[2] IS NOT NULL AS prefix) t
     CROSS JOIN LATERAL (
           SELECT CASE WHEN count(*) >= 1000 THEN p_n ELSE coalesce(sum(s.nname), 0) END AS nname,
                  CASE WHEN count(*) >= 1000 THEN p_n ELSE coalesce(sum(s.ndoc), 0) END AS ndoc
             FROM (SELECT l.nname, l.ndoc FROM search_lexemes l
                    WHERE t.prefix AND l.lexeme >= t.w
                      AND l.lexeme < t.w || chr(1114111)
                    LIMIT 1000) s
           HAVING t.prefix
           UNION ALL
           SELECT coalesce((SELECT l.nname FROM search_lexemes l WHERE l.lexeme = t.w), 0),
                  coalesce((SELECT l.ndoc FROM search_lexemes l WHERE l.lexeme = t.w), 0)
            WHERE NOT t.prefix) e
     WHERE p_n > 0;
    nname := coalesce(nname, 0);
    ndoc := coalesce(ndoc, 0);
END $$;

-- One page of relevance for q without category or price filters
-- (in_stock allowed): the same tiers, order, cursor and pages as sql/032's
-- ecom_products_tiers, from static statements whose generic plans are
-- kept for the session (plan_cache_mode: PL/pgSQL would otherwise try
-- custom plans first). Per tier, from the estimate m of its matches
-- (ecom_search_estimate; s the share of them in_stock keeps, from the
-- sold-out count) and the active products N:
--   dense:  the id walk of products_active_id_price filtering on the
--           words, stopping after a page: reads limit * N / (m * s) rows;
--           the words' condition is written `(...) IS TRUE`, which no
--           index serves, so its plan cannot read GIN. The name's
--           condition is the search vector against the terms weighted A
--           ('small':*A), the same products as ts_filter(search, '{a}')
--           for words ANDed, without building the filtered vector per row
--           (0.18 against 0.28 ms a page of q=small);
--   sparse: the matches from a GIN index (products_search_name for tier
--           2, products_search for tier 1), sorted by id: reads the m
--           matches (tier 1: every match of the words, tier 2's too);
--           ordered, and the cursor compared, on `p.id + 0`, which no
--           index serves, so its plan cannot walk the id order (nor AND
--           the GIN bitmap with a range of the id index: 50 ms).
-- Dense when 4 * m^2 * s > limit * N (tier 1: 4 * m1 * s * mA > limit * N),
-- i.e. from m of about sqrt(limit * N) / 2, 2,300 at 21 a page of a
-- million products: a row walked cost about a quarter of a match read
-- from GIN on the generated catalog (0.23 against 1.2 us; measured
-- crossover between 1,676 name matches, sparse 1.3 ms against dense 5.8,
-- and 3,634, dense 1.3 ms against sparse 4.5).
-- When the page is empty and nothing matches the words at all, the
-- typo-tolerant fallback of sql/031 (planned per request: a typo is rare).
-- Parameters: as ecom_products_ids without category and price; the
-- result: the page's ids and their tier (or similarity, fallback).
CREATE FUNCTION ecom_products_q(p_in_stock boolean, p_q text, p_k1 bigint,
    p_k2 bigint, p_limit int)
RETURNS TABLE (id bigint, rk bigint)
LANGUAGE plpgsql STABLE ROWS 21
SET plan_cache_mode = force_generic_plan
AS $$
#variable_conflict use_column
DECLARE
    v_q     tsquery := ecom_search_query(p_q);
    -- the same terms, each required in the name (weight A): 'small':*A
    v_qa    tsquery := regexp_replace(regexp_replace(v_q::text,
                           '''(:\*)', ''':*A', 'g'), '''( |\)|$)', ''':A\1', 'g');
    v_n     bigint;
    v_sold  bigint;
    v_share float8;
    v_m2    bigint;
    v_ma    bigint;
    v_rows  bigint;
    v_got   bigint := 0;
    v_from  bigint := p_k2;
BEGIN
    SELECT m.nproducts, m.nsold_out INTO v_n, v_sold FROM search_lexemes_meta m;
    v_n := coalesce(v_n, 0);
    SELECT e.nname, e.ndoc INTO v_m2, v_ma FROM ecom_search_estimate(v_q, v_n) e;
    -- the share of the matches that in_stock keeps: a walk reads
    -- limit * N / (m * share) rows, GIN still reads all m matches
    v_share := CASE WHEN v_n = 0 OR p_in_stock IS NULL THEN 1
                    WHEN p_in_stock THEN (v_n - v_sold)::float8 / v_n
                    ELSE v_sold::float8 / v_n END;
    IF coalesce(p_k1, 2) >= 2 THEN
        IF v_m2 > 0 AND p_limit * v_n::float8 < 4 * v_m2 * v_share * v_m2 THEN
            RETURN QUERY
            SELECT p.id, 2::bigint FROM products p
             WHERE p.active AND (p.search @@ v_qa) IS TRUE
               AND (p_in_stock IS NULL OR (p.stock > 0) = p_in_stock)
               AND p.id > coalesce(v_from, 0)
             ORDER BY p.id LIMIT p_limit;
        ELSE
            RETURN QUERY
            SELECT p.id, 2::bigint FROM products p
             WHERE p.active AND ts_filter(p.search, '{a}') @@ v_q
               AND (p_in_stock IS NULL OR (p.stock > 0) = p_in_stock)
               AND p.id + 0 > coalesce(v_from, 0)
             ORDER BY p.id + 0 LIMIT p_limit;
        END IF;
        GET DIAGNOSTICS v_got = ROW_COUNT;
        v_from := NULL;
    END IF;
    IF v_got < p_limit THEN
        -- tier 1: the matches less tier 2's (an estimate: exact for one word)
        v_rows := greatest(v_ma - v_m2, 0);
        IF v_rows > 0
           AND (p_limit - v_got) * v_n::float8 < 4 * v_rows * v_share * v_ma THEN
            RETURN QUERY
            SELECT p.id, 1::bigint FROM products p
             WHERE p.active AND (p.search @@ v_q) IS TRUE
               AND NOT p.search @@ v_qa
               AND (p_in_stock IS NULL OR (p.stock > 0) = p_in_stock)
               AND p.id > coalesce(v_from, 0)
             ORDER BY p.id LIMIT p_limit - v_got;
        ELSE
            RETURN QUERY
            SELECT p.id, 1::bigint FROM products p
             WHERE p.active AND p.search @@ v_q
               AND NOT p.search @@ v_qa
               AND (p_in_stock IS NULL OR (p.stock > 0) = p_in_stock)
               AND p.id + 0 > coalesce(v_from, 0)
             ORDER BY p.id + 0 LIMIT p_limit - v_got;
        END IF;
        GET DIAGNOSTICS v_rows = ROW_COUNT;
        v_got := v_got + v_rows;
    END IF;
    -- nothing matches the words: the typo-tolerant fallback. Whether
    -- anything matches is read from the GIN index: ordered by id + 0, so
    -- that a seq scan cannot stop early (as EXISTS, which drops ORDER BY
    -- and LIMIT: the generic plan scanned the catalog, 300 ms, for a typo)
    IF v_got = 0 THEN
        PERFORM FROM (SELECT p.id + 0 FROM products p
                       WHERE p.active AND p.search @@ v_q
                       ORDER BY 1 LIMIT 1) s;
        IF NOT FOUND THEN
            RETURN QUERY EXECUTE ecom_products_ids_sql(false, false, false,
                p_in_stock, true, true, 's')
                USING NULL::bigint[], NULL::bigint, NULL::bigint, p_in_stock,
                      p_q, 's'::text, p_k1, p_k2, p_limit;
        END IF;
    END IF;
END $$;

-- counted once now (a migrated catalog), then by the watchdog's job, the
-- demo import, the catalog generator and `ecom-admin search-stats`
SELECT ecom_search_lexemes_refresh();
