-- 036: no SQL parsed or planned per call on the order path (issue 7):
-- the checkout's discount split keeps its plan, the cart add's sale is
-- inlined, and the facet trigger's condition calls no SQL function.
--
-- The split. Why: ecom_money_split (sql/023) was a LANGUAGE sql function whose body
-- (a CTE with window functions) PostgreSQL cannot inline into its caller,
-- so every call parsed and planned that body again: every checkout calls
-- it once, and with track_functions = all the mix of `make bench` showed
-- 0.52 ms a call under load, 14 % of ecom_checkout_full's time, for a
-- split of a discount that is nearly always 0. Now:
--   - PL/pgSQL, whose statement is planned once per session and kept;
--   - a discount of 0 is an array of zeros without the query (the same
--     result: each line's exact share of 0 is 0, nothing left over), when
--     no weight is NULL (a NULL weight keeps the query's answer).
-- Same rule, same results; t/55-coupons.t checks it against the C split.
CREATE OR REPLACE FUNCTION ecom_money_split(p_total bigint, p_weights bigint[])
RETURNS bigint[] LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    IF p_total = 0 AND p_weights IS NOT NULL
       AND array_position(p_weights, NULL) IS NULL THEN
        RETURN array_fill(0::bigint, ARRAY[cardinality(p_weights)]);
    END IF;
    RETURN (
    WITH w AS (SELECT u.i, u.wt::numeric AS wt,
                      sum(u.wt::numeric) OVER () AS s
                 FROM unnest(p_weights) WITH ORDINALITY AS u(wt, i)),
    f AS (SELECT w.i,
                 CASE WHEN w.s = 0 THEN 0
                      ELSE div(p_total::numeric * w.wt, w.s) END AS fl,
                 CASE WHEN w.s = 0 THEN 0
                      ELSE mod(p_total::numeric * w.wt, w.s) END AS rem
            FROM w),
    r AS (SELECT f.i, f.fl,
                 row_number() OVER (ORDER BY f.rem DESC, f.i) AS rk,
                 p_total - sum(f.fl) OVER () AS left_over
            FROM f)
    SELECT coalesce(array_agg((r.fl + CASE WHEN r.rk <= r.left_over
                                           THEN 1 ELSE 0 END)::bigint
                              ORDER BY r.i), '{}')
      FROM r);
END $$;

-- The add. The cart add statements (mod_ecom/ecom_cart.c, ecom_cart_add
-- and ecom_guest_cart_add) join ecom_sale (sql/023) to the line the add
-- function returns. They passed the product's category as a subquery, and
-- PostgreSQL inlines a set-returning SQL function only when its arguments
-- hold none: every add parsed and planned ecom_sale's body (0.51 ms a call
-- under the mix, 92 % of the add function's time). They now join the
-- product instead. The add functions return at most one row, but were
-- declared with the default estimate of 1,000: joined, that estimate made
-- the statement's plan hash the whole products table and cost it above
-- jit_above_cost, so every add was JIT-compiled (the mix fell from 600 to
-- 43 orders/s). Their estimate is now what they return.
ALTER FUNCTION ecom_cart_add_as(bigint, text, bigint, integer, integer, integer) ROWS 1;
ALTER FUNCTION ecom_guest_cart_add(text, boolean, integer, bigint, integer, integer, integer) ROWS 1;

-- The facet trigger. Every checkout's stock update fires the facet
-- counts' update trigger's WHEN (sql/015), which compared
-- ecom_price_bucket(OLD.price) with ecom_price_bucket(NEW.price): to run
-- that condition, every statement parsed the SQL function's body again to
-- inline it (base_yyparse under ExecARUpdateTriggers in a perf profile of
-- the mix). The condition now compares the prices themselves; a price
-- that moves within its bucket fires ecom_facet_move, which returns
-- without writing when the counted key did not change (sql/035). Price
-- changes are staff writes, rare next to the checkouts' stock updates.
DROP TRIGGER products_facets_upd ON products;
CREATE TRIGGER products_facets_upd AFTER UPDATE ON products
    FOR EACH ROW WHEN (OLD.active IS DISTINCT FROM NEW.active
                       OR OLD.category_id IS DISTINCT FROM NEW.category_id
                       OR (OLD.stock > 0) <> (NEW.stock > 0)
                       OR OLD.price IS DISTINCT FROM NEW.price)
    EXECUTE FUNCTION ecom_facet_move();
