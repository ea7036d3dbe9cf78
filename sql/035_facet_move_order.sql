-- 035: the facet counts' trigger (sql/015) locks its two rows in one order.
--
-- Why: a move between two facet rows (a product sold out or restocked, a
-- price crossing a bucket, a category change) decremented the old row and
-- then incremented the new one. Two transactions moving two products the
-- opposite ways between the same rows (a checkout selling the last unit of
-- one product while a cancel restocks another of the same category and
-- price bucket; two staff price changes) locked the rows in opposite
-- orders and deadlocked: PostgreSQL aborted one after deadlock_timeout
-- (the module answered 503). t/70-price-bands.t found it with eight
-- sessions moving products both ways between two prices. Now the row
-- with the smaller (category_id, bucket, in_stock) is touched first, as
-- sql/033's price bands do: single-product moves no longer deadlock (two
-- multi-row writes still can; PostgreSQL then aborts one).
CREATE OR REPLACE FUNCTION ecom_facet_move() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    had boolean := TG_OP IN ('UPDATE', 'DELETE') AND OLD.active;
    has boolean := TG_OP IN ('UPDATE', 'INSERT') AND NEW.active;
    oc  bigint;
    ob  smallint;
    os  boolean;
    nc  bigint;
    nb  smallint;
    ns  boolean;
BEGIN
    IF had THEN
        oc := coalesce(OLD.category_id, 0);
        ob := ecom_price_bucket(OLD.price);
        os := OLD.stock > 0;
    END IF;
    IF has THEN
        nc := coalesce(NEW.category_id, 0);
        nb := ecom_price_bucket(NEW.price);
        ns := NEW.stock > 0;
    END IF;
    IF had AND has AND (oc, ob, os) = (nc, nb, ns) THEN
        RETURN NULL;
    END IF;
    IF has AND (NOT had OR (nc, nb, ns) < (oc, ob, os)) THEN
        INSERT INTO product_facet_counts AS f (category_id, bucket, in_stock, n)
        VALUES (nc, nb, ns, 1)
        ON CONFLICT (category_id, bucket, in_stock) DO UPDATE SET n = f.n + 1;
        has := false;
    END IF;
    IF had THEN
        UPDATE product_facet_counts SET n = n - 1
         WHERE category_id = oc AND bucket = ob AND in_stock = os;
    END IF;
    IF has THEN
        INSERT INTO product_facet_counts AS f (category_id, bucket, in_stock, n)
        VALUES (nc, nb, ns, 1)
        ON CONFLICT (category_id, bucket, in_stock) DO UPDATE SET n = f.n + 1;
    END IF;
    RETURN NULL;
END $$;
