-- 025: each product's current sale materialised on its row (issue 10,
-- "within 10 %": "prices are computed in SQL, not by extra queries per
-- row").
--
-- Why: sql/023 computed the sale of every listed row with ecom_sale, a
-- LATERAL aggregate over every live rule (plus an EXISTS per product-scoped
-- rule). With the 71 rules of sql/demo/bench-pricing-rules.sql that halved
-- the uncached list (make bench, scenario pricing: 0.51 of the plain rate,
-- sort=price 0.50). Now the list and the product detail read four columns
-- of the row they already read, and the effective price is a CASE on now()
-- (ecom_price_now, inlined): the list costs what it cost before sales.
--
-- What is stored: the rule that wins for the product NOW (ecom_sale's
-- choice: priority, then percent_off, then the newest), its percent_off and
-- its window. The columns are not indexed, so stock and price updates stay
-- HOT. The stored state is kept exact by:
--   * every rule write (INSERT, UPDATE, DELETE of pricing_rules and of
--     pricing_rule_products, by the API, psql or a cascade), in its own
--     transaction, through the triggers below: the products the old and
--     the new rule cover are recomputed when either is live now (a past
--     or future rule changes nothing now: writing one costs nothing);
--   * the inserts of products and the changes of a product's category
--     (trigger);
--   * the edges of windows: a sale that ends is exact on its own (the CASE
--     reads sale_ends_at: the list price at ends_at, with no job), but a
--     rule that starts later, or a lower-priority rule that takes over when
--     a higher one ends, needs a recompute at that time: ecom_sale_edges(),
--     run by mod_watchdog every EcomSaleEdgeInterval seconds (default 30),
--     recomputes the products of the rules whose starts_at or ends_at was
--     passed since its last run (minus one minute of overlap, so that a
--     rule committed by a transaction that started before the job's last
--     run is not missed; a recompute writes only rows that change).
-- Measured (README, "Tuning"; make bench, scenario pricing): the list with
-- the 71 bench rules went from 0.51 to 0.90..1.07 of its rate without
-- rules. The cost moved to the writes of live rules, in proportion to the
-- products covered: a storewide rule took 0.15 s on the demo's 3,808
-- products, 8.9 s on 103,808 and 90..114 s on 1,003,808 (every product row
-- rewritten, locked until commit).
--
-- So the list and the detail may differ from the exact rule for at most
-- EcomSaleEdgeInterval seconds after a rule starts, or after a rule ends
-- while another one covers the product (they show the list price then).
-- The cart and the checkout keep the exact ecom_sale (a few rows): they are
-- exact at every boundary, and a client that checked out at a total it was
-- shown gets 409 price-changed (expected_total) when it differs.
ALTER TABLE products
    ADD COLUMN sale_rule_id   bigint,
    ADD COLUMN sale_percent   integer,
    ADD COLUMN sale_starts_at timestamptz,
    ADD COLUMN sale_ends_at   timestamptz;

-- the job's range scan of the edges passed (ends_at has sql/023's index)
CREATE INDEX pricing_rules_starts ON pricing_rules (starts_at);

-- The winning rule now for a product, with its window (NULLs: none).
CREATE FUNCTION ecom_sale_of(p_product bigint, p_category bigint)
RETURNS TABLE (rule_id bigint, percent_off integer,
               starts_at timestamptz, ends_at timestamptz)
LANGUAGE sql STABLE AS $$
    SELECT r.id, r.percent_off, r.starts_at, r.ends_at
      FROM ecom_sale(p_product, p_category) s
      JOIN pricing_rules r ON r.id = s.rule_id
$$;

-- THE effective price of a products row, for the list and the detail:
-- the stored sale inside its window (starts_at inclusive, ends_at
-- exclusive), the list price outside. LANGUAGE sql: inlined.
CREATE FUNCTION ecom_price_now(p_price bigint, p_percent integer,
                               p_starts timestamptz, p_ends timestamptz)
RETURNS bigint LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN now() >= p_starts AND now() < p_ends
                THEN ecom_sale_price(p_price, p_percent)
                ELSE p_price END
$$;

-- When the stored sale ends, if it applies now (NULL otherwise).
CREATE FUNCTION ecom_sale_ends_now(p_starts timestamptz, p_ends timestamptz)
RETURNS timestamptz LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN now() >= p_starts AND now() < p_ends THEN p_ends END
$$;

-- Recomputes the stored sale of the products a rule covers (p_all: every
-- product; else those of the categories p_categories and the ids
-- p_products); writes only the rows whose sale changes, locked first in
-- id order (the order the checkout and sql/024's ecom_reprice lock
-- products in: a rule write and a checkout never deadlock). Returns how
-- many.
CREATE FUNCTION ecom_sale_refresh(p_all boolean, p_categories bigint[],
                                  p_products bigint[])
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    n bigint;
BEGIN
    UPDATE products p
       SET sale_rule_id = x.rule_id, sale_percent = x.percent_off,
           sale_starts_at = x.starts_at, sale_ends_at = x.ends_at
      FROM (SELECT q.id, s.rule_id, s.percent_off, s.starts_at, s.ends_at
              FROM products q
              LEFT JOIN LATERAL ecom_sale_of(q.id, q.category_id) s ON true
             WHERE (p_all OR q.category_id = ANY (p_categories)
                    OR q.id = ANY (p_products))
               AND (q.sale_rule_id, q.sale_percent, q.sale_starts_at,
                    q.sale_ends_at)
                   IS DISTINCT FROM (s.rule_id, s.percent_off, s.starts_at,
                                     s.ends_at)
             ORDER BY q.id
               FOR NO KEY UPDATE OF q) x
     WHERE p.id = x.id;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END $$;

-- The products rule r covers (its scope), recomputed.
CREATE FUNCTION ecom_sale_refresh_rule(r pricing_rules)
RETURNS bigint LANGUAGE sql AS $$
    SELECT ecom_sale_refresh(r.scope = 'all',
        CASE WHEN r.scope = 'category' THEN r.category_ids ELSE '{}' END,
        CASE WHEN r.scope = 'products'
             THEN ARRAY(SELECT rp.product_id FROM pricing_rule_products rp
                         WHERE rp.rule_id = r.id)
             ELSE '{}' END)
$$;

-- Rule writes: the products of the old and the new rule, when live now.
CREATE FUNCTION ecom_sale_rule_trigger() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'INSERT' AND OLD.starts_at <= now() AND OLD.ends_at > now()
    THEN
        PERFORM ecom_sale_refresh_rule(OLD);
    END IF;
    IF TG_OP <> 'DELETE' AND NEW.starts_at <= now() AND NEW.ends_at > now()
    THEN
        PERFORM ecom_sale_refresh_rule(NEW);
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER pricing_rules_sale AFTER INSERT OR UPDATE OR DELETE
    ON pricing_rules FOR EACH ROW EXECUTE FUNCTION ecom_sale_rule_trigger();

-- A product-scoped rule's products (written after its row): the product.
CREATE FUNCTION ecom_sale_rule_product_trigger() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    v_pid bigint := CASE WHEN TG_OP = 'DELETE' THEN OLD.product_id
                         ELSE NEW.product_id END;
BEGIN
    PERFORM ecom_sale_refresh(false, '{}', ARRAY[v_pid]);
    RETURN NULL;
END $$;
CREATE TRIGGER pricing_rule_products_sale AFTER INSERT OR DELETE
    ON pricing_rule_products FOR EACH ROW
    EXECUTE FUNCTION ecom_sale_rule_product_trigger();

-- A product inserted, or moved to another category, gets its sale. Only
-- UPDATE OF category_id: stock and price writes do not fire it.
CREATE FUNCTION ecom_sale_product_trigger() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.category_id IS NOT DISTINCT FROM OLD.category_id
    THEN
        RETURN NEW;
    END IF;
    SELECT s.rule_id, s.percent_off, s.starts_at, s.ends_at
      INTO NEW.sale_rule_id, NEW.sale_percent, NEW.sale_starts_at,
           NEW.sale_ends_at
      FROM (SELECT 1) one
      LEFT JOIN LATERAL ecom_sale_of(NEW.id, NEW.category_id) s ON true;
    RETURN NEW;
END $$;
CREATE TRIGGER products_sale BEFORE INSERT OR UPDATE OF category_id
    ON products FOR EACH ROW EXECUTE FUNCTION ecom_sale_product_trigger();

-- The window edges (see the top): when the job last ran.
CREATE TABLE sale_edge_runs (
    one     boolean     PRIMARY KEY DEFAULT true CHECK (one),
    last_at timestamptz NOT NULL
);
INSERT INTO sale_edge_runs (one, last_at) VALUES (true, now());

-- One run: 'busy' when another holds the lock (class 7316025, as sql/024's
-- 7316024), else 'done' with the rules whose edge was passed and the
-- products whose stored sale changed, in one transaction.
CREATE FUNCTION ecom_sale_edges()
RETURNS TABLE (status text, rules integer, products bigint)
LANGUAGE plpgsql AS $$
DECLARE
    v_last timestamptz;
    r      pricing_rules;
BEGIN
    rules := 0;
    products := 0;
    IF NOT pg_try_advisory_xact_lock(7316025, 0) THEN
        status := 'busy';
        RETURN NEXT;
        RETURN;
    END IF;
    SELECT e.last_at - interval '1 minute' INTO v_last FROM sale_edge_runs e;
    FOR r IN SELECT * FROM pricing_rules pr
              WHERE (pr.starts_at > v_last AND pr.starts_at <= now())
                 OR (pr.ends_at > v_last AND pr.ends_at <= now())
              ORDER BY pr.id
    LOOP
        rules := rules + 1;
        products := products + ecom_sale_refresh_rule(r);
    END LOOP;
    UPDATE sale_edge_runs SET last_at = now();
    status := 'done';
    RETURN NEXT;
END $$;

-- the products as they are now
SELECT ecom_sale_refresh(true, '{}', '{}');
