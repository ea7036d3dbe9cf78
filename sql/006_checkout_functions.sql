-- 006: fewer round trips for a cart add and a checkout (issue 7, "double the
-- orders per second"). Each function is one statement for the module (one
-- round trip) that runs two statements inside PostgreSQL: first it locks
-- the user's row, then it does the work in a statement whose snapshot is
-- taken after that lock (a volatile PL/pgSQL function takes a new snapshot
-- per statement under READ COMMITTED). One statement could not do both: its
-- single snapshot would be taken before it waited for the lock, and would
-- miss what the previous holder committed.
--
-- Product rows are found by key, never through a join whose plan depends on
-- the estimated size of one user's cart: under churn a generic plan's
-- estimate grows with the dead cart lines until a hash join over the whole
-- catalog looks cheaper (a millisecond per call on the demo catalog).

-- POST /cart/ (mod_ecom/ecom_cart.c): serialises one user's adds, then one
-- upsert guarded so that the line never exceeds the stock nor p_max_qty,
-- the cart never exceeds p_max_lines lines, and every line has one
-- currency. Returns the line (the cart's LINE_COLS), or no row when a
-- guard refused it (the module then asks ecom_cart_why). Outside a
-- transaction the lock ends with the call; inside one (an Idempotency-Key
-- request) it is held to the end, as before.
CREATE FUNCTION ecom_cart_add(p_user bigint, p_product bigint, p_qty int,
                              p_max_lines int, p_max_qty int)
RETURNS TABLE (id bigint, product_id bigint, name text, quantity int,
               unit_price bigint, line_total bigint, currency text)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
BEGIN
    PERFORM 1 FROM users u WHERE u.id = p_user FOR NO KEY UPDATE;
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
           p.currency
      FROM ins, p;
END $$;

-- POST /orders/ (mod_ecom/ecom_orders.c), inside the checkout's
-- transaction: locks the user's row (one account's checkouts run one at a
-- time), then the cart lines and their products FOR NO KEY UPDATE in
-- ascending product id order (LockRows above the sort), and returns them
-- with the account's count of pending orders on every row, exact because
-- it is read after the user's lock (EcomMaxPendingOrders): counted up to
-- p_cap only, so an account with many pending orders in a server without
-- a cap (p_cap 0) costs nothing.
CREATE FUNCTION ecom_checkout_lock(p_user bigint, p_cap int)
RETURNS TABLE (product_id bigint, name text, stock int, active boolean,
               price bigint, currency text, quantity int, line_id bigint,
               pending bigint)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
BEGIN
    PERFORM 1 FROM users u WHERE u.id = p_user FOR NO KEY UPDATE;
    RETURN QUERY
    SELECT p.id, p.name, p.stock, p.active, p.price, p.currency, ci.quantity,
           ci.id, (SELECT count(*) FROM (SELECT 1 FROM orders o
                    WHERE o.user_id = p_user AND o.status = 'pending'
                    LIMIT p_cap) c)
      FROM products p
      JOIN cart_items ci ON ci.product_id = p.id AND ci.user_id = p_user
     WHERE p.id = ANY (ARRAY(SELECT c.product_id FROM cart_items c
                              WHERE c.user_id = p_user))
     ORDER BY p.id
       FOR NO KEY UPDATE OF p, ci;
END $$;
