-- 021: recommendations (issue 10, first section): precomputed tables, the
-- refresh that fills them, a first algorithm, and the read functions the
-- endpoints call (mod_ecom/ecom_recs.c).
--
-- Nothing is computed in a request. ecom_recs_refresh() (called by
-- mod_watchdog every EcomRecsRefreshInterval seconds, and by
-- `scripts/ecom-admin recs-refresh`) replaces the three serving tables in
-- ONE transaction from the compute functions; the endpoints read them by
-- primary key through the read functions. Readers see the old set or the
-- new one, never half: the tables are emptied with DELETE (MVCC), not
-- TRUNCATE, which would also block readers for the whole refresh.
--
-- The interface fixed with migration 022 (the tuned algorithm, issue 10's
-- evaluation): 022 may CREATE OR REPLACE the compute functions
-- (ecom_recs_compute_*) and the read functions (ecom_recs_product, _user,
-- _basket) and add tables and indexes of its own; the orchestration
-- (ecom_recs_refresh) and the C code stay as they are. The refresh calls
-- the compute functions in this order, each after the previous one's rows
-- are in place (same transaction), so a later one may read an earlier
-- one's table: neighbours, then user picks (which read the neighbours),
-- then popular.
--
-- The first algorithm (correct and reasonable, not tuned):
--  - bought together: item-to-item collaborative filtering over paid,
--    shipped and delivered orders. Two products co-occur when one customer
--    bought both (in one order or in two). Each customer's history counts
--    its 100 most recently bought distinct
--    products, which bounds the pair count of a wholesale customer with
--    thousands of products (pairs grow with the square of a history).
--    score(i, j) = c_ij / sqrt(n_i * n_j) * c_ij / (c_ij + 5): the cosine
--    of the two products' buyer sets, shrunk towards 0 when few customers
--    support it (5: the shrinkage term). Top 50 per product.
--  - similar (content-based, for products with too little history): the
--    products whose name is trigram-similar (pg_trgm, enabled by 014, its
--    GIN index products_name_trgm finds the candidates), scored
--    0.6 * similarity(name) + 0.25 * similarity(first 200 characters of
--    the description) + 0.15 if in the same category; when no name is
--    similar enough, the same category's best-selling / newest products.
--    Trigram neighbours of a million products are too costly to find in
--    one run (one index probe per product), so they are kept in
--    rec_similar and computed incrementally: each refresh computes at
--    most ecom.recs_similar_budget products (default 5000; SET it in the
--    session, or ecom-admin recs-refresh --similar-budget N), those never
--    computed first, then those changed since (updated_at), oldest first.
--    A product without CF neighbours gets its similar ones after its
--    bought-together ones, up to 50 in all.
--  - popular lately: distinct buyers in the 90 days before the newest paid
--    order (or now() when there is none), then all-time buyers, top 500.
--  - personal picks: "buy again" (the user's own purchases by frequency and
--    recency: orders holding the product times 0.5^(days since the last
--    one / 60), the reference date being the newest paid order) blended
--    with "personal" (the sum of the bought-together / similar scores of
--    the 20 first neighbours of the user's 20 latest products (which bounds
--    the work per user), weighted by the same
--    recency, excluding what the user bought); each source normalised to
--    its user's best, personal weighted 0.8; the top 25 of each, top 50 in
--    all.

-- ---- the serving tables -------------------------------------------------

CREATE TABLE rec_item_neighbours (
    product_id   bigint   NOT NULL,
    rank         smallint NOT NULL CHECK (rank BETWEEN 1 AND 50),
    neighbour_id bigint   NOT NULL,
    score        real     NOT NULL,
    source       text     NOT NULL CHECK (source IN ('bought_together', 'similar')),
    PRIMARY KEY (product_id, rank)
);

CREATE TABLE rec_user_picks (
    user_id    bigint   NOT NULL,
    rank       smallint NOT NULL CHECK (rank BETWEEN 1 AND 50),
    product_id bigint   NOT NULL,
    score      real     NOT NULL,
    source     text     NOT NULL,
    PRIMARY KEY (user_id, rank)
);

CREATE TABLE rec_popular (
    rank       int    PRIMARY KEY,
    product_id bigint NOT NULL,
    score      real   NOT NULL
);

-- One row per refresh that ran (a skipped or refused call leaves none).
CREATE TABLE rec_refresh_runs (
    id               bigserial   PRIMARY KEY,
    started_at       timestamptz NOT NULL,
    finished_at      timestamptz NOT NULL,
    duration         interval    NOT NULL,
    neighbours       integer     NOT NULL,   -- rows of rec_item_neighbours
    user_picks       integer     NOT NULL,   -- rows of rec_user_picks
    popular          integer     NOT NULL,   -- rows of rec_popular
    similar_computed integer     NOT NULL,   -- products whose rec_similar was (re)computed
    trigger          text        NOT NULL CHECK (trigger IN ('watchdog', 'admin')),
    run_by           text
);
CREATE INDEX rec_refresh_runs_finished ON rec_refresh_runs (finished_at DESC);

-- The content-based neighbours, kept between refreshes (computed
-- incrementally, see above). rec_similar_state says when a product's were
-- computed; a product updated since is computed again.
CREATE TABLE rec_similar (
    product_id   bigint   NOT NULL,
    rank         smallint NOT NULL,
    neighbour_id bigint   NOT NULL,
    score        real     NOT NULL,
    PRIMARY KEY (product_id, rank)
);
CREATE TABLE rec_similar_state (
    product_id  bigint      PRIMARY KEY,
    computed_at timestamptz NOT NULL
);

-- ---- compute functions (022 may replace them) ---------------------------

-- The reference "now" of the data: the newest paid, shipped or delivered
-- order (an imported history ends in the past), or now(). Callers keep
-- it in a MATERIALIZED CTE: inlined, the planner ran it once per row.
CREATE FUNCTION ecom_recs_now() RETURNS timestamptz
LANGUAGE sql STABLE AS $$
    SELECT COALESCE(max(created_at), now()) FROM orders
    WHERE status IN ('paid', 'shipped', 'delivered')
$$;

CREATE FUNCTION ecom_recs_compute_neighbours()
RETURNS TABLE (product_id bigint, rank smallint, neighbour_id bigint,
               score real, source text)
LANGUAGE sql STABLE AS $$
    WITH bought AS (
        -- each customer's distinct products, newest purchase first
        SELECT o.user_id, l.product_id, max(o.created_at) AS last_at
        FROM orders o JOIN order_lines l ON l.order_id = o.id
        WHERE o.status IN ('paid', 'shipped', 'delivered')
          AND l.product_id IS NOT NULL
        GROUP BY o.user_id, l.product_id
    ), hist AS (
        SELECT user_id, product_id FROM (
            SELECT b.user_id, b.product_id,
                   row_number() OVER (PARTITION BY b.user_id
                                      ORDER BY b.last_at DESC, b.product_id) AS k
            FROM bought b) x
        WHERE k <= 100
    ), n AS (
        SELECT h.product_id, count(*)::real AS n FROM hist h GROUP BY h.product_id
    ), half AS (
        -- each unordered pair once (half the rows to aggregate), then both ways
        SELECT a.product_id AS i, b.product_id AS j, count(*)::real AS c
        FROM hist a JOIN hist b ON b.user_id = a.user_id
                               AND b.product_id > a.product_id
        GROUP BY a.product_id, b.product_id
    ), pairs AS (
        SELECT i, j, c FROM half UNION ALL SELECT j, i, c FROM half
    ), cf AS (
        SELECT p.i, p.j,
               (p.c / sqrt(ni.n * nj.n) * p.c / (p.c + 5))::real AS s
        FROM pairs p JOIN n ni ON ni.product_id = p.i
                     JOIN n nj ON nj.product_id = p.j
    ), cf_top AS (
        SELECT i, j, s, k FROM (
            SELECT cf.i, cf.j, cf.s,
                   row_number() OVER (PARTITION BY cf.i ORDER BY cf.s DESC, cf.j) AS k
            FROM cf) x
        WHERE k <= 50
    ), cf_count AS (
        SELECT i, count(*) AS m FROM cf_top GROUP BY i
    ), sim AS (
        -- similar ones after the bought-together ones, without repeating one
        SELECT s.product_id AS i, s.neighbour_id AS j, s.score AS s,
               COALESCE(cc.m, 0) + row_number() OVER (PARTITION BY s.product_id
                                                      ORDER BY s.rank) AS k
        FROM rec_similar s LEFT JOIN cf_count cc ON cc.i = s.product_id
        WHERE COALESCE(cc.m, 0) < 50
          AND NOT EXISTS (SELECT 1 FROM cf_top t
                          WHERE t.i = s.product_id AND t.j = s.neighbour_id)
    )
    SELECT i, k::smallint, j, s, 'bought_together' FROM cf_top
    UNION ALL
    SELECT i, k::smallint, j, s, 'similar' FROM sim WHERE k <= 50
$$;

CREATE FUNCTION ecom_recs_compute_user_picks()
RETURNS TABLE (user_id bigint, rank smallint, product_id bigint, score real,
               source text)
LANGUAGE sql STABLE AS $$
    WITH ref AS MATERIALIZED (SELECT ecom_recs_now() AS t),
    bought AS (
        SELECT o.user_id, l.product_id, count(DISTINCT o.id) AS orders,
               max(o.created_at) AS last_at
        FROM orders o JOIN order_lines l ON l.order_id = o.id
        WHERE o.status IN ('paid', 'shipped', 'delivered')
          AND l.product_id IS NOT NULL
        GROUP BY o.user_id, l.product_id
    ), weighted AS (
        SELECT b.user_id, b.product_id, b.last_at,
               -- float8, not numeric: numeric power() costs ~25 us a row
               (b.orders * power(0.5::float8, GREATEST(0, extract(epoch FROM ref.t - b.last_at))::float8
                                              / (60 * 86400.0)))::real AS w
        FROM bought b, ref
    ), again AS (
        SELECT w.user_id, w.product_id, w.w / max(w.w) OVER (PARTITION BY w.user_id) AS s,
               row_number() OVER (PARTITION BY w.user_id ORDER BY w.w DESC, w.product_id) AS k
        FROM weighted w
    ), recent AS (
        SELECT user_id, product_id, w FROM (
            SELECT w.*, row_number() OVER (PARTITION BY w.user_id
                                           ORDER BY w.last_at DESC, w.product_id) AS k
            FROM weighted w) x
        WHERE k <= 20
    ), cand AS (
        SELECT r.user_id, nb.neighbour_id AS product_id, sum(nb.score * r.w) AS s
        FROM recent r JOIN rec_item_neighbours nb ON nb.product_id = r.product_id
                                                 AND nb.rank <= 20
        WHERE NOT EXISTS (SELECT 1 FROM bought b WHERE b.user_id = r.user_id
                          AND b.product_id = nb.neighbour_id)
        GROUP BY r.user_id, nb.neighbour_id
    ), personal AS (
        SELECT c.user_id, c.product_id,
               0.8 * c.s / NULLIF(max(c.s) OVER (PARTITION BY c.user_id), 0) AS s,
               row_number() OVER (PARTITION BY c.user_id ORDER BY c.s DESC, c.product_id) AS k
        FROM cand c
    ), blend AS (
        SELECT user_id, product_id, s, 'buy_again' AS src FROM again WHERE k <= 25
        UNION ALL
        SELECT user_id, product_id, COALESCE(s, 0), 'personal' FROM personal WHERE k <= 25
    )
    SELECT user_id, k::smallint, product_id, s::real, src FROM (
        SELECT b.*, row_number() OVER (PARTITION BY b.user_id
                                       ORDER BY b.s DESC, b.src, b.product_id) AS k
        FROM blend b) x
    WHERE k <= 50
$$;

CREATE FUNCTION ecom_recs_compute_popular()
RETURNS TABLE (rank int, product_id bigint, score real)
LANGUAGE sql STABLE AS $$
    WITH ref AS MATERIALIZED (SELECT ecom_recs_now() AS t),
    buyers AS (
        SELECT l.product_id,
               count(DISTINCT o.user_id) FILTER (WHERE o.created_at > ref.t - interval '90 days') AS recent,
               count(DISTINCT o.user_id) AS total
        FROM orders o JOIN order_lines l ON l.order_id = o.id, ref
        WHERE o.status IN ('paid', 'shipped', 'delivered')
          AND l.product_id IS NOT NULL
        GROUP BY l.product_id
    )
    SELECT row_number() OVER (ORDER BY recent DESC, total DESC, product_id)::int,
           product_id,
           -- recent buyers; all-time ones count for the order after them
           (recent + total / 1000000.0)::real
    FROM buyers
    ORDER BY 1
    LIMIT 500
$$;

-- ---- the incremental content-based step (orchestration, 021 only) -------

-- Computes rec_similar for at most p_budget products: never computed
-- first, then changed since they were (updated_at), oldest first. Returns
-- how many. Candidates come from the GIN trigram index on lower(name)
-- (products_name_trgm, sql/014) through the % operator; pg_trgm's
-- similarity_threshold (0.3) bounds what a probe reads.
CREATE FUNCTION ecom_recs_update_similar(p_budget int) RETURNS int
LANGUAGE plpgsql AS $$
DECLARE
    todo bigint[];
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
    DELETE FROM rec_similar WHERE product_id = ANY (todo);
    INSERT INTO rec_similar (product_id, rank, neighbour_id, score)
    SELECT t.id, row_number() OVER (PARTITION BY t.id ORDER BY c.s DESC, c.id)::smallint,
           c.id, c.s
    FROM products t
    CROSS JOIN LATERAL (
        SELECT y.id, y.s FROM (SELECT DISTINCT ON (x.id) x.id, x.s FROM (
            -- trigram-similar names (the index answers lower(name) % ...)
            (SELECT q.id,
                    (0.6 * similarity(lower(q.name), lower(t.name))
                     + 0.25 * similarity(left(q.description, 200), left(t.description, 200))
                     + CASE WHEN q.category_id = t.category_id THEN 0.15 ELSE 0 END)::real AS s
             FROM products q
             WHERE q.active AND lower(q.name) % lower(t.name) AND q.id <> t.id
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

-- ---- orchestration (021 only) -------------------------------------------

-- Replaces the serving tables from the compute functions, in the caller's
-- transaction (one statement: `SELECT * FROM ecom_recs_refresh(...)`).
-- Only one refresh at a time on the whole database: the transaction-level
-- advisory lock is tried, not waited for, so a second caller (another
-- child, httpd process or host, or ecom-admin) returns at once with
-- 'already running'. A refresh is skipped ('skipped') when the last one
-- finished less than p_min_interval ago, so several hosts with the same
-- interval refresh once per interval between them. Progress goes out as
-- NOTICEs (psql shows them). status: 'refreshed', 'already running',
-- 'skipped'; the counts are the new rows (0 unless refreshed).
CREATE FUNCTION ecom_recs_refresh(p_trigger text, p_min_interval interval,
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

    t := clock_timestamp();
    DELETE FROM rec_item_neighbours;
    INSERT INTO rec_item_neighbours (product_id, rank, neighbour_id, score, source)
    SELECT c.product_id, c.rank, c.neighbour_id, c.score, c.source
    FROM ecom_recs_compute_neighbours() c;
    GET DIAGNOSTICS n_nb = ROW_COUNT;
    RAISE NOTICE 'neighbours: % rows in % s', n_nb,
        round(extract(epoch FROM clock_timestamp() - t)::numeric, 2);

    t := clock_timestamp();
    DELETE FROM rec_user_picks;
    INSERT INTO rec_user_picks (user_id, rank, product_id, score, source)
    SELECT c.user_id, c.rank, c.product_id, c.score, c.source
    FROM ecom_recs_compute_user_picks() c;
    GET DIAGNOSTICS n_up = ROW_COUNT;
    RAISE NOTICE 'user picks: % rows in % s', n_up,
        round(extract(epoch FROM clock_timestamp() - t)::numeric, 2);

    t := clock_timestamp();
    DELETE FROM rec_popular;
    INSERT INTO rec_popular (rank, product_id, score)
    SELECT c.rank, c.product_id, c.score FROM ecom_recs_compute_popular() c;
    GET DIAGNOSTICS n_pop = ROW_COUNT;
    RAISE NOTICE 'popular: % rows in % s', n_pop,
        round(extract(epoch FROM clock_timestamp() - t)::numeric, 2);

    INSERT INTO rec_refresh_runs (started_at, finished_at, duration, neighbours,
                                  user_picks, popular, similar_computed, trigger, run_by)
    VALUES (t0, clock_timestamp(), clock_timestamp() - t0, n_nb, n_up, n_pop,
            n_sim, p_trigger, p_by)
    RETURNING rec_refresh_runs.id INTO id;
    RETURN QUERY SELECT 'refreshed'::text, id, n_nb, n_up, n_pop, n_sim,
        extract(epoch FROM clock_timestamp() - t0)::double precision;
END
$$;

-- ---- read functions (022 may replace them) ------------------------------
-- Each returns at most p_limit rows in order: never the product(s) asked
-- about, only active products in stock, the precomputed rows first and
-- then what is popular to fill p_limit. Index reads of the serving tables;
-- the popular branch runs only when the first is short (its one-time
-- filter), and reads at most what it needs past the products it skips.

CREATE FUNCTION ecom_recs_product(p_product bigint, p_limit int)
RETURNS TABLE (product_id bigint, score real, strategy text)
LANGUAGE sql STABLE AS $$
    WITH nb AS (
        SELECT n.neighbour_id AS id, n.score, n.source, n.rank::int AS ord
        FROM rec_item_neighbours n
        JOIN products p ON p.id = n.neighbour_id AND p.active AND p.stock > 0
        WHERE n.product_id = p_product AND n.neighbour_id <> p_product
        ORDER BY n.rank LIMIT p_limit
    ), pop AS (
        SELECT r.product_id AS id, r.score, 'popular'::text AS source, 100 + r.rank AS ord
        FROM rec_popular r
        JOIN products p ON p.id = r.product_id AND p.active AND p.stock > 0
        WHERE (SELECT count(*) FROM nb) < p_limit
          AND r.product_id <> p_product
          AND NOT EXISTS (SELECT 1 FROM nb WHERE nb.id = r.product_id)
        ORDER BY r.rank LIMIT p_limit
    )
    SELECT id, score, source FROM (
        SELECT * FROM nb UNION ALL SELECT * FROM pop) x
    ORDER BY ord LIMIT p_limit
$$;

CREATE FUNCTION ecom_recs_user(p_user bigint, p_limit int, p_new_only boolean)
RETURNS TABLE (product_id bigint, score real, strategy text)
LANGUAGE sql STABLE AS $$
    WITH bought AS (
        -- read only for new_only (a one-time filter otherwise)
        SELECT DISTINCT l.product_id AS id
        FROM orders o JOIN order_lines l ON l.order_id = o.id
        WHERE p_new_only AND o.user_id = p_user
          AND o.status IN ('paid', 'shipped', 'delivered')
          AND l.product_id IS NOT NULL
    ), picks AS (
        SELECT u.product_id AS id, u.score, u.source, u.rank::int AS ord
        FROM rec_user_picks u
        JOIN products p ON p.id = u.product_id AND p.active AND p.stock > 0
        WHERE u.user_id = p_user
          AND NOT (p_new_only AND (u.source = 'buy_again'
                                   OR u.product_id IN (SELECT id FROM bought)))
        ORDER BY u.rank LIMIT p_limit
    ), pop AS (
        SELECT r.product_id AS id, r.score, 'popular'::text AS source, 100 + r.rank AS ord
        FROM rec_popular r
        JOIN products p ON p.id = r.product_id AND p.active AND p.stock > 0
        WHERE (SELECT count(*) FROM picks) < p_limit
          AND NOT EXISTS (SELECT 1 FROM picks WHERE picks.id = r.product_id)
          AND NOT (p_new_only AND r.product_id IN (SELECT id FROM bought))
        ORDER BY r.rank LIMIT p_limit
    )
    SELECT id, score, source FROM (
        SELECT * FROM picks UNION ALL SELECT * FROM pop) x
    ORDER BY ord LIMIT p_limit
$$;

-- Basket completion: the neighbours of every product of the basket, their
-- scores summed (a product near several of the basket's ranks higher);
-- 'bought_together' when any of its links is, else 'similar'.
CREATE FUNCTION ecom_recs_basket(p_products bigint[], p_limit int)
RETURNS TABLE (product_id bigint, score real, strategy text)
LANGUAGE sql STABLE AS $$
    WITH nb AS (
        SELECT n.neighbour_id AS id, sum(n.score)::real AS score,
               CASE WHEN bool_or(n.source = 'bought_together')
                    THEN 'bought_together' ELSE 'similar' END AS source
        FROM rec_item_neighbours n
        JOIN products p ON p.id = n.neighbour_id AND p.active AND p.stock > 0
        WHERE n.product_id = ANY (p_products)
          AND n.neighbour_id <> ALL (p_products)
        GROUP BY n.neighbour_id
    ), top AS (
        SELECT id, score, source,
               row_number() OVER (ORDER BY source, score DESC, id)::int AS ord
        FROM nb ORDER BY ord LIMIT p_limit
    ), pop AS (
        SELECT r.product_id AS id, r.score, 'popular'::text AS source, 1000000 + r.rank AS ord
        FROM rec_popular r
        JOIN products p ON p.id = r.product_id AND p.active AND p.stock > 0
        WHERE (SELECT count(*) FROM top) < p_limit
          AND r.product_id <> ALL (p_products)
          AND NOT EXISTS (SELECT 1 FROM top WHERE top.id = r.product_id)
        ORDER BY r.rank LIMIT p_limit
    )
    SELECT id, score, source FROM (
        SELECT * FROM top UNION ALL SELECT * FROM pop) x
    ORDER BY ord LIMIT p_limit
$$;
