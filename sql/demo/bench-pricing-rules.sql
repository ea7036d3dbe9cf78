-- sql/demo/bench-pricing-rules.sql: the sales rules of `make bench`'s
-- pricing scenario (scripts/bench.sh, ECOM_BENCH_PRICING_RULES_SQL), a
-- realistic set for a shop of a few thousand products: live, one store-wide
-- sale (5 %, lowest priority), a sale on each of the 10 largest categories
-- and 20 sales of 25 listed products each; not live, 40 past and 10 future
-- rules (the list reads the live ones only, through pricing_rules_ends).
-- Written through the API's own function (ecom_pricing_rule_save, sql/023),
-- named "bench ..." so that the scenario deletes them afterwards. Does
-- nothing on a schema without sales rules.
DO $$
DECLARE
    v_now bigint := extract(epoch FROM now())::bigint;
    v_day bigint := 86400;
BEGIN
    IF to_regclass('pricing_rules') IS NULL THEN
        RAISE NOTICE 'no pricing_rules table (sql/023): no sales rules';
        RETURN;
    END IF;
    DELETE FROM pricing_rules WHERE name LIKE 'bench %';
    PERFORM ecom_pricing_rule_save(NULL, 'bench store-wide', 5, NULL, NULL,
                                   v_now - v_day, v_now + 30 * v_day, 0);
    PERFORM ecom_pricing_rule_save(NULL, 'bench category ' || c.slug,
                                   (10 + (c.n % 4) * 5)::int, c.slug, NULL,
                                   v_now - v_day, v_now + 7 * v_day, 10)
       FROM (SELECT c.slug, row_number() OVER (ORDER BY count(*) DESC) AS n
               FROM categories c JOIN products p ON p.category_id = c.id
              WHERE p.active GROUP BY c.slug ORDER BY count(*) DESC
              LIMIT 10) c;
    PERFORM ecom_pricing_rule_save(NULL, 'bench products ' || g.i,
                                   20 + g.i, NULL,
                                   ARRAY(SELECT p.id FROM products p
                                          WHERE p.active
                                          ORDER BY p.id OFFSET g.i * 97 LIMIT 25),
                                   v_now - v_day, v_now + 3 * v_day, 20)
       FROM generate_series(1, 20) AS g(i);
    PERFORM ecom_pricing_rule_save(NULL, 'bench past ' || g.i, 30, NULL, NULL,
                                   v_now - (g.i + 10) * v_day,
                                   v_now - g.i * v_day, 30)
       FROM generate_series(1, 40) AS g(i);
    PERFORM ecom_pricing_rule_save(NULL, 'bench future ' || g.i, 40, NULL, NULL,
                                   v_now + g.i * v_day,
                                   v_now + (g.i + 10) * v_day, 40)
       FROM generate_series(1, 10) AS g(i);
    ANALYZE pricing_rules;
    ANALYZE pricing_rule_products;
END
$$;
