-- 017: guest carts and the address book (issue 9, part 5).
--
-- Guest carts. An anonymous client's cart lives in guest_carts, found by
-- the SHA-256 (hex) of its Cart-Token, like a bearer token: the token
-- itself is never stored. A guest cart expires EcomGuestCartLifetime
-- seconds after its last write (expires_at is pushed forward by every
-- add, update and delete), and mod_watchdog's purge deletes expired ones
-- (ecom_purge_guest_carts, mod_ecom/ecom_guest_cart.c). Its lines are
-- guest_cart_items, with the same caps as cart_items (10,000 units a
-- line, checked here too; 500 lines and one currency, checked by
-- ecom_guest_cart_add like ecom_cart_add_as, sql/010).
CREATE TABLE guest_carts (
    id          bigserial PRIMARY KEY,
    token_hash  text        NOT NULL UNIQUE CHECK (length(token_hash) = 64),
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL
);
CREATE INDEX guest_carts_expires ON guest_carts (expires_at);

-- Line ids come from cart_items' sequence: a line id names one line of
-- one cart, guest or not.
CREATE TABLE guest_cart_items (
    id         bigint      PRIMARY KEY DEFAULT nextval('cart_items_id_seq'),
    cart_id    bigint      NOT NULL REFERENCES guest_carts (id) ON DELETE CASCADE,
    product_id bigint      NOT NULL REFERENCES products (id) ON DELETE CASCADE,
    quantity   integer     NOT NULL CHECK (quantity > 0 AND quantity <= 10000),
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (cart_id, product_id)
);
CREATE INDEX guest_cart_items_product ON guest_cart_items (product_id);

-- POST /cart/ of a guest: ecom_cart_add_as (sql/010) for a guest cart, one
-- round trip. p_create: a new cart with token hash p_hash (the module made
-- the token), kept only when the line is added; else the live cart of
-- p_hash, whose row is locked (so one cart's adds run one at a time, as
-- an account's do under its advisory lock) and whose expiry moves to
-- now() + p_ttl seconds. Returns the line (LINE_COLS) and the cart's id;
-- one row with only cart_id when a guard refused the add (the module asks
-- ecom_guest_cart_why); one row of NULLs when p_hash names no live cart.
CREATE FUNCTION ecom_guest_cart_add(p_hash text, p_create boolean,
                                    p_ttl int, p_product bigint, p_qty int,
                                    p_max_lines int, p_max_qty int)
RETURNS TABLE (id bigint, product_id bigint, name text, quantity int,
               unit_price bigint, line_total bigint, currency text,
               cart_id bigint)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    v_cart bigint;
BEGIN
    IF p_create THEN
        INSERT INTO guest_carts AS g (token_hash, expires_at)
        VALUES (p_hash, now() + make_interval(secs => p_ttl))
        RETURNING g.id INTO v_cart;
    ELSE
        UPDATE guest_carts g
           SET expires_at = now() + make_interval(secs => p_ttl)
         WHERE g.token_hash = p_hash AND g.expires_at > now()
        RETURNING g.id INTO v_cart;
        IF v_cart IS NULL THEN
            RETURN NEXT;
            RETURN;
        END IF;
    END IF;
    RETURN QUERY
    WITH p AS (SELECT pr.id, pr.name, pr.price, pr.stock, pr.currency
                 FROM products pr WHERE pr.id = p_product AND pr.active),
    ins AS (INSERT INTO guest_cart_items AS ci (cart_id, product_id, quantity)
            SELECT v_cart, p.id, p_qty FROM p
             WHERE p_qty <= p.stock
               AND ((SELECT count(*) FROM guest_cart_items c3
                      WHERE c3.cart_id = v_cart) < p_max_lines
                    OR EXISTS (SELECT 1 FROM guest_cart_items c4
                                WHERE c4.cart_id = v_cart
                                  AND c4.product_id = p.id))
               AND NOT EXISTS (SELECT 1 FROM guest_cart_items c2
                                WHERE c2.cart_id = v_cart
                                  AND (SELECT p2.currency FROM products p2
                                        WHERE p2.id = c2.product_id) <> p.currency)
            ON CONFLICT (cart_id, product_id) DO UPDATE
            SET quantity = ci.quantity + EXCLUDED.quantity
            WHERE ci.quantity::bigint + EXCLUDED.quantity
                  <= LEAST(p_max_qty, (SELECT p3.stock FROM products p3
                                        WHERE p3.id = EXCLUDED.product_id))
            RETURNING ci.id, ci.quantity)
    SELECT ins.id, p.id, p.name, ins.quantity, p.price, p.price * ins.quantity,
           p.currency, v_cart
      FROM ins, p;
    IF NOT FOUND THEN
        IF p_create THEN
            -- refused: no cart is made (the client gets no Cart-Token)
            DELETE FROM guest_carts g WHERE g.id = v_cart;
        END IF;
        cart_id := v_cart;
        RETURN NEXT;
    END IF;
END $$;

-- A login or register that carries a Cart-Token: the guest cart p_hash
-- (live, row locked) merged into p_user's cart under the account's
-- advisory lock (ecom_account_lock, sql/010), then deleted, in the
-- caller's one statement (one transaction). Every guest line comes back as
-- one row, in product id order: requested (the guest quantity), added
-- (what the user's line gained), quantity (the user's line after), and
-- reason NULL when all was added, else why not all:
--   'stock'        the product's stock caps the line,
--   'line_cap'     p_max_qty units a line caps it,
--   'cart_full'    the user's cart already has p_max_lines lines,
--   'currency'     the product is in another currency than the user's cart,
--   'unavailable'  the product is no longer sold.
-- A user's line is never lowered (a quantity already above the stock
-- stays). One row of NULLs when p_hash names no live guest cart (nothing
-- merged, nothing changed); no row for a live but empty cart.
CREATE FUNCTION ecom_guest_cart_merge(p_user bigint, p_hash text,
                                      p_max_lines int, p_max_qty int)
RETURNS TABLE (product_id bigint, name text, requested int, added int,
               quantity int, reason text)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    v_cart  bigint;
    v_cur   text;
    v_lines bigint;
    v_have  int;
    v_new   int;
    r       record;
BEGIN
    PERFORM ecom_account_lock(p_user, NULL);
    SELECT g.id INTO v_cart FROM guest_carts g
     WHERE g.token_hash = p_hash AND g.expires_at > now()
       FOR UPDATE;
    IF v_cart IS NULL THEN
        RETURN NEXT;
        RETURN;
    END IF;
    SELECT min(p.currency), count(*) INTO v_cur, v_lines
      FROM cart_items c JOIN products p ON p.id = c.product_id
     WHERE c.user_id = p_user;
    FOR r IN
        SELECT gi.product_id AS pid, gi.quantity AS qty, p.name AS pname,
               p.currency AS cur, p.stock, p.active, c.quantity AS have
          FROM guest_cart_items gi
          JOIN products p ON p.id = gi.product_id
          LEFT JOIN cart_items c ON c.user_id = p_user
                                AND c.product_id = gi.product_id
         WHERE gi.cart_id = v_cart
         ORDER BY gi.product_id
           FOR UPDATE OF gi
    LOOP
        v_have := coalesce(r.have, 0);
        product_id := r.pid; name := r.pname; requested := r.qty;
        added := 0; quantity := v_have; reason := NULL;
        IF NOT r.active THEN
            reason := 'unavailable';
        ELSIF v_cur IS NOT NULL AND r.cur <> v_cur THEN
            reason := 'currency';
        ELSIF r.have IS NULL AND v_lines >= p_max_lines THEN
            reason := 'cart_full';
        ELSE
            v_new := LEAST(v_have::bigint + r.qty, p_max_qty, r.stock);
            IF v_new > v_have THEN
                INSERT INTO cart_items AS ci (user_id, product_id, quantity)
                VALUES (p_user, r.pid, v_new)
                ON CONFLICT (user_id, product_id) DO UPDATE
                SET quantity = EXCLUDED.quantity;
                added := v_new - v_have;
                quantity := v_new;
                v_cur := coalesce(v_cur, r.cur);
                IF r.have IS NULL THEN
                    v_lines := v_lines + 1;
                END IF;
            END IF;
            IF added < r.qty THEN
                reason := CASE WHEN r.stock < p_max_qty THEN 'stock'
                               ELSE 'line_cap' END;
            END IF;
        END IF;
        RETURN NEXT;
    END LOOP;
    DELETE FROM guest_carts g WHERE g.id = v_cart;
END $$;

-- The address book: a user's saved shipping addresses, each the same
-- normalised JSON object an order's shipping_address holds (validated by
-- the module, mod_ecom/ecom_orders.c), at most one the default (the
-- partial unique index), at most p_max per user (ecom_address_save).
CREATE TABLE addresses (
    id         bigserial PRIMARY KEY,
    user_id    bigint      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    address    jsonb       NOT NULL CHECK (jsonb_typeof(address) = 'object'),
    is_default boolean     NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX addresses_user ON addresses (user_id, id);
CREATE UNIQUE INDEX addresses_one_default ON addresses (user_id) WHERE is_default;

-- One user's address writes run one at a time under a transaction
-- advisory lock (class 7316017, the user id below 2^31), so the count
-- bound and the default switch see every other write of that user.
CREATE FUNCTION ecom_address_lock(p_user bigint) RETURNS void
LANGUAGE sql AS $$
    SELECT pg_advisory_xact_lock(7316017, (p_user % 2147483648)::int)
$$;

-- Creates (p_id NULL) or changes (p_id: the caller's address, which the
-- caller read under ecom_address_lock in the same transaction) an
-- address. p_default true makes it the default and unsets the previous
-- one, in this statement; the first address is the default whatever
-- p_default says; NULL keeps the flag (a change) or means false (a new
-- one). Returns the address, or one row with outcome 'full' (p_max
-- addresses already) or 'not_found' (p_id is not the caller's).
CREATE FUNCTION ecom_address_save(p_user bigint, p_id bigint,
                                  p_address jsonb, p_default boolean,
                                  p_max int)
RETURNS TABLE (outcome text, id bigint, address text, is_default boolean,
               created_at timestamptz, updated_at timestamptz)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    v_n   bigint;
    v_def boolean;
BEGIN
    PERFORM ecom_address_lock(p_user);
    SELECT count(*), coalesce(bool_or(a.is_default), false)
      INTO v_n, v_def FROM addresses a WHERE a.user_id = p_user;
    IF p_id IS NULL THEN
        IF v_n >= p_max THEN
            outcome := 'full';
            RETURN NEXT;
            RETURN;
        END IF;
        p_default := coalesce(p_default, false) OR NOT v_def;
    END IF;
    IF p_default THEN
        UPDATE addresses a SET is_default = false, updated_at = now()
         WHERE a.user_id = p_user AND a.is_default
           AND a.id IS DISTINCT FROM p_id;
    END IF;
    IF p_id IS NULL THEN
        RETURN QUERY
        INSERT INTO addresses AS a (user_id, address, is_default)
        VALUES (p_user, p_address, p_default)
        RETURNING 'ok'::text, a.id, a.address::text, a.is_default,
                  a.created_at, a.updated_at;
    ELSE
        RETURN QUERY
        UPDATE addresses a
           SET address = coalesce(p_address, a.address),
               is_default = coalesce(p_default, a.is_default),
               updated_at = now()
         WHERE a.id = p_id AND a.user_id = p_user
        RETURNING 'ok'::text, a.id, a.address::text, a.is_default,
                  a.created_at, a.updated_at;
    END IF;
    IF NOT FOUND THEN
        outcome := 'not_found';
        RETURN NEXT;
    END IF;
END $$;

-- Deletes the caller's address p_id; when it was the default, the
-- newest remaining address becomes the default in the same statement, so
-- a user with addresses always has one. false when p_id is not the
-- caller's.
CREATE FUNCTION ecom_address_delete(p_user bigint, p_id bigint)
RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    v_def boolean;
BEGIN
    PERFORM ecom_address_lock(p_user);
    DELETE FROM addresses a WHERE a.id = p_id AND a.user_id = p_user
    RETURNING a.is_default INTO v_def;
    IF v_def IS NULL THEN
        RETURN false;
    END IF;
    IF v_def THEN
        UPDATE addresses a SET is_default = true, updated_at = now()
         WHERE a.id = (SELECT max(a2.id) FROM addresses a2
                        WHERE a2.user_id = p_user);
    END IF;
    RETURN true;
END $$;

-- Checkout with the address book: ecom_checkout_as (sql/010, sql/011) with
-- a sixth argument and a last column, as a wrapper over the five-argument
-- version (which stays as it is, also for a module of the previous
-- release during a rolling upgrade). p_default_address true: when the
-- client named no address (p_address NULL), the order's shipping_address
-- is a copy of the caller's default address, if any, read under the
-- account's lock (ecom_account_lock resolves the token and takes the lock
-- here; the inner call takes it again, which PostgreSQL grants at once to
-- the session holding it): one index probe of addresses_one_default, in
-- the same statement, no round trip more. The column address is the
-- snapshot the order holds (NULL on refusal rows), which the module shows
-- in its answer.
CREATE FUNCTION ecom_checkout_as(p_user bigint, p_token text, p_cap int,
                                 p_expected bigint, p_address jsonb,
                                 p_default_address boolean)
RETURNS TABLE (outcome text, order_id bigint, id bigint, product_id bigint,
               sku text, name text, unit_price bigint, quantity int,
               line_total bigint, n bigint, currency text, total bigint,
               sold_out bigint, created_at timestamptz,
               updated_at timestamptz, user_id bigint, address jsonb)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
BEGIN
    p_user := ecom_account_lock(p_user, p_token);
    IF p_user IS NULL THEN
        outcome := 'unauthorized';
        RETURN NEXT;
        RETURN;
    END IF;
    IF p_address IS NULL AND p_default_address THEN
        SELECT a.address INTO p_address FROM addresses a
         WHERE a.user_id = p_user AND a.is_default;
    END IF;
    RETURN QUERY
    SELECT c.outcome, c.order_id, c.id, c.product_id, c.sku, c.name,
           c.unit_price, c.quantity, c.line_total, c.n, c.currency, c.total,
           c.sold_out, c.created_at, c.updated_at, c.user_id,
           CASE WHEN c.outcome = 'ok' THEN p_address END
      FROM ecom_checkout_as(p_user, NULL, p_cap, p_expected, p_address) c;
END $$;
