-- 005: the order lifecycle after checkout (issue 7): payments, refunds,
-- shipments, the shipping address snapshot, the actor of each order event,
-- webhook deliveries and the staff event feed.
--
-- Money invariants live in the schema, so no code path can break them:
--   * at most one payment per order is processing or succeeded
--     (payments_one_live), so an order is never paid twice;
--   * orders.refunded_amount <= orders.paid_amount (orders_refund_le_paid),
--     and a refund adds to it with one conditional UPDATE of the order row,
--     so two refunds racing past the amount paid cannot both commit.
-- The event feed (GET /events/) is filled by triggers on the tables it
-- reports, in the same transaction as the change: nothing can change an
-- order, payment, refund or shipment without its event, nor the reverse.

ALTER TABLE orders
    ADD COLUMN shipping_address jsonb
        CHECK (shipping_address IS NULL OR jsonb_typeof(shipping_address) = 'object'),
    ADD COLUMN paid_amount     bigint NOT NULL DEFAULT 0 CHECK (paid_amount >= 0),
    ADD COLUMN refunded_amount bigint NOT NULL DEFAULT 0 CHECK (refunded_amount >= 0),
    ADD COLUMN restocked_at    timestamptz,
    ADD CONSTRAINT orders_refund_le_paid CHECK (refunded_amount <= paid_amount);

-- the payment timeout's scan and the per-account cap of open pending orders
CREATE INDEX orders_pending_created ON orders (created_at) WHERE status = 'pending';
CREATE INDEX orders_pending_user ON orders (user_id) WHERE status = 'pending';

-- Who moved the order: the caller as a customer or as staff, the module
-- itself (payment timeout), or the payment provider (webhook).
ALTER TABLE order_events
    ADD COLUMN actor text NOT NULL DEFAULT 'user'
        CHECK (actor IN ('user', 'staff', 'system', 'provider'));

CREATE TABLE payments (
    id             bigserial PRIMARY KEY,
    order_id       bigint      NOT NULL REFERENCES orders (id) ON DELETE RESTRICT,
    provider       text        NOT NULL CHECK (length(provider) BETWEEN 1 AND 32),
    provider_ref   text        CHECK (length(provider_ref) <= 255),
    status         text        NOT NULL
                   CHECK (status IN ('processing', 'succeeded', 'failed')),
    amount         bigint      NOT NULL CHECK (amount >= 0),
    currency       text        NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    failure_reason text        CHECK (length(failure_reason) <= 500),
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX payments_order ON payments (order_id, id);
CREATE UNIQUE INDEX payments_one_live ON payments (order_id)
    WHERE status IN ('processing', 'succeeded');

CREATE TABLE refunds (
    id         bigserial PRIMARY KEY,
    order_id   bigint      NOT NULL REFERENCES orders (id) ON DELETE RESTRICT,
    payment_id bigint      REFERENCES payments (id) ON DELETE RESTRICT,
    amount     bigint      NOT NULL CHECK (amount > 0),
    currency   text        NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    status     text        NOT NULL DEFAULT 'succeeded'
               CHECK (status IN ('pending', 'succeeded', 'failed')),
    reason     text        CHECK (length(reason) <= 500),
    restock    boolean     NOT NULL DEFAULT false,
    actor_id   bigint      REFERENCES users (id) ON DELETE SET NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX refunds_order ON refunds (order_id, id);

CREATE TABLE shipments (
    id              bigserial PRIMARY KEY,
    order_id        bigint      NOT NULL REFERENCES orders (id) ON DELETE RESTRICT,
    carrier         text        NOT NULL CHECK (length(carrier) BETWEEN 1 AND 100),
    tracking_number text        NOT NULL CHECK (length(tracking_number) BETWEEN 1 AND 100),
    status          text        NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'shipped', 'in_transit', 'delivered')),
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX shipments_order ON shipments (order_id, id);

-- Webhook deliveries by the provider's event id: a second delivery of the
-- same id finds its row and changes nothing.
CREATE TABLE webhook_events (
    id          text        PRIMARY KEY CHECK (length(id) BETWEEN 1 AND 255),
    type        text        NOT NULL CHECK (length(type) BETWEEN 1 AND 100),
    payment_id  bigint,
    outcome     text        NOT NULL CHECK (outcome IN ('applied', 'ignored')),
    received_at timestamptz NOT NULL DEFAULT now()
);

-- The staff feed: one row per order transition, payment, refund and
-- shipment change, oldest first by id.
--   order.created, order.paid, order.shipped, order.delivered,
--   order.cancelled, order.refunded;
--   payment.processing, payment.succeeded, payment.failed;
--   refund.succeeded (refund.<status>);
--   shipment.created, shipment.shipped, shipment.in_transit,
--   shipment.delivered.
-- data holds the object as it is after the change.
CREATE TABLE events (
    id         bigserial PRIMARY KEY,
    type       text        NOT NULL,
    order_id   bigint      NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    actor      text        CHECK (actor IN ('user', 'staff', 'system', 'provider')),
    data       jsonb       NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX events_type ON events (type text_pattern_ops, id);
CREATE INDEX events_order ON events (order_id, id);

CREATE FUNCTION ecom_feed_order_event() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO events (type, order_id, actor, data, created_at)
    VALUES (CASE WHEN NEW.from_status IS NULL THEN 'order.created'
                 ELSE 'order.' || NEW.to_status END,
            NEW.order_id, NEW.actor,
            jsonb_build_object('from', NEW.from_status, 'to', NEW.to_status,
                               'actor_id', NEW.actor_id),
            NEW.created_at);
    RETURN NULL;
END $$;
CREATE TRIGGER order_events_feed AFTER INSERT ON order_events
    FOR EACH ROW EXECUTE FUNCTION ecom_feed_order_event();

-- payments, refunds, shipments: an insert reports <kind>.<status> (a new
-- shipment: shipment.created), an update that changes the status reports
-- the new status.
CREATE FUNCTION ecom_feed_object() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    kind text := TG_ARGV[0];
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.status IS NOT DISTINCT FROM OLD.status THEN
        RETURN NULL;
    END IF;
    INSERT INTO events (type, order_id, actor, data)
    VALUES (kind || '.' || CASE WHEN TG_OP = 'INSERT' AND kind = 'shipment'
                                THEN 'created' ELSE NEW.status END,
            NEW.order_id, NULL, to_jsonb(NEW));
    RETURN NULL;
END $$;
CREATE TRIGGER payments_feed AFTER INSERT OR UPDATE OF status ON payments
    FOR EACH ROW EXECUTE FUNCTION ecom_feed_object('payment');
CREATE TRIGGER refunds_feed AFTER INSERT OR UPDATE OF status ON refunds
    FOR EACH ROW EXECUTE FUNCTION ecom_feed_object('refund');
CREATE TRIGGER shipments_feed AFTER INSERT OR UPDATE OF status ON shipments
    FOR EACH ROW EXECUTE FUNCTION ecom_feed_object('shipment');
