-- 008: the whole checkout in one statement (issue 7, "double the orders per
-- second", round 2). POST /orders/ was BEGIN, ecom_checkout_lock, the order
-- insert, the write of lines, stock, event and cart, COMMIT: five round
-- trips, each an executor start-up and a wake-up on both sides. Now it is
-- one call of ecom_checkout, which does all of it inside PostgreSQL and
-- returns either the order as written or what refused it. Without an
-- Idempotency-Key the call is its own transaction (no BEGIN, no COMMIT);
-- inside the Idempotency-Key transaction it simply runs in it.
--
-- Every guarantee of the previous checkout is kept, in the same order:
--   * the user's row first (one account's checkouts and cart adds run one
--     at a time, so the count of pending orders is exact), then, in a
--     statement whose snapshot is taken after that lock (a volatile
--     PL/pgSQL function takes a new snapshot per statement under READ
--     COMMITTED), the cart lines and their products FOR NO KEY UPDATE in
--     ascending product id order (LockRows above the sort): two checkouts
--     sharing products cannot deadlock, and expiry, cancel and refunds lock
--     products in the same order;
--   * the checks, before anything is written, in the order the module
--     answered them: an empty cart ('empty', 422), mixed currencies
--     ('currencies', 409), the cap of pending orders ('pending', 409, with
--     the count, counted up to p_cap only; none when p_cap is 0), products
--     short of stock or inactive ('stock', 409, one row per product in id
--     order with the quantity requested and available), a total beyond a
--     bigint ('overflow', 409; computed in numeric, never an error), and
--     the client's expected_total ('total', 409, with the total). A refusal
--     writes nothing: the call returns its rows and ends;
--   * the writes work on the locked set only (arrays read by the locking
--     statement, never a fresh read of the cart, so a line added meanwhile
--     stays in the cart): the order with its address snapshot, the first
--     order event, the conditional stock decrement (stock >= quantity) and
--     the deletion of exactly the ordered cart lines in one statement, then
--     the lines with price snapshots of the locked rows. If the decrement
--     or the deletion ever touched fewer rows than the locked set (it
--     cannot while the rows are locked) the call raises, and the whole
--     statement, order included, is rolled back: nothing is oversold.
-- On success it returns one 'ok' row per line as written (id, product_id,
-- sku, name, unit_price, quantity, line_total) with, on every row, the
-- order's id, currency, total, times and the count of products whose stock
-- it took to 0 (their in_stock changed: the module invalidates cached
-- catalog pages). The module builds the 201 answer from them
-- (t/38-checkout-answer.t keeps it equal to GET /orders/{id}/).
--
-- ecom_checkout_lock (006) stays for a module of the previous version
-- running against this schema during an upgrade.
CREATE FUNCTION ecom_checkout(p_user bigint, p_cap int, p_expected bigint,
                              p_address jsonb)
RETURNS TABLE (outcome text, order_id bigint, id bigint, product_id bigint,
               sku text, name text, unit_price bigint, quantity int,
               line_total bigint, n bigint, currency text, total bigint,
               sold_out bigint, created_at timestamptz,
               updated_at timestamptz)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    v_pids    bigint[];
    v_qtys    int[];
    v_ids     bigint[];
    v_names   text[];
    v_avail   bigint[];
    v_ncur    bigint;
    v_cur     text;
    v_total   numeric;
    v_short   boolean;
    v_pending bigint;
    v_order   bigint;
    v_created timestamptz;
    v_updated timestamptz;
    v_taken   bigint;
    v_sold    bigint;
    v_cleared bigint;
    v_lines   int;
BEGIN
    PERFORM 1 FROM users u WHERE u.id = p_user FOR NO KEY UPDATE;
    SELECT array_agg(l.pid ORDER BY l.pid), array_agg(l.qty ORDER BY l.pid),
           array_agg(l.line_id ORDER BY l.pid),
           array_agg(l.pname ORDER BY l.pid),
           array_agg(CASE WHEN l.active THEN l.stock ELSE 0 END
                     ORDER BY l.pid),
           count(DISTINCT l.cur), min(l.cur),
           sum(l.price::numeric * l.qty),
           bool_or(NOT l.active OR l.stock < l.qty)
      INTO v_pids, v_qtys, v_ids, v_names, v_avail, v_ncur, v_cur, v_total,
           v_short
      FROM (SELECT p.id AS pid, p.name AS pname, p.stock, p.active, p.price,
                   p.currency AS cur, ci.quantity AS qty, ci.id AS line_id
              FROM products p
              JOIN cart_items ci ON ci.product_id = p.id
                                AND ci.user_id = p_user
             WHERE p.id = ANY (ARRAY(SELECT c.product_id FROM cart_items c
                                      WHERE c.user_id = p_user))
             ORDER BY p.id
               FOR NO KEY UPDATE OF p, ci) l;
    v_lines := coalesce(cardinality(v_pids), 0);
    IF v_lines = 0 THEN
        outcome := 'empty';
        RETURN NEXT;
        RETURN;
    END IF;
    IF v_ncur > 1 THEN
        outcome := 'currencies';
        RETURN NEXT;
        RETURN;
    END IF;
    IF p_cap > 0 THEN
        SELECT count(*) INTO v_pending
          FROM (SELECT 1 FROM orders o
                 WHERE o.user_id = p_user AND o.status = 'pending'
                 LIMIT p_cap) c;
        IF v_pending >= p_cap THEN
            outcome := 'pending'; n := v_pending;
            RETURN NEXT;
            RETURN;
        END IF;
    END IF;
    IF v_short THEN
        RETURN QUERY SELECT 'stock'::text, NULL::bigint, NULL::bigint, s.pid,
            NULL::text, s.pname, NULL::bigint, s.qty, NULL::bigint, s.avail,
            NULL::text, NULL::bigint, NULL::bigint, NULL::timestamptz,
            NULL::timestamptz
          FROM unnest(v_pids, v_names, v_qtys, v_avail)
               WITH ORDINALITY AS s(pid, pname, qty, avail, i)
         WHERE s.avail < s.qty
         ORDER BY s.i;
        RETURN;
    END IF;
    IF v_total > 9223372036854775807 THEN
        outcome := 'overflow';
        RETURN NEXT;
        RETURN;
    END IF;
    IF p_expected IS NOT NULL AND p_expected <> v_total THEN
        outcome := 'total'; n := v_total::bigint; currency := v_cur;
        RETURN NEXT;
        RETURN;
    END IF;
    -- the order, its first event, the stock and the cart: one statement
    WITH o AS (INSERT INTO orders AS o (user_id, currency, subtotal, discount,
                                       total, shipping_address)
               VALUES (p_user, v_cur, v_total::bigint, 0, v_total::bigint,
                       p_address)
               RETURNING o.id, o.created_at, o.updated_at),
    ev AS (INSERT INTO order_events (order_id, actor_id, from_status,
                                     to_status)
           SELECT o.id, p_user, NULL, 'pending' FROM o),
    taken AS (UPDATE products p SET stock = p.stock - l.qty,
                                    updated_at = now()
                FROM unnest(v_pids, v_qtys) AS l(pid, qty)
               WHERE p.id = l.pid AND p.stock >= l.qty
              RETURNING p.stock),
    cleared AS (DELETE FROM cart_items ci
                 WHERE ci.user_id = p_user AND ci.id = ANY (v_ids)
                RETURNING 1)
    SELECT o.id, o.created_at, o.updated_at,
           (SELECT count(*) FROM taken),
           (SELECT count(*) FROM taken t WHERE t.stock = 0),
           (SELECT count(*) FROM cleared)
      INTO v_order, v_created, v_updated, v_taken, v_sold, v_cleared
      FROM o;
    IF v_taken <> v_lines OR v_cleared <> v_lines THEN
        RAISE EXCEPTION 'ecom_checkout: % of % lines taken, % cleared',
            v_taken, v_lines, v_cleared;
    END IF;
    RETURN QUERY
    WITH w AS (INSERT INTO order_lines AS ol (order_id, product_id, sku,
                                             name, unit_price, quantity,
                                             line_total)
               SELECT v_order, p.id, p.sku, p.name, p.price, l.qty,
                      p.price * l.qty
                 FROM unnest(v_pids, v_qtys) AS l(pid, qty)
                 JOIN products p ON p.id = l.pid
                ORDER BY p.id
               RETURNING ol.id, ol.product_id, ol.sku, ol.name,
                         ol.unit_price, ol.quantity, ol.line_total)
    SELECT 'ok'::text, v_order, w.id, w.product_id, w.sku, w.name,
           w.unit_price, w.quantity, w.line_total, NULL::bigint, v_cur,
           v_total::bigint, v_sold, v_created, v_updated
      FROM w ORDER BY w.id;
END $$;
