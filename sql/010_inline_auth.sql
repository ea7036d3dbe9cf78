-- 010: the caller's token resolved inside the statement (issue 7, "double
-- the orders per second", round 3). POST /cart/ and POST /orders/ were two
-- round trips each: the token's lookup (ecom_auth.c), then the statement.
-- Without an Idempotency-Key (whose record is keyed by the user, so the
-- user must be known first) the module now sends the token's SHA-256 with
-- the statement instead, and the function looks it up in the same
-- transaction, with the same rule as ecom_token_user: not revoked, not
-- expired. The answer tells the module who the caller is (a user_id
-- column) or that the token resolved to no one (the module then answers
-- the same 401 as before, and nothing was written).
--
-- ecom_cart_add_as and ecom_checkout_as are ecom_cart_add (006) and
-- ecom_checkout (008) with that first step (ecom_account_lock, which takes
-- the account's lock too), taking either p_user (the
-- caller is known: an Idempotency-Key request) or p_token (the hash), and
-- a last column user_id:
--   * ecom_cart_add_as: the line and user_id; one row with only user_id
--     when a guard refused the add (the module then asks ecom_cart_why);
--     one row of NULLs when the token resolved to no one;
--   * ecom_checkout_as: ecom_checkout's rows with user_id; one row with the
--     outcome 'unauthorized' when the token resolved to no one.
-- The old functions stay for a module of the previous release during a
-- rolling upgrade, now as thin wrappers over the new ones.
--
-- One more change in both: one account's cart adds and checkouts are kept
-- one at a time by a transaction advisory lock on (7316002, user id mod
-- 2^31) instead of the user's row FOR NO KEY UPDATE. Same order of events
-- (the lock first, then statements whose snapshots are taken after it),
-- but no tuple lock is written to the users table: under load every
-- account's lock took an exclusive lock on the same few heap pages and
-- wrote a WAL record. Two accounts whose ids are equal mod 2^31 merely
-- wait for each other. Whatever must exclude an account's adds and
-- checkouts (closing the account, say) takes the same lock.
--
-- And both run with enable_bitmapscan off. cart_items churns: every
-- checkout deletes the lines it ordered, so one account's index entries
-- are mostly dead ones until vacuum comes. A plain index scan marks the
-- dead entries it passes (the next scan skips them); a bitmap scan, which
-- the generic plan picks for "the lines of user $1" whenever the
-- statistics promise more than a few, never does, and visits them all
-- again on every call (about 8 % of the mix's orders/s, measured).

-- The caller of an account's cart add or checkout, and the account's lock,
-- in one place for both functions below: p_user, or the user the token's
-- SHA-256 p_token belongs to by the rule of ecom_token_user
-- (mod_ecom/ecom_auth.c: not revoked, not expired), returned after taking
-- the account's transaction advisory lock (class 7316002, the user id below
-- 2^31), which writes no row and shares no page with other accounts,
-- unlike the user row lock it replaces (006, 008: every account's row lock
-- took the same few heap pages exclusively, and wrote WAL). NULL, and no
-- lock, when the token resolves to no one. PL/pgSQL, not SQL: a SQL
-- function called from PL/pgSQL is planned again on every call, a PL/pgSQL
-- function keeps its statement's plan. The caller's next statement takes
-- its snapshot after the lock (each statement of a volatile PL/pgSQL
-- function takes a new one under READ COMMITTED).
CREATE FUNCTION ecom_account_lock(p_user bigint, p_token text)
RETURNS bigint
LANGUAGE plpgsql AS $$
BEGIN
    IF p_user IS NULL THEN
        SELECT t.user_id INTO p_user FROM auth_tokens t
         WHERE t.token_hash = p_token AND t.revoked_at IS NULL
           AND t.expires_at > now();
        IF p_user IS NULL THEN
            RETURN NULL;
        END IF;
    END IF;
    PERFORM pg_advisory_xact_lock(7316002, (p_user % 2147483648)::int);
    RETURN p_user;
END $$;

CREATE FUNCTION ecom_cart_add_as(p_user bigint, p_token text,
                                 p_product bigint, p_qty int,
                                 p_max_lines int, p_max_qty int)
RETURNS TABLE (id bigint, product_id bigint, name text, quantity int,
               unit_price bigint, line_total bigint, currency text,
               user_id bigint)
LANGUAGE plpgsql
-- plain index scans only (see the top)
SET enable_bitmapscan = off
AS $$
#variable_conflict use_column
BEGIN
    p_user := ecom_account_lock(p_user, p_token);
    IF p_user IS NULL THEN
        RETURN NEXT;
        RETURN;
    END IF;
    RETURN QUERY
    WITH p AS (SELECT pr.id, pr.name, pr.price, pr.stock, pr.currency
                 FROM products pr WHERE pr.id = p_product AND pr.active),
    ins AS (INSERT INTO cart_items AS ci (user_id, product_id, quantity)
            SELECT p_user, p.id, p_qty FROM p
             WHERE p_qty <= p.stock
               AND ((SELECT count(*) FROM cart_items c3 WHERE c3.user_id = p_user) < p_max_lines
                    OR EXISTS (SELECT 1 FROM cart_items c4
                                WHERE c4.user_id = p_user AND c4.product_id = p.id))
               AND NOT EXISTS (SELECT 1 FROM cart_items c2 WHERE c2.user_id = p_user
                                  AND (SELECT p2.currency FROM products p2
                                        WHERE p2.id = c2.product_id) <> p.currency)
            ON CONFLICT (user_id, product_id) DO UPDATE
            SET quantity = ci.quantity + EXCLUDED.quantity
            WHERE ci.quantity::bigint + EXCLUDED.quantity
                  <= LEAST(p_max_qty, (SELECT p3.stock FROM products p3
                                        WHERE p3.id = EXCLUDED.product_id))
            RETURNING ci.id, ci.quantity)
    SELECT ins.id, p.id, p.name, ins.quantity, p.price, p.price * ins.quantity,
           p.currency, p_user
      FROM ins, p;
    IF NOT FOUND THEN
        user_id := p_user;
        RETURN NEXT;
    END IF;
END $$;

CREATE FUNCTION ecom_checkout_as(p_user bigint, p_token text, p_cap int,
                                 p_expected bigint, p_address jsonb)
RETURNS TABLE (outcome text, order_id bigint, id bigint, product_id bigint,
               sku text, name text, unit_price bigint, quantity int,
               line_total bigint, n bigint, currency text, total bigint,
               sold_out bigint, created_at timestamptz,
               updated_at timestamptz, user_id bigint)
LANGUAGE plpgsql
-- plain index scans only (see the top)
SET enable_bitmapscan = off
AS $$
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
    p_user := ecom_account_lock(p_user, p_token);
    IF p_user IS NULL THEN
        outcome := 'unauthorized';
        RETURN NEXT;
        RETURN;
    END IF;
    user_id := p_user;
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
            NULL::timestamptz, p_user
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
           v_total::bigint, v_sold, v_created, v_updated, p_user
      FROM w ORDER BY w.id;
END $$;

CREATE OR REPLACE FUNCTION ecom_cart_add(p_user bigint, p_product bigint,
                                         p_qty int, p_max_lines int,
                                         p_max_qty int)
RETURNS TABLE (id bigint, product_id bigint, name text, quantity int,
               unit_price bigint, line_total bigint, currency text)
LANGUAGE sql AS $$
    SELECT a.id, a.product_id, a.name, a.quantity, a.unit_price,
           a.line_total, a.currency
      FROM ecom_cart_add_as(p_user, NULL, p_product, p_qty, p_max_lines,
                            p_max_qty) a
     WHERE a.id IS NOT NULL
$$;

CREATE OR REPLACE FUNCTION ecom_checkout(p_user bigint, p_cap int,
                                         p_expected bigint, p_address jsonb)
RETURNS TABLE (outcome text, order_id bigint, id bigint, product_id bigint,
               sku text, name text, unit_price bigint, quantity int,
               line_total bigint, n bigint, currency text, total bigint,
               sold_out bigint, created_at timestamptz,
               updated_at timestamptz)
LANGUAGE sql AS $$
    SELECT c.outcome, c.order_id, c.id, c.product_id, c.sku, c.name,
           c.unit_price, c.quantity, c.line_total, c.n, c.currency, c.total,
           c.sold_out, c.created_at, c.updated_at
      FROM ecom_checkout_as(p_user, NULL, p_cap, p_expected, p_address) c
$$;
