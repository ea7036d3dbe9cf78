-- 012: categories as a tree (issue 8, item 1).
--
-- GET /categories/ answers the whole tree with each node's count of active
-- products over its subtree; ?category=<slug> on the product list takes the
-- slug's subtree (a recursive walk down parent_id); staff create, rename,
-- move and delete categories (mod_ecom/ecom_categories.c).

-- The walk down the tree reads a node's children by parent_id.
CREATE INDEX categories_parent ON categories (parent_id);

-- DELETE /categories/{slug}/ refuses a category that still holds a product,
-- active or not (the foreign key's ON DELETE SET NULL would otherwise file
-- its products under no category); products_category and
-- products_category_active (004) only index the active ones.
CREATE INDEX products_category_any ON products (category_id);

-- A category is never its own parent.
ALTER TABLE categories
    ADD CONSTRAINT categories_not_own_parent CHECK (parent_id <> id);

-- Nor its own ancestor: the module refuses such a move with a 409
-- (category-cycle) before it writes, under a transaction-scoped advisory
-- lock that every category write takes, so two moves cannot cross; this
-- trigger is the last guard for any other writer (a cycle would hide the
-- categories in it from the tree). It walks up from the new parent; UNION
-- stops on a cycle already present.
CREATE FUNCTION ecom_category_no_cycle() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.parent_id IS NOT NULL AND EXISTS (
        WITH RECURSIVE up(id) AS (
            SELECT NEW.parent_id
            UNION
            SELECT c.parent_id FROM categories c JOIN up ON c.id = up.id
             WHERE c.parent_id IS NOT NULL)
        SELECT 1 FROM up WHERE id = NEW.id) THEN
        RAISE EXCEPTION 'category % would be its own ancestor', NEW.id
            USING ERRCODE = 'check_violation',
                  CONSTRAINT = 'categories_no_cycle';
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER categories_no_cycle
    BEFORE UPDATE OF parent_id ON categories
    FOR EACH ROW EXECUTE FUNCTION ecom_category_no_cycle();
