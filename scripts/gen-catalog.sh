#!/usr/bin/env bash
# gen-catalog.sh: a large generated catalog for benchmarks (issue 8, "Scale"),
# made inside PostgreSQL (INSERT ... SELECT over generate_series), so a
# million products take minutes, not hours.
#
#   scripts/gen-catalog.sh [--products N] [--reviews N] [--replace] [--help]
#
#   --products N   how many products to add (default 1000000)
#   --reviews N    how many reviews to add to them (default: as many as
#                  products)
#   --replace      first delete the products an earlier run generated
#                  (SKU GEN-...), with their cart lines and reviews
#
# Environment: PGHOST PGPORT PGUSER PGDATABASE (defaults 127.0.0.1, 55432,
# ecom, ecom). The schema must be migrated; the demo data may or may not be
# loaded.
#
# What it makes (deterministic: the same arguments on the same PostgreSQL
# version give the same rows: each batch of 100,000 seeds random() with
# setseed(batch number / 1000)):
#   * categories: the leaves of the existing tree (categories without
#     children); when there are fewer than 8, a generated two-level tree of
#     8 departments x 6 leaves (slugs gen-...) is added and used;
#   * products, SKU GEN-<n>, spread over those leaves with a skew (the
#     first leaves get most products: leaf = floor(L * u^1.6)), names of
#     three to four words from a vocabulary taken from the demo products'
#     names when they are loaded (else a built-in list), picked with a
#     Zipf-like skew so that some words are common and most rare, plus a
#     model number; a description of eight words; prices log-uniform from
#     0.50 to 500.00 (in minor units), skewed to the cheap end; 15 % out of
#     stock, the rest 1 to 500 units (most few); 2 % inactive; created_at
#     spread over the three years before now, in id order.
#   * reviewers: one generated account per 50 reviews (gen-reviewer-<n>@
#     example.invalid, a password hash that no password matches), and
#     reviews of the generated products with a strong skew (product =
#     floor(P * u^4): a few products hold thousands of reviews, most none),
#     one per reviewer and product (a repeated pair is dropped, so fewer
#     than asked: 18,383 of 20,000 on 20,000 products), ratings 5
#     (55 %), 4 (25 %), 3 (10 %), 2 (5 %), 1 (5 %), 3 % hidden; the products' rating summaries are then
#     recounted in one statement (the per-row trigger is off while the
#     reviews are inserted, in the same transaction).
# The facet counts (product_facet_counts) and the price bands' counts
# (product_price_bands) are recounted in each batch's transaction instead
# of being kept row by row by their triggers; the names' postings
# (search_name_postings, sql/038) are written by each batch's statement
# from the rows it inserted, with their trigger off.
# Products are inserted in batches of 100,000 (one transaction each, with
# a progress line); a run that fails part-way leaves its finished batches,
# which --replace removes on the next run. ANALYZE at the end.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/lib.sh
. "$ROOT/scripts/lib.sh"

usage() {
    sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"
}

products=1000000
reviews=""
replace=0
while [ $# -gt 0 ]; do
    case "$1" in
        --products)
            [ $# -ge 2 ] || die "--products needs a number"
            products="$2"; shift 2 ;;
        --reviews)
            [ $# -ge 2 ] || die "--reviews needs a number"
            reviews="$2"; shift 2 ;;
        --replace) replace=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) die "unknown argument '$1' (try --help)" ;;
    esac
done
case "$products" in ''|*[!0-9]*) die "--products must be a number (got '$products')" ;; esac
[ "$products" -le 20000000 ] || die "--products is at most 20,000,000"
reviews="${reviews:-$products}"
case "$reviews" in ''|*[!0-9]*) die "--reviews must be a number (got '$reviews')" ;; esac

export PGHOST="${PGHOST:-127.0.0.1}" PGPORT="${PGPORT:-55432}"
export PGUSER="${PGUSER:-ecom}" PGDATABASE="${PGDATABASE:-ecom}"
command -v psql >/dev/null || die "psql not found (apt-get install postgresql-client)"
sql() { psql -X -q -At -v ON_ERROR_STOP=1 "$@"; }
sql -c 'SELECT 1 FROM products LIMIT 0' >/dev/null \
    || die "no products table on $PGHOST:$PGPORT/$PGDATABASE (run scripts/migrate.sh first)"

start=$SECONDS
# the facet counts (sql/015) and the price bands' counts (sql/033)
# recounted once in a transaction that changes many products, not kept row
# by row by their triggers (switched off there)
facet_recount="DELETE FROM product_facet_counts;
INSERT INTO product_facet_counts (category_id, bucket, in_stock, n)
SELECT coalesce(category_id, 0), ecom_price_bucket(price), stock > 0, count(*)
  FROM products WHERE active GROUP BY 1, 2, 3;
DELETE FROM product_price_bands;
INSERT INTO product_price_bands (band, n)
SELECT ecom_price_band(price), count(*) FROM products WHERE active GROUP BY 1;"
elapsed() { printf '%ds' $((SECONDS - start)); }

if [ $replace = 1 ]; then
    n="$(sql -c "SELECT count(*) FROM products WHERE sku LIKE 'GEN-%'")"
    msg "deleting $n products of an earlier run"
    sql <<SQL
BEGIN;
DELETE FROM cart_items WHERE product_id IN (SELECT id FROM products WHERE sku LIKE 'GEN-%');
ALTER TABLE reviews DISABLE TRIGGER reviews_summary;
DELETE FROM reviews WHERE user_id IN (SELECT id FROM users WHERE email LIKE 'gen-reviewer-%');
ALTER TABLE reviews ENABLE TRIGGER reviews_summary;
DELETE FROM users WHERE email LIKE 'gen-reviewer-%';
ALTER TABLE products DISABLE TRIGGER products_facets_del;
ALTER TABLE products DISABLE TRIGGER products_price_bands_del;
ALTER TABLE products DISABLE TRIGGER products_name_postings_del;
DELETE FROM search_name_postings
 WHERE product_id IN (SELECT id FROM products WHERE sku LIKE 'GEN-%');
DELETE FROM products WHERE sku LIKE 'GEN-%';
ALTER TABLE products ENABLE TRIGGER products_facets_del;
ALTER TABLE products ENABLE TRIGGER products_price_bands_del;
ALTER TABLE products ENABLE TRIGGER products_name_postings_del;
$facet_recount
COMMIT;
SQL
elif [ "$(sql -c "SELECT count(*) FROM products WHERE sku LIKE 'GEN-%'")" != 0 ]; then
    die "generated products exist already: pass --replace to make them anew"
fi

# The leaves to fill: the existing tree's, or a generated tree.
leaves="$(sql -c 'SELECT count(*) FROM categories c WHERE NOT EXISTS (SELECT 1 FROM categories k WHERE k.parent_id = c.id)')"
if [ "$leaves" -lt 8 ]; then
    msg "categories: $leaves leaves in the tree, adding a generated tree of 8 x 6"
    sql <<'SQL'
BEGIN;
INSERT INTO categories (slug, name)
SELECT 'gen-d' || d, 'Department ' || d FROM generate_series(1, 8) d
ON CONFLICT (slug) DO NOTHING;
INSERT INTO categories (slug, name, parent_id)
SELECT 'gen-d' || d || '-' || l, 'Department ' || d || ' aisle ' || l,
       (SELECT id FROM categories WHERE slug = 'gen-d' || d)
  FROM generate_series(1, 8) d, generate_series(1, 6) l
ON CONFLICT (slug) DO NOTHING;
COMMIT;
SQL
    leafsql="SELECT id FROM categories WHERE slug ~ '^gen-d[0-9]+-[0-9]+\$' ORDER BY id"
else
    leafsql='SELECT c.id FROM categories c WHERE NOT EXISTS (SELECT 1 FROM categories k WHERE k.parent_id = c.id) ORDER BY c.id'
fi

# The vocabulary: the demo products' words (letters only, 3 to 12 of them),
# most frequent first, or a built-in list.
sql <<SQL
DROP TABLE IF EXISTS gen_leaves, gen_words;
CREATE UNLOGGED TABLE gen_leaves AS
SELECT row_number() OVER () - 1 AS i, id FROM ($leafsql) l;
CREATE UNLOGGED TABLE gen_words AS
SELECT row_number() OVER (ORDER BY n DESC, w) - 1 AS i, w FROM (
    SELECT lower(w) AS w, count(*) AS n
      FROM products p, regexp_split_to_table(p.name, '[^A-Za-z]+') w
     WHERE p.sku NOT LIKE 'GEN-%' AND length(w) BETWEEN 3 AND 12
     GROUP BY lower(w)) v;
INSERT INTO gen_words
SELECT i - 1, w FROM unnest(ARRAY['mug','lamp','chair','table','candle','holder',
    'heart','vintage','wooden','glass','metal','ceramic','cushion','cover','bag',
    'box','card','frame','clock','bottle','jar','bowl','plate','cup','tray',
    'garden','kitchen','christmas','star','flower','bird','white','red','pink',
    'blue','green','black','small','large','set','paper','ribbon','light',
    'string','hook','sign','tin','basket','doormat','notebook']) WITH ORDINALITY AS a(w, i)
 WHERE NOT EXISTS (SELECT 1 FROM gen_words);
SQL
nleaves="$(sql -c 'SELECT count(*) FROM gen_leaves')"
nwords="$(sql -c 'SELECT count(*) FROM gen_words')"
msg "generating $products products over $nleaves categories, names from $nwords words"

batch=100000
done_=0
while [ "$done_" -lt "$products" ]; do
    n=$(( products - done_ < batch ? products - done_ : batch ))
    sql <<SQL
BEGIN;
SELECT setseed($(( done_ / batch )) / 1000.0) \g /dev/null
ALTER TABLE products DISABLE TRIGGER products_facets_ins;
ALTER TABLE products DISABLE TRIGGER products_price_bands_ins;
ALTER TABLE products DISABLE TRIGGER products_name_postings_ins;
WITH ins AS (
INSERT INTO products (sku, name, description, price, currency, stock, active,
                      category_id, created_at, updated_at)
SELECT 'GEN-' || r.g,
       initcap(w1.w || ' ' || w2.w || ' ' || w3.w
               || CASE WHEN r.g % 3 = 0 THEN ' ' || w4.w ELSE '' END)
           || ' ' || (r.g % 997),
       'A generated product: ' || w2.w || ' ' || w4.w || ' ' || w1.w || ', '
           || w3.w || ' and ' || w4.w || ', made for the benchmark.',
       round(exp(ln(50) + power(r.u1, 1.3) * ln(1000)))::bigint,
       'GBP',
       CASE WHEN r.u2 < 0.15 THEN 0 ELSE 1 + floor(power(r.u3, 3) * 500)::int END,
       r.u4 >= 0.02,
       lf.id,
       now() - make_interval(secs => ($products - r.g) * (94608000.0 / $products)),
       now() - make_interval(secs => ($products - r.g) * (94608000.0 / $products))
  FROM (SELECT g, random() AS u1, random() AS u2, random() AS u3,
               random() AS u4, random() AS u5, random() AS u6,
               random() AS u7, random() AS u8, random() AS u9
          FROM generate_series($done_ + 1, $done_ + $n) g
        OFFSET 0) r
  JOIN gen_leaves lf ON lf.i = floor($nleaves * power(r.u5, 1.6))::int
  JOIN gen_words w1 ON w1.i = floor($nwords * power(r.u6, 2))::int
  JOIN gen_words w2 ON w2.i = floor($nwords * power(r.u7, 2))::int
  JOIN gen_words w3 ON w3.i = floor($nwords * power(r.u8, 2))::int
  JOIN gen_words w4 ON w4.i = floor($nwords * power(r.u9, 2))::int
 ORDER BY r.g
RETURNING id, search)
INSERT INTO search_name_postings (lexeme, product_id)
SELECT u.lexeme, ins.id FROM ins, unnest(ecom_name_lexemes(ins.search)) AS u(lexeme);
ALTER TABLE products ENABLE TRIGGER products_facets_ins;
ALTER TABLE products ENABLE TRIGGER products_price_bands_ins;
ALTER TABLE products ENABLE TRIGGER products_name_postings_ins;
$facet_recount
COMMIT;
SQL
    done_=$(( done_ + n ))
    msg "products: $done_ of $products ($(elapsed))"
done
sql -c 'DROP TABLE gen_leaves, gen_words'

if [ "$reviews" -gt 0 ] && [ "$products" -gt 0 ]; then
    msg "generating $reviews reviews by $(( (reviews + 49) / 50 )) reviewers ($(elapsed))"
    sql <<SQL
BEGIN;
SELECT setseed(0.5) \g /dev/null
INSERT INTO users (email, name, password_hash)
SELECT 'gen-reviewer-' || g || '@example.invalid', 'Reviewer ' || g, '!'
  FROM generate_series(1, ($reviews + 49) / 50) g;
CREATE TEMP TABLE gen_p AS
SELECT row_number() OVER (ORDER BY id) - 1 AS i, id FROM products WHERE sku LIKE 'GEN-%';
CREATE TEMP TABLE gen_u AS
SELECT row_number() OVER (ORDER BY id) - 1 AS i, id FROM users WHERE email LIKE 'gen-reviewer-%';
ALTER TABLE reviews DISABLE TRIGGER reviews_summary;
INSERT INTO reviews (product_id, user_id, rating, title, body, hidden, created_at, updated_at)
SELECT gp.id, gu.id,
       CASE WHEN r.u3 < 0.05 THEN 1 WHEN r.u3 < 0.10 THEN 2 WHEN r.u3 < 0.20 THEN 3
            WHEN r.u3 < 0.45 THEN 4 ELSE 5 END,
       'Review ' || r.g, 'A generated review for the benchmark.', r.u4 < 0.03,
       now() - make_interval(secs => r.u5 * 94608000), now()
  FROM (SELECT g, random() AS u1, random() AS u2, random() AS u3,
               random() AS u4, random() AS u5
          FROM generate_series(1, $reviews) g OFFSET 0) r
  JOIN gen_p gp ON gp.i = floor((SELECT count(*) FROM gen_p) * power(r.u1, 4))::bigint
  JOIN gen_u gu ON gu.i = floor((SELECT count(*) FROM gen_u) * r.u2)::bigint
 ORDER BY r.g
ON CONFLICT ON CONSTRAINT reviews_one_per_user DO NOTHING;
ALTER TABLE reviews ENABLE TRIGGER reviews_summary;
UPDATE products p SET rating_count = s.c, rating_sum = s.s
  FROM (SELECT product_id, count(*) AS c, sum(rating) AS s FROM reviews
         WHERE NOT hidden GROUP BY product_id) s
 WHERE p.id = s.product_id AND p.sku LIKE 'GEN-%';
COMMIT;
SQL
fi
msg "analyzing"
sql -c 'VACUUM (ANALYZE) products, categories, reviews, users, product_facet_counts'
msg "counting the search terms (sql/034: they choose how a q page is read)"
sql -c 'SELECT ecom_search_lexemes_refresh()' >/dev/null
msg "done: $(sql -c 'SELECT count(*) FROM products') products, $(sql -c 'SELECT count(*) FROM categories') categories, $(sql -c 'SELECT count(*) FROM reviews') reviews in $PGDATABASE ($(elapsed))"
