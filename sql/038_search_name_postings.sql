-- 038: q's name tier reads a word's products in id order (issue 8: q at
-- >= 2,000 requests/s at a million products).
--
-- Why: a page of a common word in ecom_products_q (sql/034) walked the id
-- order and matched every row's search vector against the words: q=black
-- on the generated catalog read 1,893 rows to keep 21 (0.56 of the page's
-- 0.75 ms), and even pgbench ran that SQL at only 2,040 pages/s on 32
-- clients. A covering index (id) INCLUDE (search) that the walk reads
-- without the heap saved 8 %: the vector match is the cost, not the rows.
-- What a page needs is the list of a word's products in id order.
--
-- search_name_postings is that list for the names: one row per lexeme of
-- a product's name (the search vector's weight-A lexemes) and product, its
-- primary key (lexeme, product_id) the ordered list. Kept exact in the
-- writing transaction by a trigger on products (insert, delete, and an
-- update that changes the search vector), for every product, active or not
-- (the page filters on active, as it does on in_stock), so it is never
-- stale: the frequency table of sql/034 still only chooses, this one lists.
--
-- Tier 2 (every word in the name) of ecom_products_q now reads:
--   - one "driving" term, the one the frequency table says is rarest in
--     names (an exact word before a prefix at equal counts);
--   - its lexemes: the word, or for a prefix (the last word, type-ahead)
--     every lexeme of the postings it starts, read with a loose index scan
--     (one descent per lexeme), up to 64 (a prefix that starts more keeps
--     sql/034's statements);
--   - one statement: per lexeme, the next `batch` product ids after the
--     cursor; the candidates up to the smallest last id of the lexemes
--     that filled their batch (beyond it a full lexeme may still hold
--     smaller ids) are complete, and are checked against every word in the
--     name (p.search @@ the terms weighted A), active and in_stock by
--     primary key, in id order, up to the page;
--   - a page not full yet reads that cut again (NULL: every lexeme ran
--     out, the tier is done) and continues after it with a batch four
--     times larger (at most 20,000).
--   batch = 2 * limit * (the driving term's names / all terms' names) /
--   (the share in_stock keeps), from limit + 1 to 2,000: about one round
--   for most pages. A query of one term skips sql/034's estimate
--   (ecom_search_estimate, about a third of the page before): its names
--   are the driving term's count, and the estimate for tier 1 is made
--   only when tier 2 does not fill the page.
-- Tier 1 and the typo fallback are unchanged. The same pages as before:
-- the same conditions, the same order; t/69 walks every page of 8 queries
-- with and without in_stock against the planned path, with the frequency
-- counts as counted, emptied and inflated, and recounts the postings after
-- inserts, renames, deactivations and deletes.
--
-- Measured (the generated million products, pgbench -M prepared -c32 -j2
-- of the module's statement, make bench-catalog): q=black 2,035 to 2,042
-- pages/s before, 2,591 to 2,706 after; with in_stock=true 1,742 to 1,908
-- before, 1,979 to 2,634 after.
--
-- Size: 4.2 million rows and 311 MB (table and key) for the generated
-- million products; built here in one statement (about 13 s at a million,
-- instant on the demo data). scripts/gen-catalog.sh writes the postings of
-- its batches itself, with the trigger off, as it does for the counts.

CREATE TABLE search_name_postings (
    lexeme     text COLLATE "C" NOT NULL,
    product_id bigint NOT NULL,
    PRIMARY KEY (lexeme, product_id)
);

-- The name lexemes of a search vector (its weight-A lexemes).
CREATE FUNCTION ecom_name_lexemes(p_search tsvector) RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT tsvector_to_array(ts_filter(p_search, '{a}'))
$$;

INSERT INTO search_name_postings (lexeme, product_id)
SELECT u.lexeme, p.id
  FROM products p, unnest(ecom_name_lexemes(p.search)) AS u(lexeme)
 WHERE p.search IS NOT NULL;

CREATE FUNCTION ecom_name_postings_move() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    v_old text[] := '{}';
    v_new text[] := '{}';
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        v_old := coalesce(ecom_name_lexemes(OLD.search), '{}');
    END IF;
    IF TG_OP IN ('UPDATE', 'INSERT') THEN
        v_new := coalesce(ecom_name_lexemes(NEW.search), '{}');
    END IF;
    IF TG_OP = 'UPDATE' AND v_old = v_new THEN
        RETURN NULL;
    END IF;
    DELETE FROM search_name_postings s
     WHERE s.lexeme = ANY (v_old) AND s.product_id = OLD.id
       AND NOT s.lexeme = ANY (v_new);
    INSERT INTO search_name_postings (lexeme, product_id)
    SELECT u, NEW.id FROM unnest(v_new) u
     WHERE NOT u = ANY (v_old)
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END $$;
-- products_search (sql/014) sets the vector BEFORE an insert or an update
-- of name or description; these run AFTER, with the vector as stored
CREATE TRIGGER products_name_postings_ins AFTER INSERT ON products
    FOR EACH ROW EXECUTE FUNCTION ecom_name_postings_move();
CREATE TRIGGER products_name_postings_del AFTER DELETE ON products
    FOR EACH ROW EXECUTE FUNCTION ecom_name_postings_move();
CREATE TRIGGER products_name_postings_upd AFTER UPDATE OF name, description, search
    ON products FOR EACH ROW
    WHEN (OLD.search IS DISTINCT FROM NEW.search)
    EXECUTE FUNCTION ecom_name_postings_move();

-- The lexemes of one term in the names: the word itself, or for a prefix
-- every lexeme of the postings it starts (a loose index scan, one descent
-- per lexeme); NULL when a prefix starts more than p_max.
CREATE FUNCTION ecom_name_term_lexemes(p_w text, p_prefix boolean, p_max int)
RETURNS text[] LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_out text[];
BEGIN
    IF NOT p_prefix THEN
        RETURN ARRAY[p_w];
    END IF;
    WITH RECURSIVE r(l) AS (
        SELECT (SELECT min(s.lexeme) FROM search_name_postings s
                 WHERE s.lexeme >= p_w AND s.lexeme < p_w || chr(1114111))
        UNION ALL
        SELECT (SELECT min(s.lexeme) FROM search_name_postings s
                 WHERE s.lexeme > r.l AND s.lexeme < p_w || chr(1114111))
          FROM r WHERE r.l IS NOT NULL)
    SELECT coalesce(array_agg(x.l), '{}') INTO v_out
      FROM (SELECT r.l FROM r WHERE r.l IS NOT NULL LIMIT p_max + 1) x;
    IF cardinality(v_out) > p_max THEN
        RETURN NULL;
    END IF;
    RETURN v_out;
END $$;

-- The next p_batch product ids after p_from of each lexeme of p_lex, in
-- its postings' order (LANGUAGE sql with plain arguments: inlined into
-- the statements of ecom_products_q that read it, no call of its own).
CREATE FUNCTION ecom_name_candidates(p_lex text[], p_from bigint, p_batch int)
RETURNS TABLE (lx text, id bigint) LANGUAGE sql STABLE AS $$
    SELECT w.lx, x.id FROM unnest(p_lex) AS w(lx)
     CROSS JOIN LATERAL (
           SELECT s.product_id AS id FROM search_name_postings s
            WHERE s.lexeme = w.lx AND s.product_id > p_from
            ORDER BY s.product_id LIMIT p_batch) x
$$;

-- ecom_products_q (sql/034) with tier 2 from the postings (see the top).
CREATE OR REPLACE FUNCTION ecom_products_q(p_in_stock boolean, p_q text, p_k1 bigint,
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
    v_dw    text;
    v_dp    boolean;
    v_dn    bigint;
    v_lex   text[];
    v_batch int;
    v_cut   bigint;
    v_terms bigint;
BEGIN
    SELECT m.nproducts, m.nsold_out INTO v_n, v_sold FROM search_lexemes_meta m;
    v_n := coalesce(v_n, 0);
    -- the share of the matches that in_stock keeps: a walk reads
    -- limit * N / (m * share) rows, GIN still reads all m matches
    v_share := CASE WHEN v_n = 0 OR p_in_stock IS NULL THEN 1
                    WHEN p_in_stock THEN (v_n - v_sold)::float8 / v_n
                    ELSE v_sold::float8 / v_n END;
    IF coalesce(p_k1, 2) >= 2 THEN
        -- the driving term: the rarest in names by the counts (a guess:
        -- only the work depends on it), and its lexemes from the postings
        SELECT t.w, t.prefix, c.n, count(*) OVER () INTO v_dw, v_dp, v_dn, v_terms
          FROM regexp_matches(v_q::text, '''((?:[^'']|'''')*)''(:\*)?', 'g') m
         CROSS JOIN LATERAL (
               SELECT replace(m[1], '''''', '''') AS w, m[2] IS NOT NULL AS prefix) t
         CROSS JOIN LATERAL (
               SELECT coalesce(sum(l.nname), 0) AS n
                 FROM (SELECT l.nname FROM search_lexemes l
                        WHERE l.lexeme >= t.w AND l.lexeme < t.w || chr(1114111)
                          AND (t.prefix OR l.lexeme = t.w)
                        LIMIT 1000) l) c
         ORDER BY c.n, t.prefix
         LIMIT 1;
        IF v_dw IS NOT NULL THEN
            v_lex := ecom_name_term_lexemes(v_dw, v_dp, 64);
        END IF;
    END IF;
    -- the estimates of sql/034, but not for one term read from the
    -- postings: its names are its count, and tier 1 may not be needed
    IF v_lex IS NULL OR v_terms > 1 THEN
        SELECT e.nname, e.ndoc INTO v_m2, v_ma FROM ecom_search_estimate(v_q, v_n) e;
    ELSE
        v_m2 := v_dn;
    END IF;
    IF coalesce(p_k1, 2) >= 2 AND v_lex IS NOT NULL THEN
        v_from := coalesce(v_from, 0);
        v_batch := least(2000, greatest(p_limit + 1, ceil(2.0 * p_limit
                       * greatest(v_dn, 1) / greatest(v_m2, 1)
                       / greatest(v_share, 0.01))))::int;
        -- no lexeme: no name holds the term, tier 2 is empty
        WHILE cardinality(v_lex) > 0 LOOP
            -- the candidates and the page in one statement
            RETURN QUERY
            WITH c AS MATERIALIZED (
                SELECT * FROM ecom_name_candidates(v_lex, v_from, v_batch))
            SELECT p.id, 2::bigint FROM products p
             WHERE p.id = ANY (ARRAY(SELECT DISTINCT c.id FROM c))
               AND p.id <= coalesce((SELECT min(f.last) FROM (
                       SELECT max(c.id) AS last FROM c GROUP BY c.lx
                       HAVING count(*) = v_batch) f), 9223372036854775807)
               AND p.active AND (p.search @@ v_qa) IS TRUE
               AND (p_in_stock IS NULL OR (p.stock > 0) = p_in_stock)
             ORDER BY p.id LIMIT p_limit - v_got;
            GET DIAGNOSTICS v_rows = ROW_COUNT;
            v_got := v_got + v_rows;
            EXIT WHEN v_got >= p_limit;
            -- not full: where the complete candidates ended (NULL: every
            -- lexeme ran out), the same statement's cut, read again
            SELECT min(f.last) INTO v_cut FROM (
                SELECT max(c.id) AS last
                  FROM ecom_name_candidates(v_lex, v_from, v_batch) c
                 GROUP BY c.lx HAVING count(*) = v_batch) f;
            EXIT WHEN v_cut IS NULL;
            v_from := v_cut;
            v_batch := least(v_batch * 4, 20000);
        END LOOP;
        v_from := NULL;
    ELSIF coalesce(p_k1, 2) >= 2 THEN
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
        IF v_ma IS NULL THEN
            SELECT e.nname, e.ndoc INTO v_m2, v_ma FROM ecom_search_estimate(v_q, v_n) e;
        END IF;
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
