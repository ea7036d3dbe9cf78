-- 013: product reviews and each product's rating summary (issue 8, item 2).
--
-- Depends only on 001 and 005 (products, users, orders, order_lines), so it
-- applies with or without 012.
--
-- The summary lives in the product's own row (rating_count, rating_sum of
-- the visible reviews), so the product detail and the lists read it as
-- columns, never as an aggregate per request. It is kept by a trigger on
-- reviews, in the transaction of the review write itself, whatever wrote it
-- (the API's insert, edit, hide, delete, or a cascade from a deleted user
-- or product). The trigger adds a delta with one UPDATE of the product row:
-- under READ COMMITTED that UPDATE takes the row lock and applies the delta
-- to the newest committed version, so concurrent reviews of one product
-- queue on that row and none is lost. (Review inserts take FOR KEY SHARE on
-- the product for the foreign key, which does not conflict with the
-- UPDATE's FOR NO KEY UPDATE: no lock upgrade deadlock between two
-- reviewers.)
--
-- rating_key is the average rounded half up to two decimals, in hundredths
-- (433 is 4.33), -1 without visible reviews: the key of sort=rating (highest
-- first, unrated last, ties by id), and what the API's average is made of,
-- so the order and the numbers shown always agree.

ALTER TABLE products
    ADD COLUMN rating_count integer NOT NULL DEFAULT 0 CHECK (rating_count >= 0),
    ADD COLUMN rating_sum   bigint  NOT NULL DEFAULT 0 CHECK (rating_sum >= 0);
ALTER TABLE products
    ADD COLUMN rating_key integer GENERATED ALWAYS AS
        (CASE WHEN rating_count > 0
              THEN round(rating_sum * 100.0 / rating_count)::integer
              ELSE -1 END) STORED;

-- sort=rating: ORDER BY -rating_key, id, keyset (-rating_key, id) > (...)
CREATE INDEX products_active_rating ON products ((-rating_key), id) WHERE active;

-- One review per user and product. A deleted account takes its reviews
-- with it (the trigger takes them out of the summary), as a deleted
-- product does.
CREATE TABLE reviews (
    id         bigserial PRIMARY KEY,
    product_id bigint      NOT NULL REFERENCES products (id) ON DELETE CASCADE,
    user_id    bigint      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    rating     smallint    NOT NULL CHECK (rating BETWEEN 1 AND 5),
    title      text        CHECK (length(title) <= 200),
    body       text        CHECK (length(body) <= 5000),
    hidden     boolean     NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT reviews_one_per_user UNIQUE (product_id, user_id)
);
-- a product's reviews, newest first, all or one rating
CREATE INDEX reviews_product ON reviews (product_id, id);
CREATE INDEX reviews_product_rating ON reviews (product_id, rating, id);
-- the cascade from a deleted user
CREATE INDEX reviews_user ON reviews (user_id);

CREATE FUNCTION ecom_review_summary() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    dcount integer;
    dsum   integer;
BEGIN
    -- hidden rows count nothing
    IF TG_OP = 'UPDATE' AND OLD.product_id = NEW.product_id THEN
        dcount := (NOT NEW.hidden)::integer - (NOT OLD.hidden)::integer;
        dsum := CASE WHEN NEW.hidden THEN 0 ELSE NEW.rating END
                - CASE WHEN OLD.hidden THEN 0 ELSE OLD.rating END;
        IF dcount <> 0 OR dsum <> 0 THEN
            UPDATE products SET rating_count = rating_count + dcount,
                                rating_sum = rating_sum + dsum
             WHERE id = NEW.product_id;
        END IF;
        RETURN NULL;
    END IF;
    -- an insert, a delete, or (never through the API) a review moved to
    -- another product: the old row out of its product, the new one in
    IF TG_OP IN ('UPDATE', 'DELETE') AND NOT OLD.hidden THEN
        UPDATE products SET rating_count = rating_count - 1,
                            rating_sum = rating_sum - OLD.rating
         WHERE id = OLD.product_id;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') AND NOT NEW.hidden THEN
        UPDATE products SET rating_count = rating_count + 1,
                            rating_sum = rating_sum + NEW.rating
         WHERE id = NEW.product_id;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER reviews_summary
    AFTER INSERT OR DELETE OR UPDATE OF rating, hidden, product_id ON reviews
    FOR EACH ROW EXECUTE FUNCTION ecom_review_summary();
