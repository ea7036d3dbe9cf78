-- 024: demand-based prices within staff-set bounds, and the price history
-- (issue 10, "Demand-based prices").
--
-- A product takes part when staff set both price_floor and price_ceiling
-- (both or neither; floor <= price <= ceiling, enforced here whatever
-- writes the row). ecom_reprice() is one run of the job, in ONE
-- transaction: it decides every bounded product's move from its recent
-- sales (ecom_reprice_plan), locks the products that move in id order (the
-- order checkout locks them in: no deadlock), moves each price by one
-- bounded step, records every change in price_history and the run in
-- price_runs. mod_watchdog calls it every EcomDynamicPricingInterval
-- seconds (mod_ecom.c, ecom_dynprice.c), scripts/ecom-admin reprice on
-- demand.
--
-- The rule (docs/API.md, "Demand-based prices", has the same text):
--   units     = units of the product in paid, shipped or delivered orders
--               placed in the last 7 days
--   velocity  = units / 7                       (units a day)
--   cover     = stock / velocity                (days of stock; none when
--                                                velocity is 0)
--   raise     when velocity > 0 and cover < 14 days (selling faster than
--             the stock lasts; an out-of-stock product that sold too)
--   lower     when velocity = 0 and stock > 0, or cover > 60 days
--   hold      otherwise (between 14 and 60 days, or no stock and no sales)
--   step      = floor(price * 5 %) cents (so a product under 20 cents does
--               not move); new price = price +/- step, clamped to
--               [price_floor, price_ceiling]. A product at its bound stays.
--
-- Several httpd processes or hosts may call it at once: the first takes a
-- transaction advisory lock (class 7316024) and the others return 'busy' at
-- once; a run is also skipped ('recent') when another finished less than
-- p_min_interval ago, so N hosts with the same interval make one run per
-- interval, not N.
--
-- price_history holds every change of products.price: the job's rows
-- (actor 'system', reason demand-raise / demand-lower, the inputs of the
-- decision, the run), and, through the trigger below, every other change:
-- a staff PATCH sets ecom.price_actor to the staff user's id in its own
-- statement (actor 'staff', actor_id), anything else (psql, an import) is
-- recorded as actor 'database'.

ALTER TABLE products
    ADD COLUMN price_floor   bigint,
    ADD COLUMN price_ceiling bigint,
    ADD CONSTRAINT products_price_bounds CHECK (
        (price_floor IS NULL) = (price_ceiling IS NULL)
        AND (price_floor IS NULL
             OR (price_floor >= 0 AND price_floor <= price
                 AND price <= price_ceiling)));

-- the job reads only the bounded products
CREATE INDEX products_bounded ON products (id) WHERE price_floor IS NOT NULL;

CREATE TABLE price_runs (
    id          bigserial PRIMARY KEY,
    source      text        NOT NULL CHECK (source IN ('watchdog', 'admin')),
    started_at  timestamptz NOT NULL,
    finished_at timestamptz NOT NULL,
    considered  integer     NOT NULL,
    raised      integer     NOT NULL,
    lowered     integer     NOT NULL
);
CREATE INDEX price_runs_finished ON price_runs (finished_at DESC);

CREATE TABLE price_history (
    id         bigserial PRIMARY KEY,
    product_id bigint      NOT NULL REFERENCES products (id) ON DELETE CASCADE,
    old_price  bigint      NOT NULL,
    new_price  bigint      NOT NULL,
    currency   text        NOT NULL,
    actor      text        NOT NULL CHECK (actor IN ('system', 'staff', 'database')),
    actor_id   bigint      REFERENCES users (id) ON DELETE SET NULL,
    reason     text        NOT NULL
               CHECK (reason IN ('demand-raise', 'demand-lower', 'manual')),
    inputs     jsonb,
    run_id     bigint      REFERENCES price_runs (id) ON DELETE SET NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
-- GET /products/{id}/price-history/: newest first, keyset on id
CREATE INDEX price_history_product ON price_history (product_id, id DESC);

-- Every change of a price that the job did not make itself (the job turns
-- this off for its own UPDATE and writes richer rows).
CREATE FUNCTION ecom_price_audit() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    v_actor text := current_setting('ecom.price_actor', true);
    v_staff boolean := coalesce(v_actor ~ '^[0-9]{1,18}$', false);
BEGIN
    IF current_setting('ecom.price_audit', true) = 'off' THEN
        RETURN NULL;
    END IF;
    INSERT INTO price_history (product_id, old_price, new_price, currency,
                               actor, actor_id, reason)
    VALUES (NEW.id, OLD.price, NEW.price, NEW.currency,
            CASE WHEN v_staff THEN 'staff' ELSE 'database' END,
            CASE WHEN v_staff THEN v_actor::bigint END, 'manual');
    RETURN NULL;
END
$$;

CREATE TRIGGER products_price_audit
    AFTER UPDATE OF price ON products
    FOR EACH ROW WHEN (OLD.price IS DISTINCT FROM NEW.price)
    EXECUTE FUNCTION ecom_price_audit();

-- What one run would do, product by product (the rule above); changes
-- nothing. scripts/ecom-admin reprice --dry-run prints it.
CREATE FUNCTION ecom_reprice_plan(p_window interval DEFAULT interval '7 days',
                                  p_low_days numeric DEFAULT 14,
                                  p_high_days numeric DEFAULT 60,
                                  p_step numeric DEFAULT 0.05)
RETURNS TABLE (product_id bigint, price bigint, new_price bigint,
               direction integer, step numeric, units bigint,
               velocity numeric, stock integer, cover_days numeric,
               rule text)
LANGUAGE sql STABLE AS $$
    WITH b AS (
        SELECT p.id, p.price, p.price_floor, p.price_ceiling, p.stock
          FROM products p
         WHERE p.price_floor IS NOT NULL AND p.active),
    -- the window's sales of every product, from the window's orders (not
    -- product by product: right after staff bound many products the
    -- statistics still say "none", and a per-product walk of order lines
    -- took seconds on the demo data)
    s AS (
        SELECT l.product_id, sum(l.quantity)::bigint AS units
          FROM orders o JOIN order_lines l ON l.order_id = o.id
         WHERE o.status IN ('paid', 'shipped', 'delivered')
           AND o.created_at >= now() - p_window
         GROUP BY l.product_id),
    d AS (
        SELECT b.*, coalesce(s.units, 0) AS units,
               coalesce(s.units, 0)
                   / (extract(epoch FROM p_window) / 86400)::numeric AS velocity
          FROM b LEFT JOIN s ON s.product_id = b.id),
    r AS (
        SELECT d.*,
               CASE WHEN d.velocity > 0 THEN d.stock / d.velocity END AS cover,
               CASE WHEN d.velocity > 0 AND d.stock / d.velocity < p_low_days
                    THEN 1
                    WHEN (d.velocity = 0 AND d.stock > 0)
                      OR (d.velocity > 0 AND d.stock / d.velocity > p_high_days)
                    THEN -1
                    ELSE 0 END AS dir
          FROM d),
    n AS (
        SELECT r.*,
               least(greatest(r.price + r.dir * floor(r.price * p_step)::bigint,
                              r.price_floor), r.price_ceiling) AS np
          FROM r)
    SELECT n.id, n.price, n.np, n.dir, p_step, n.units,
           round(n.velocity, 3), n.stock, round(n.cover, 1),
           CASE WHEN n.dir = 0 THEN 'hold'
                WHEN n.dir > 0 AND n.price = n.price_ceiling THEN 'at-ceiling'
                WHEN n.dir < 0 AND n.price = n.price_floor THEN 'at-floor'
                WHEN n.np = n.price THEN 'step-too-small'
                WHEN n.dir > 0 THEN 'raise'
                ELSE 'lower' END
      FROM n
     ORDER BY n.id
$$;

-- One run. status: 'done' (run_id set), 'dry-run' (nothing written),
-- 'busy' (another run holds the lock), 'recent' (a run finished less than
-- p_min_interval ago). Counts: bounded active products considered, prices
-- raised, lowered.
CREATE FUNCTION ecom_reprice(p_trigger text,
                             p_min_interval interval DEFAULT interval '0',
                             p_dry_run boolean DEFAULT false)
RETURNS TABLE (status text, run_id bigint, considered integer,
               raised integer, lowered integer)
LANGUAGE plpgsql AS $$
DECLARE
    v_started timestamptz := clock_timestamp();
    v_considered integer;
    v_ids bigint[];
    v_dirs integer[];
    v_steps numeric[];
    v_inputs jsonb[];
    v_run bigint;
    v_raised integer;
    v_lowered integer;
BEGIN
    IF NOT pg_try_advisory_xact_lock(7316024) THEN
        RETURN QUERY SELECT 'busy'::text, NULL::bigint, 0, 0, 0;
        RETURN;
    END IF;
    IF NOT p_dry_run AND p_min_interval > interval '0' AND EXISTS (
           SELECT 1 FROM price_runs
            WHERE finished_at > clock_timestamp() - p_min_interval) THEN
        RETURN QUERY SELECT 'recent'::text, NULL::bigint, 0, 0, 0;
        RETURN;
    END IF;
    IF p_dry_run THEN
        RETURN QUERY
        SELECT 'dry-run'::text, NULL::bigint, count(*)::integer,
               (count(*) FILTER (WHERE pl.new_price > pl.price))::integer,
               (count(*) FILTER (WHERE pl.new_price < pl.price))::integer
          FROM ecom_reprice_plan() pl;
        RETURN;
    END IF;
    SELECT count(*) INTO v_considered
      FROM products WHERE price_floor IS NOT NULL AND active;
    -- the plan, then a lock on every product that moves, in id order
    -- (by primary key: never a plan that depends on fresh statistics, as
    -- right after staff set the bounds of many products)
    SELECT coalesce(array_agg(pl.product_id ORDER BY pl.product_id), '{}'),
           coalesce(array_agg(pl.direction ORDER BY pl.product_id), '{}'),
           coalesce(array_agg(pl.step ORDER BY pl.product_id), '{}'),
           coalesce(array_agg(jsonb_build_object('units', pl.units,
                                                 'window_days', 7,
                                                 'velocity', pl.velocity,
                                                 'stock', pl.stock,
                                                 'cover_days', pl.cover_days,
                                                 'rule', pl.rule)
                              ORDER BY pl.product_id), '{}')
      INTO v_ids, v_dirs, v_steps, v_inputs
      FROM ecom_reprice_plan() pl
     WHERE pl.new_price <> pl.price;
    PERFORM 1 FROM products WHERE id = ANY (v_ids) ORDER BY id FOR UPDATE;
    INSERT INTO price_runs (source, started_at, finished_at, considered,
                            raised, lowered)
    VALUES (p_trigger, v_started, clock_timestamp(), v_considered, 0, 0)
    RETURNING id INTO v_run;
    -- the job's own rows are richer than the trigger's
    PERFORM set_config('ecom.price_audit', 'off', true);
    WITH pl AS (
        SELECT * FROM unnest(v_ids, v_dirs, v_steps, v_inputs)
                   AS u(id, dir, step, inputs)),
    cur AS (
        -- the locked rows as they are now (a staff change may have come
        -- between the plan and the lock: the step applies to this price)
        SELECT p.id, p.price, p.price_floor, p.price_ceiling, p.currency,
               least(greatest(p.price + pl.dir * floor(p.price * pl.step)::bigint,
                              p.price_floor), p.price_ceiling) AS np,
               pl.inputs
          FROM products p JOIN pl ON pl.id = p.id
         WHERE p.price_floor IS NOT NULL),
    up AS (
        UPDATE products p SET price = cur.np, updated_at = now()
          FROM cur
         WHERE p.id = cur.id AND cur.np <> cur.price
        RETURNING p.id, cur.price AS old_price, p.price AS new_price,
                  p.currency, cur.inputs),
    ins AS (
        INSERT INTO price_history (product_id, old_price, new_price, currency,
                                   actor, reason, inputs, run_id)
        SELECT up.id, up.old_price, up.new_price, up.currency, 'system',
               CASE WHEN up.new_price > up.old_price THEN 'demand-raise'
                    ELSE 'demand-lower' END,
               up.inputs, v_run
          FROM up)
    SELECT (count(*) FILTER (WHERE up.new_price > up.old_price))::integer,
           (count(*) FILTER (WHERE up.new_price < up.old_price))::integer
      INTO v_raised, v_lowered
      FROM up;
    PERFORM set_config('ecom.price_audit', 'on', true);
    UPDATE price_runs
       SET finished_at = clock_timestamp(), raised = v_raised,
           lowered = v_lowered
     WHERE id = v_run;
    RETURN QUERY SELECT 'done'::text, v_run, v_considered, v_raised, v_lowered;
END
$$;
