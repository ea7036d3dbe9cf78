-- 037: q's tsquery keeps its plan (issue 8: q at >= 2,000 requests/s at a
-- million products).
--
-- Why: ecom_search_query (sql/014) was a LANGUAGE sql function whose body
-- (an aggregate over regexp_matches with window functions) PostgreSQL
-- cannot inline, so each call parsed and planned that body again. Every
-- page with q calls it: ecom_products_q (sql/034) once per request, and
-- the planned pages (sql/031, sql/032) and the facets (sql/015) when they
-- plan. Now PL/pgSQL, whose statement is planned once per session and
-- kept; the same statement, the same tsquery for every q (t/69 compares
-- the pages with the planned path's, t/03 and t/42 check the words,
-- stemming and prefixes).
CREATE OR REPLACE FUNCTION ecom_search_query(p_q text) RETURNS tsquery
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
BEGIN
    RETURN (
    SELECT CASE WHEN count(*) > 0 THEN to_tsquery('english',
           string_agg(quote_literal(w) || CASE WHEN last AND p_q !~ '\s$'
                                               THEN ':*' ELSE '' END,
                      ' & ' ORDER BY i)) END
      FROM (SELECT m[1] AS w, row_number() OVER () AS i,
                   row_number() OVER () = count(*) OVER () AS last
              FROM regexp_matches(lower(p_q), '[[:alnum:]]+', 'g') m) s);
END $$;
