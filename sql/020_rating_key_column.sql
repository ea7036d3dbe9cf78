-- 020: products.rating_key becomes a plain column kept by a trigger that
-- fires only when an UPDATE names rating_count or rating_sum (issue 7).
--
-- 013 made rating_key a stored generated column. PostgreSQL prepares a
-- stored generated column's expression again in every statement that
-- writes the row (ExecInitStoredGenerated: the expression is read from the
-- catalog and planned per statement), so every checkout's stock UPDATE
-- paid for it: 2 % of the PostgreSQL time of an order of the bench's mix
-- (perf, one session, cart adds and checkouts through ecom_cart_add_as and
-- ecom_checkout_as). A column-specific trigger costs a statement that does
-- not name those columns nothing but a column-set test. The values, the
-- index (products_active_rating) and what reads them do not change: the
-- review summary trigger (013) and scripts/gen-catalog.sh write
-- rating_count and rating_sum, this trigger derives rating_key from them,
-- with the same expression as 013's column.

ALTER TABLE products ALTER COLUMN rating_key DROP EXPRESSION;
ALTER TABLE products ALTER COLUMN rating_key SET DEFAULT -1;
ALTER TABLE products ALTER COLUMN rating_key SET NOT NULL;

CREATE FUNCTION ecom_rating_key_tg() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.rating_key := CASE WHEN NEW.rating_count > 0
                           THEN round(NEW.rating_sum * 100.0 / NEW.rating_count)::integer
                           ELSE -1 END;
    RETURN NEW;
END $$;

-- INSERT too, but only a row that comes with a summary or a key (a copy, a
-- restore): the API and the generator create products without one, which
-- the default already gets right, and the WHEN clause keeps PL/pgSQL out
-- of their inserts.
CREATE TRIGGER products_rating_key_ins BEFORE INSERT ON products
    FOR EACH ROW WHEN (NEW.rating_count <> 0 OR NEW.rating_key <> -1)
    EXECUTE FUNCTION ecom_rating_key_tg();
CREATE TRIGGER products_rating_key_upd
    BEFORE UPDATE OF rating_count, rating_sum, rating_key ON products
    FOR EACH ROW EXECUTE FUNCTION ecom_rating_key_tg();
