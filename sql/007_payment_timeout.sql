-- 007: abandoned orders (issue 7). A pending order not paid within
-- EcomPaymentTimeout is cancelled by the module itself (mod_watchdog,
-- ecom_db_expire_orders in mod_ecom/ecom_db.c), restocked, with an order
-- event of actor 'system'.
--
-- One call is one transaction over at most p_batch orders, so a backlog is
-- worked off in short transactions that never hold many locks for long.
-- Any number of httpd processes or hosts may call it at the same moment:
--   * orders are taken FOR UPDATE SKIP LOCKED: two runs never take the same
--     order, and an order whose row someone else holds (a payment, which
--     locks it FOR UPDATE and requires 'pending'; a cancel) is left to
--     them and looked at again next time;
--   * the move is conditional (status = 'pending') and the restock adds
--     exactly the lines of the orders that moved, so an order is cancelled
--     and restocked once;
--   * products are locked in ascending id order before the restock, the
--     order checkout locks them in, so expiry and checkout cannot deadlock.
-- A 'processing' payment (tok_async) does not stop the expiry: a late
-- payment.succeeded for a cancelled order is refunded by the webhook code.
-- Returns how many orders it cancelled.
CREATE FUNCTION ecom_expire_pending_orders(p_timeout_secs int, p_batch int)
RETURNS int LANGUAGE plpgsql AS $$
DECLARE
    due bigint[];
    n   int;
BEGIN
    SELECT array_agg(id) INTO due FROM (
        SELECT id FROM orders
         WHERE status = 'pending'
           AND created_at < now() - make_interval(secs => p_timeout_secs)
         ORDER BY created_at, id
         LIMIT p_batch
           FOR UPDATE SKIP LOCKED) d;
    IF due IS NULL THEN
        RETURN 0;
    END IF;
    PERFORM 1 FROM products
      WHERE id IN (SELECT product_id FROM order_lines WHERE order_id = ANY (due))
      ORDER BY id FOR NO KEY UPDATE;
    WITH moved AS (
        UPDATE orders SET status = 'cancelled', restocked_at = now(),
                          updated_at = now()
         WHERE id = ANY (due) AND status = 'pending'
        RETURNING id),
    ev AS (
        INSERT INTO order_events (order_id, actor_id, from_status, to_status, actor)
        SELECT id, NULL, 'pending', 'cancelled', 'system' FROM moved),
    back AS (
        UPDATE products p SET stock = p.stock + l.qty, updated_at = now()
          FROM (SELECT ol.product_id, sum(ol.quantity) AS qty
                  FROM order_lines ol JOIN moved ON moved.id = ol.order_id
                 WHERE ol.product_id IS NOT NULL
                 GROUP BY ol.product_id) l
         WHERE p.id = l.product_id)
    SELECT count(*) INTO n FROM moved;
    RETURN n;
END $$;
