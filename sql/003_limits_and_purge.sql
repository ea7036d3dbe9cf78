-- 003: limits the schema enforces itself, and indexes for the purge.
--
-- A cart line holds at most 10,000 units (the API's cap, now held by the
-- database too), so a line total is at most 10^12 x 10^4 and a 500-line
-- cart's total stays inside a bigint. Lines an older version let grow past
-- the cap are brought down to it first. (Order lines are not capped: real
-- wholesale orders, such as the demo data's, hold larger quantities, and
-- orders only ever come from a cart through the API.)
UPDATE cart_items SET quantity = 10000 WHERE quantity > 10000;
ALTER TABLE cart_items
    ADD CONSTRAINT cart_items_quantity_max CHECK (quantity <= 10000);
-- Prices as the API accepts them (at most 10^12 minor units).
ALTER TABLE products
    ADD CONSTRAINT products_price_max CHECK (price <= 1000000000000) NOT VALID;

-- mod_watchdog's purge (EcomPurgeInterval) deletes expired or revoked
-- tokens and idempotency records older than 24 hours; the per-user count
-- of live keys (EcomIdempotencyKeysPerDay) reads the second index.
CREATE INDEX auth_tokens_expires ON auth_tokens (expires_at);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);
CREATE INDEX idempotency_keys_user_created ON idempotency_keys (user_id, created_at);
