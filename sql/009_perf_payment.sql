-- 009: paying an order in fewer round trips (issue 7, round 2). A payment
-- was BEGIN, the order's lock, the look for a live payment, the payment's
-- insert, paid_amount, the transition to paid, COMMIT. The module now
-- sends BEGIN, ecom_pay_lock (this function), one statement that records
-- the payment and, when it succeeded, moves the order to paid with its
-- event (ecom_payments.c), and COMMIT. The provider is called between the
-- two, with the order row locked, as before.
--
-- ecom_pay_lock locks the caller's order row FOR UPDATE (scoped by user_id:
-- no row for another user's order, a 404), then looks for a processing or
-- succeeded payment of it in a second statement, whose snapshot is taken
-- after the lock (a volatile PL/pgSQL function takes a new snapshot per
-- statement under READ COMMITTED): a payment committed by the previous
-- holder of the lock is seen, so the provider is never called for an order
-- that already has a live payment. One statement could not do both: its
-- snapshot would be taken before the lock wait.
CREATE FUNCTION ecom_pay_lock(p_order bigint, p_user bigint)
RETURNS TABLE (status text, total bigint, currency text, live boolean)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    v_status text;
    v_total  bigint;
    v_cur    text;
BEGIN
    SELECT o.status, o.total, o.currency INTO v_status, v_total, v_cur
      FROM orders o WHERE o.id = p_order AND o.user_id = p_user FOR UPDATE;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    RETURN QUERY SELECT v_status, v_total, v_cur,
        v_status = 'pending' AND EXISTS (
            SELECT 1 FROM payments p WHERE p.order_id = p_order
               AND p.status IN ('processing', 'succeeded'));
END $$;
