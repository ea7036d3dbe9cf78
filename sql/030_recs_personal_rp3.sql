-- 030: personal picks of products the customer never bought ("new products
-- only", GET /recommendations/?new_only=true) from their own item-to-item
-- neighbours, a random walk with a popularity penalty (RP3beta), instead of
-- the bought-together neighbours (issue 10's new-only target: HR@10 >= 0.50,
-- NDCG@10 >= 0.11; 022 gave 0.4777 / 0.1072). Offline figures, every
-- variant tried and the SQL and API figures: docs/RECS_EVAL.md.
--
-- The walk: from a product to an order holding it (each with the same
-- chance), from that order to one of its products (each with the same
-- chance), so w(i, j) = sum over the orders holding i and j of
-- 1 / (products in the order), over n_i (orders holding i). A walk ends on
-- popular products most often; dividing by n_j^0.4 takes that back in part
-- (beta = 0.4: 0.3 to 0.45 all reach the target offline, 0 ranks the
-- best sellers first and loses 0.04 of HR@10, 0.7 ranks rarities first).
-- Each product keeps its 30 best (20 to 30 do as well, 50 worse: the tail
-- of a walk is noise), divided by their sum (n_i drops out). The same
-- orders as 022's neighbours (paid, shipped, delivered; an order's first
-- 100 distinct products). Why not the bought-together neighbours: their
-- cosine favours pairs that always go together (a set's pieces, colours of
-- one product), which "goes with this basket" wants; a customer's next NEW
-- product is better found by the walk, which spreads over everything their
-- products are bought with, less the best sellers everyone gets.
--
-- Personal picks (022's compute function, restated): "buy again" and its
-- re-ranking by the bought-together neighbours are 022's, unchanged; the
-- 'personal' rows (never bought) are now the walk's neighbours of the
-- customer's last 100 distinct products (022: the bought-together ones of
-- the last 50), each weighted exp(-days since bought / 365), summed, over
-- the best sum of the customer's candidates (bought ones included, as in
-- 022, so a personal pick still scores at most 1 and stays below the
-- reorders). Bought together (rec_item_neighbours, ecom_recs_basket) and
-- the product page are untouched.
--
-- Cost: the walk's neighbours are one more pass over the same order lines
-- as 022's (pairs = sum over orders of min(distinct lines, 100)^2, then a
-- top-30 sort per product): linear in orders, at most 30 rows a product
-- (30 million at a million products), never an item x item matrix. The
-- personal step reads at most 100 x 30 neighbour rows a user: linear in
-- users.
--
-- The refresh (021's ecom_recs_refresh) is restated with the new step
-- between the neighbours and the user picks; the same single transaction
-- under the same advisory lock, the same signature and result.

SET check_function_bodies = off;

CREATE TABLE rec_personal_neighbours (
    product_id   bigint   NOT NULL,
    rank         smallint NOT NULL CHECK (rank BETWEEN 1 AND 30),
    neighbour_id bigint   NOT NULL,
    score        real     NOT NULL,
    PRIMARY KEY (product_id, rank)
);

CREATE FUNCTION ecom_recs_compute_personal_neighbours()
RETURNS TABLE (product_id bigint, rank smallint, neighbour_id bigint, score real)
LANGUAGE sql STABLE AS $$
    WITH lines AS (
        -- each order's distinct products, at most 100 (first lines first),
        -- and how many it holds (the window runs after the WHERE)
        SELECT order_id, product_id, count(*) OVER (PARTITION BY order_id)::float8 AS sz
        FROM (
            SELECT l.order_id, l.product_id,
                   row_number() OVER (PARTITION BY l.order_id ORDER BY min(l.id)) AS k
            FROM orders o JOIN order_lines l ON l.order_id = o.id
            WHERE o.status IN ('paid', 'shipped', 'delivered')
              AND l.product_id IS NOT NULL
            GROUP BY l.order_id, l.product_id) x
        WHERE k <= 100
    ), n AS (
        SELECT l.product_id, count(*)::float8 AS n FROM lines l GROUP BY l.product_id
    ), walk AS (
        SELECT a.product_id AS i, b.product_id AS j, sum(1 / b.sz) AS w
        FROM lines a JOIN lines b ON b.order_id = a.order_id
                                 AND b.product_id <> a.product_id
        GROUP BY a.product_id, b.product_id
    ), ranked AS (
        SELECT w.i, w.j, w.w / power(nj.n, 0.4) AS s,
               row_number() OVER (PARTITION BY w.i
                                  ORDER BY w.w / power(nj.n, 0.4) DESC, w.j) AS k
        FROM walk w JOIN n nj ON nj.product_id = w.j
    )
    SELECT i, k::smallint, j, (s / sum(s) OVER (PARTITION BY i))::real
    FROM ranked WHERE k <= 30
$$;

CREATE OR REPLACE FUNCTION ecom_recs_compute_user_picks()
RETURNS TABLE (user_id bigint, rank smallint, product_id bigint, score real,
               source text)
LANGUAGE sql STABLE AS $$
    -- MATERIALIZED: the reference time is computed once (inlined, the
    -- STABLE function would run once per row).
    WITH ref AS MATERIALIZED (SELECT ecom_recs_now() AS t),
    bought AS (
        SELECT o.user_id, l.product_id, count(DISTINCT o.id) AS orders,
               greatest(0, extract(epoch FROM (SELECT t FROM ref) - max(o.created_at))
                           / 86400.0)::float8 AS days
        FROM orders o JOIN order_lines l ON l.order_id = o.id
        WHERE o.status IN ('paid', 'shipped', 'delivered')
          AND l.product_id IS NOT NULL
        GROUP BY o.user_id, l.product_id
    ), recent AS (
        -- the customer's distinct products, the latest first
        SELECT user_id, product_id, k, exp(-days / 365) AS w FROM (
            SELECT b.*, row_number() OVER (PARTITION BY b.user_id
                                           ORDER BY b.days, b.product_id) AS k
            FROM bought b) x
        WHERE k <= 100
    ), cand AS (
        -- 022: the bought-together neighbours of the last 50, bought ones
        -- included: they re-rank the buy-again list
        SELECT r.user_id, nb.neighbour_id AS product_id, sum(nb.score * r.w) AS s
        FROM recent r JOIN rec_item_neighbours nb ON nb.product_id = r.product_id
        WHERE r.k <= 50
        GROUP BY r.user_id, nb.neighbour_id
    ), cand_n AS (
        SELECT c.user_id, c.product_id, c.s / max(c.s) OVER (PARTITION BY c.user_id) AS s
        FROM cand c
    ), again AS (
        SELECT b.user_id, b.product_id,
               10 * b.w / max(b.w) OVER (PARTITION BY b.user_id) + COALESCE(c.s, 0) AS w
        FROM (SELECT user_id, product_id, orders * exp(-days / 120) AS w FROM bought) b
        LEFT JOIN cand_n c ON c.user_id = b.user_id AND c.product_id = b.product_id
    ), again_k AS (
        SELECT a.*, row_number() OVER (PARTITION BY a.user_id ORDER BY a.w DESC, a.product_id) AS k
        FROM again a
    ), walk AS (
        -- 030: the walk's neighbours of the last 100, over the customer's
        -- best (bought ones included, so the best never-bought one may
        -- score below 1)
        SELECT r.user_id, nb.neighbour_id AS product_id, sum(nb.score * r.w) AS s
        FROM recent r JOIN rec_personal_neighbours nb ON nb.product_id = r.product_id
        GROUP BY r.user_id, nb.neighbour_id
    ), personal AS (
        SELECT user_id, product_id, s,
               row_number() OVER (PARTITION BY user_id ORDER BY s DESC, product_id) AS k
        FROM (SELECT w.user_id, w.product_id,
                     w.s / max(w.s) OVER (PARTITION BY w.user_id) AS s
              FROM walk w) x
        WHERE NOT EXISTS (SELECT 1 FROM bought b WHERE b.user_id = x.user_id
                          AND b.product_id = x.product_id)
    ), blend AS (
        -- the top 25 of each; ranked by score: buy-again (10 x its share of
        -- the customer's best + its kNN score) above personal (at most 1)
        -- unless a reorder is rare and old
        SELECT user_id, product_id, w AS s, 'buy_again' AS src FROM again_k WHERE k <= 25
        UNION ALL
        SELECT user_id, product_id, s, 'personal' FROM personal WHERE k <= 25
    )
    SELECT user_id, row_number() OVER (PARTITION BY user_id ORDER BY s DESC, src, product_id)::smallint,
           product_id, s::real, src
    FROM blend
$$;

-- 021's refresh with the walk's neighbours between the bought-together
-- neighbours and the user picks (which read both). Unchanged otherwise: one
-- transaction, the advisory lock tried (not waited for), the interval
-- check, the same result row; the new step's row count is in its NOTICE.
CREATE OR REPLACE FUNCTION ecom_recs_refresh(p_trigger text, p_min_interval interval,
                                             p_by text DEFAULT NULL)
RETURNS TABLE (status text, run_id bigint, neighbours int, user_picks int,
               popular int, similar_computed int, seconds double precision)
LANGUAGE plpgsql AS $$
DECLARE
    t0 timestamptz := clock_timestamp();
    t  timestamptz;
    last_at timestamptz;
    budget int := COALESCE(NULLIF(current_setting('ecom.recs_similar_budget', true), '')::int, 5000);
    n_nb int; n_up int; n_pop int; n_sim int;
    id bigint;
BEGIN
    IF p_trigger IS NULL OR p_trigger NOT IN ('watchdog', 'admin') THEN
        RAISE EXCEPTION 'ecom_recs_refresh: trigger must be watchdog or admin'
            USING ERRCODE = '22023';
    END IF;
    IF NOT pg_try_advisory_xact_lock(7316021) THEN
        RETURN QUERY SELECT 'already running'::text, NULL::bigint, 0, 0, 0, 0, 0::double precision;
        RETURN;
    END IF;
    SELECT max(r.finished_at) INTO last_at FROM rec_refresh_runs r;
    IF last_at IS NOT NULL AND p_min_interval IS NOT NULL
       AND last_at > clock_timestamp() - p_min_interval THEN
        RETURN QUERY SELECT 'skipped'::text, NULL::bigint, 0, 0, 0, 0, 0::double precision;
        RETURN;
    END IF;

    -- the pair counts of the neighbours are one large aggregation: in
    -- memory rather than spilled (this transaction only; one refresh at a
    -- time runs)
    PERFORM set_config('work_mem', '256MB', true);
    t := clock_timestamp();
    n_sim := ecom_recs_update_similar(budget);
    RAISE NOTICE 'similar: % products computed (budget %) in % s', n_sim, budget,
        round(extract(epoch FROM clock_timestamp() - t)::numeric, 2);

    n_nb := ecom_recs_replace('neighbours', 'rec_item_neighbours',
        'product_id, rank, neighbour_id, score, source', 'ecom_recs_compute_neighbours');
    PERFORM ecom_recs_replace('personal neighbours', 'rec_personal_neighbours',
        'product_id, rank, neighbour_id, score', 'ecom_recs_compute_personal_neighbours');
    n_up := ecom_recs_replace('user picks', 'rec_user_picks',
        'user_id, rank, product_id, score, source', 'ecom_recs_compute_user_picks');
    n_pop := ecom_recs_replace('popular', 'rec_popular',
        'rank, product_id, score', 'ecom_recs_compute_popular');

    INSERT INTO rec_refresh_runs (started_at, finished_at, duration, neighbours,
                                  user_picks, popular, similar_computed, trigger, run_by)
    VALUES (t0, clock_timestamp(), clock_timestamp() - t0, n_nb, n_up, n_pop,
            n_sim, p_trigger, p_by)
    RETURNING rec_refresh_runs.id INTO id;
    RETURN QUERY SELECT 'refreshed'::text, id, n_nb, n_up, n_pop, n_sim,
        extract(epoch FROM clock_timestamp() - t0)::double precision;
END
$$;
