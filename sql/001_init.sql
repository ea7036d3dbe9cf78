-- 001_init.sql: the foundation schema.
--
-- Invariants live here, not only in C: stock never negative, quantities
-- positive, prices non-negative, emails unique case-insensitively, and an
-- order keeps its lines (name, sku and price snapshots) when the product is
-- deleted or deactivated.

CREATE TABLE users (
    id            bigserial PRIMARY KEY,
    email         text        NOT NULL CHECK (length(email) BETWEEN 3 AND 254),
    name          text        NOT NULL DEFAULT '' CHECK (length(name) <= 200),
    password_hash text        NOT NULL,
    is_staff      boolean     NOT NULL DEFAULT false,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX users_email_lower_key ON users (lower(email));

-- Bearer tokens: only the SHA-256 of the token is stored.
CREATE TABLE auth_tokens (
    id          bigserial PRIMARY KEY,
    user_id     bigint      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash  text        NOT NULL UNIQUE CHECK (length(token_hash) = 64),
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    revoked_at  timestamptz
);
CREATE INDEX auth_tokens_user ON auth_tokens (user_id);

CREATE TABLE categories (
    id         bigserial PRIMARY KEY,
    slug       text NOT NULL UNIQUE CHECK (slug ~ '^[a-z0-9_-]{1,100}$'),
    name       text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    parent_id  bigint REFERENCES categories (id) ON DELETE SET NULL
);

CREATE TABLE products (
    id          bigserial PRIMARY KEY,
    sku         text UNIQUE CHECK (length(sku) BETWEEN 1 AND 64),
    name        text        NOT NULL CHECK (length(name) BETWEEN 1 AND 300),
    description text        NOT NULL DEFAULT '' CHECK (length(description) <= 10000),
    price       bigint      NOT NULL CHECK (price >= 0),
    currency    text        NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    stock       integer     NOT NULL DEFAULT 0 CHECK (stock >= 0),
    active      boolean     NOT NULL DEFAULT true,
    category_id bigint REFERENCES categories (id) ON DELETE SET NULL,
    search      tsvector GENERATED ALWAYS AS
                    (to_tsvector('simple', name || ' ' || description)) STORED,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX products_active_price ON products (price, id) WHERE active;
CREATE INDEX products_category ON products (category_id, id) WHERE active;
CREATE INDEX products_search ON products USING gin (search);

CREATE TABLE cart_items (
    id         bigserial PRIMARY KEY,
    user_id    bigint      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    product_id bigint      NOT NULL REFERENCES products (id) ON DELETE CASCADE,
    quantity   integer     NOT NULL CHECK (quantity > 0),
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (user_id, product_id)
);

CREATE TABLE orders (
    id         bigserial PRIMARY KEY,
    user_id    bigint      NOT NULL REFERENCES users (id) ON DELETE RESTRICT,
    status     text        NOT NULL DEFAULT 'pending'
               CHECK (status IN ('pending', 'paid', 'shipped', 'delivered',
                                 'cancelled', 'refunded')),
    currency   text        NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    subtotal   bigint      NOT NULL CHECK (subtotal >= 0),
    discount   bigint      NOT NULL DEFAULT 0 CHECK (discount >= 0),
    total      bigint      NOT NULL CHECK (total >= 0),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX orders_user ON orders (user_id, id DESC);
CREATE INDEX orders_status ON orders (status, id DESC);

-- product_id goes NULL when a product is deleted; the snapshot columns keep
-- the order readable forever.
CREATE TABLE order_lines (
    id         bigserial PRIMARY KEY,
    order_id   bigint  NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    product_id bigint  REFERENCES products (id) ON DELETE SET NULL,
    sku        text,
    name       text    NOT NULL,
    unit_price bigint  NOT NULL CHECK (unit_price >= 0),
    quantity   integer NOT NULL CHECK (quantity > 0),
    line_total bigint  NOT NULL CHECK (line_total >= 0)
);
CREATE INDEX order_lines_order ON order_lines (order_id);
CREATE INDEX order_lines_product ON order_lines (product_id);

-- The audit trail: every status transition, who made it and when.
CREATE TABLE order_events (
    id          bigserial PRIMARY KEY,
    order_id    bigint      NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    actor_id    bigint      REFERENCES users (id) ON DELETE SET NULL,
    from_status text,
    to_status   text        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX order_events_order ON order_events (order_id, id);

-- Idempotency-Key records: status_code IS NULL while the first request is
-- still in flight. Keys older than 24 hours are replaced on reuse.
CREATE TABLE idempotency_keys (
    user_id       bigint      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    key           text        NOT NULL CHECK (length(key) BETWEEN 1 AND 255),
    request_hash  text        NOT NULL,
    status_code   integer,
    response_body text,
    location      text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, key)
);
