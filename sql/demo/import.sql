-- sql/demo/import.sql: builds the demo data set from the real public data in
-- ../shared/data (UCI Online Retail, Olist). Run by scripts/import-demo.sh;
-- docs/DEMO_DATA.md says what is real and what is synthetic.
--
-- Standalone use (psql, client-side \copy, so the files are read where psql
-- runs; the server needs no access to them):
--
--   ECOM_DATA_DIR=/abs/path/to/shared/data \
--     psql -X -q -v ON_ERROR_STOP=1 -v olist=0 -f sql/demo/import.sql
--
-- -v until=YYYY-MM-DD (scripts/import-demo.sh --until) keeps only the orders
-- placed before that date (and only the cancellations dated before it): the
-- catalogue, the customers and their ids are the same as in a full import,
-- so products first sold on or after the cut exist with no sales history.
-- Used to evaluate the recommendations on the later orders (make eval-recs,
-- docs/RECS_EVAL.md). Empty or unset: every order.
--
-- The files are streamed with `xz -dc` by the shell that psql starts for
-- \copy ... FROM PROGRAM; that shell expands "$ECOM_DATA_DIR" from psql's
-- environment, so no path is ever pasted into SQL.
--
-- Shape: the CSVs are staged into TEMP tables first (no locks taken on the
-- real tables), then ONE transaction replaces the demo-owned data:
--   * categories, products, orders, order_lines, order_events, cart_items,
--     idempotency_keys (and any later table that references them, through
--     CASCADE) are emptied with RESTART IDENTITY and rebuilt, so a second run
--     gives the same ids and rows;
--   * users are NOT truncated: the demo customers (@demo.mod-ecom.invalid)
--     are upserted by email, so staff or registered accounts survive and the
--     demo customers keep their ids from one run to the next.
-- Everything is set-based; ORDER BY ... COLLATE "C" keeps ids and tie-breaks
-- independent of the database's collation.

\set ON_ERROR_STOP on
\if :{?olist}
\else
\set olist 0
\endif
\if :{?until}
\else
\set until ''
\endif

SET client_min_messages = warning;   -- no "truncate cascades to ..." chatter
SET temp_buffers = '256MB';           -- staging stays in memory (set before any temp table)
SET work_mem = '128MB';               -- the GROUP BYs and sorts below fit in memory
SET TIME ZONE 'UTC';

-- Progress: every step ends with one query that formats its "==> ..." line
-- (row count, seconds the step took) and resets :t for the next step.
-- :clock and :step_s are SQL snippets, expanded (with :t) where used.
\set clock 'extract(epoch FROM clock_timestamp())'
\set step_s 'round((:clock - :t)::numeric, 2)'
SELECT :clock AS t0, :clock AS t \gset

---------------------------------------------------------------------------
-- 1. Staging: raw CSV rows, typed; empty fields become NULL.
---------------------------------------------------------------------------

-- UCI Online Retail; rn keeps the file order (first appearance of a line).
CREATE TEMP TABLE demo_retail (
    invoice_no   text,
    stock_code   text,
    description  text,
    quantity     integer,
    invoice_date timestamp,      -- no zone in the source; treated as UTC
    unit_price   numeric,
    customer_id  integer,
    country      text,
    rn           bigint GENERATED ALWAYS AS IDENTITY
);
\copy demo_retail (invoice_no, stock_code, description, quantity, invoice_date, unit_price, customer_id, country) FROM PROGRAM 'xz -dc "$ECOM_DATA_DIR/online-retail/online_retail.csv.xz"' WITH (FORMAT csv, HEADER)
SELECT format('==> staged online-retail/online_retail.csv: %s rows (%s s)', count(*), :step_s) AS msg, :clock AS t FROM
       demo_retail \gset
\echo :msg

-- Olist category translation: starts with a UTF-8 BOM (only in the header,
-- which HEADER skips) and uses CRLF (COPY accepts it; btrim below anyway).
CREATE TEMP TABLE demo_olist_category (
    name_pt text,
    name_en text
);
\copy demo_olist_category FROM PROGRAM 'xz -dc "$ECOM_DATA_DIR/olist/product_category_name_translation.csv.xz"' WITH (FORMAT csv, HEADER)
SELECT format('==> staged olist/product_category_name_translation.csv: %s rows (%s s)', count(*), :step_s) AS msg, :clock AS t FROM
       demo_olist_category \gset
\echo :msg

\if :olist
CREATE TEMP TABLE demo_olist_product (
    product_id          text,
    category_pt         text,
    name_length         integer,     -- "lenght" in the original header
    description_length  integer,
    photos_qty          integer,
    weight_g            integer,
    length_cm           integer,
    height_cm           integer,
    width_cm            integer
);
\copy demo_olist_product FROM PROGRAM 'xz -dc "$ECOM_DATA_DIR/olist/olist_products_dataset.csv.xz"' WITH (FORMAT csv, HEADER)
SELECT format('==> staged olist/olist_products_dataset.csv: %s rows (%s s)', count(*), :step_s) AS msg, :clock AS t FROM
       demo_olist_product \gset
\echo :msg
\endif

---------------------------------------------------------------------------
-- 2. Derived staging: one candidate product per stock code.
---------------------------------------------------------------------------

-- Stock codes differ only in letter case for ~110 items (15056bl / 15056BL):
-- they are the same article, so the code is upper-cased and merged.
-- The name is the most frequent description (trimmed, inner blanks
-- collapsed) among rows with a positive price: the warehouse's stock notes
-- ("damaged", "thrown away", "check", ...) are all entered at price 0 under
-- real codes and must never become a product name. Ties go to the first in
-- C order, so the result is the same on every database.
CREATE TEMP TABLE demo_retail_product AS
SELECT upper(stock_code) AS sku,
       mode() WITHIN GROUP (ORDER BY regexp_replace(btrim(description), '\s+', ' ', 'g') COLLATE "C")
           FILTER (WHERE unit_price > 0 AND btrim(description) <> '') AS name,
       mode() WITHIN GROUP (ORDER BY unit_price)
           FILTER (WHERE unit_price > 0) AS unit_price,
       min(invoice_date) AS first_sold
  FROM demo_retail
 GROUP BY 1;

-- Not products: service and accounting codes. Every code without a digit is
-- one (POST, DOT, M, m, D, S, B, BANK CHARGES, AMAZONFEE, CRUK, PADS,
-- DCGSSBOY/DCGSSGIRL); C2 and "Next Day Carriage" are carriage; gift_* and
-- the "Gift Voucher" codes are vouchers; codes that never sold at a
-- positive price carry only stock notes ("adjustment", "Unsaleable,
-- destroyed.") and have no price to give.
DELETE FROM demo_retail_product
 WHERE sku !~ '[0-9]'
    OR sku = 'C2'
    OR sku LIKE 'GIFT\_%'
    OR name IS NULL
    OR unit_price IS NULL
    OR name ~* '(^|\s)(carriage|postage)$|gift voucher|^(manual|discount|samples|adjust.*|bank charges|amazon fee)$';

SELECT format('==> derived products from online retail: %s stock codes (%s s)', count(*), :step_s) AS msg, :clock AS t FROM
       demo_retail_product \gset
\echo :msg

---------------------------------------------------------------------------
-- 3. Derived staging: orders, lines and cancellations, keyed by invoice and
--    sku (product and user ids are only looked up while inserting).
---------------------------------------------------------------------------

-- Sale rows: known customer, ordinary invoice (C = cancellation and
-- A = bad-debt adjustment are not orders), positive quantity and price,
-- a stock code that became a product above, placed before :until if set.
CREATE TEMP TABLE demo_sale AS
SELECT r.invoice_no, r.customer_id, r.invoice_date, r.quantity, r.unit_price, r.rn, p.sku
  FROM demo_retail r
  JOIN demo_retail_product p ON p.sku = upper(r.stock_code)
 WHERE r.customer_id IS NOT NULL
   AND r.invoice_no !~ '^[CA]'
   AND r.quantity > 0
   AND r.unit_price > 0
   AND r.invoice_date < coalesce(nullif(:'until', '')::timestamp, 'infinity');

-- One line per (invoice, product). When an invoice lists a product more
-- than once at different prices (86 cases), unit_price is the
-- quantity-weighted mean, so line_total = unit_price * quantity holds.
CREATE TEMP TABLE demo_line AS
SELECT invoice_no, sku,
       sum(quantity)::integer AS quantity,
       round(sum(quantity * unit_price) * 100 / sum(quantity))::bigint AS unit_price,
       min(rn) AS first_rn
  FROM demo_sale
 GROUP BY invoice_no, sku;

-- Cancellations. The data does not link a C invoice to the invoice it
-- reverses, so this is a heuristic: an order counts as cancelled when
-- EVERY one of its sale rows is matched by a cancellation row of the same
-- customer, stock code and (negated) quantity, dated at or after it; the
-- order was cancelled at the latest of those first matches. This catches
-- the obvious cases (e.g. the 80,995 paper birds of invoice 581483,
-- reversed by C581484 minutes later) and leaves partial returns alone.
CREATE TEMP TABLE demo_cancelled AS
SELECT invoice_no, max(first_cancel) AS cancelled_at
  FROM (SELECT s.invoice_no, s.rn, min(c.invoice_date) AS first_cancel
          FROM demo_sale s
          LEFT JOIN demo_retail c
                 ON c.invoice_no LIKE 'C%'
                AND c.customer_id = s.customer_id
                AND upper(c.stock_code) = s.sku
                AND c.quantity = -s.quantity
                AND c.invoice_date >= s.invoice_date
                AND c.invoice_date < coalesce(nullif(:'until', '')::timestamp, 'infinity')
         GROUP BY s.invoice_no, s.rn) m
 GROUP BY invoice_no
HAVING bool_and(first_cancel IS NOT NULL);

-- One order per invoice, numbered by time (ties by invoice number); with
-- the catalogue and orders truncated these ids are 1..n on every run.
CREATE TEMP TABLE demo_order AS
SELECT row_number() OVER (ORDER BY s.created_at, s.invoice_no COLLATE "C") AS id,
       s.invoice_no, s.customer_id, s.created_at, l.subtotal,
       c.cancelled_at AT TIME ZONE 'UTC' AS cancelled_at
  FROM (SELECT invoice_no, min(customer_id) AS customer_id,
               min(invoice_date) AT TIME ZONE 'UTC' AS created_at
          FROM demo_sale GROUP BY invoice_no) s
  JOIN (SELECT invoice_no, sum(unit_price * quantity) AS subtotal
          FROM demo_line GROUP BY invoice_no) l USING (invoice_no)
  LEFT JOIN demo_cancelled c USING (invoice_no);

SELECT format('==> derived orders from online retail: %s invoices, %s of them cancelled (%s s)',
              count(*), count(cancelled_at), :step_s) AS msg, :clock AS t FROM
       demo_order \gset
\echo :msg

---------------------------------------------------------------------------
-- 4. Replace the demo data: one transaction, all or nothing.
---------------------------------------------------------------------------
BEGIN;

TRUNCATE order_events, order_lines, orders, cart_items, idempotency_keys,
         products, categories
    RESTART IDENTITY CASCADE;

-- Categories. The Online Retail file has none, so the demo catalogue gets a
-- small two-level taxonomy, and every Online Retail product is filed under
-- one of its leaves by ORDERED KEYWORD RULES on its name: the first rule
-- whose pattern matches the upper-cased name (as whole words) wins;
-- a name that no rule matches goes to "other". DERIVED, not in the source
-- data; docs/DEMO_DATA.md lists the taxonomy and the rules (keep the two in
-- step). Roots first, then leaves, each in slug order, so the ids are the
-- same on every run.
CREATE TEMP TABLE demo_taxonomy (slug text PRIMARY KEY, name text NOT NULL, parent text);
INSERT INTO demo_taxonomy VALUES
    ('home', 'Home', NULL),
    ('home-lighting', 'Candles & lighting', 'home'),
    ('home-wall-decor', 'Wall decor, clocks & mirrors', 'home'),
    ('home-textiles', 'Cushions & textiles', 'home'),
    ('home-bathroom', 'Bathroom', 'home'),
    ('home-ornaments', 'Ornaments & decorations', 'home'),
    ('kitchen', 'Kitchen & dining', NULL),
    ('kitchen-baking', 'Baking', 'kitchen'),
    ('kitchen-tableware', 'Tableware', 'kitchen'),
    ('kitchen-pantry', 'Pantry & kitchen textiles', 'kitchen'),
    ('seasonal', 'Seasonal', NULL),
    ('seasonal-christmas', 'Christmas', 'seasonal'),
    ('seasonal-easter', 'Easter', 'seasonal'),
    ('accessories', 'Jewellery & accessories', NULL),
    ('accessories-jewellery', 'Jewellery', 'accessories'),
    ('accessories-fashion', 'Fashion accessories', 'accessories'),
    ('bags-storage', 'Bags & storage', NULL),
    ('bags-storage-bags', 'Bags', 'bags-storage'),
    ('bags-storage-boxes', 'Boxes, tins & baskets', 'bags-storage'),
    ('garden', 'Garden', NULL),
    ('garden-plants', 'Pots & planting', 'garden'),
    ('garden-decor', 'Garden decor', 'garden'),
    ('paper-goods', 'Stationery & party', NULL),
    ('paper-goods-cards', 'Cards', 'paper-goods'),
    ('paper-goods-gift-wrap', 'Gift wrap', 'paper-goods'),
    ('paper-goods-stationery', 'Stationery', 'paper-goods'),
    ('paper-goods-party', 'Party', 'paper-goods'),
    ('toys-games', 'Toys & games', NULL),
    ('toys-games-games', 'Games & puzzles', 'toys-games'),
    ('toys-games-toys', 'Toys', 'toys-games'),
    ('other', 'Other', NULL);
CREATE TEMP TABLE demo_category_rule (priority int PRIMARY KEY, slug text NOT NULL, words text NOT NULL);
INSERT INTO demo_category_rule VALUES
    (1, 'seasonal-christmas', 'CHRISTMAS|XMAS|ADVENT|SANTA|REINDEER|SNOWFLAKES?|SNOWMAN|SNOWMEN|NOEL|BAUBLES?|NATIVITY|SLEIGH'),
    (2, 'seasonal-easter', 'EASTER|CHICKS?|BUNNY|BUNNIES'),
    (3, 'toys-games-games', 'GAMES?|JIGSAWS?|PUZZLES?|DOMINO(E?S)?|PLAYING CARDS|SNAKES|LADDERS|BINGO|DICE|SKITTLES|QUIZ|CROQUET|MARBLES|CHESS|BOULES'),
    (4, 'paper-goods-party', 'PARTY|BALLOONS?|BUNTING|PINATA|CAKE CANDLES|BIRTHDAY CANDLES?|PAPER CHAIN|CONFETTI|PARTY BAGS?'),
    (5, 'paper-goods-gift-wrap', 'WRAP|WRAPPING|GIFT BAGS?|GIFT BOX(ES)?|GIFT TAGS?|TAGS|RIBBONS?|TISSUE PAPER|STICKERS?|TAPE|ENVELOPES?'),
    (6, 'paper-goods-cards', 'CARDS?|POSTCARDS?|GREETING'),
    (7, 'home-lighting', 'T-LIGHTS?|T LIGHTS?|TLIGHTS?|TEA ?LIGHTS?|CANDLES?|CANDLEHOLDER|CANDLESTICKS?|LANTERNS?|LIGHTS?|LAMPS?|LAMPSHADE|CHANDELIER|INCENSE|OIL BURNER|TORCH|NIGHTLIGHT|CANDLEPOTS?'),
    (8, 'accessories-fashion', 'HAIR|HAIRCLIPS?|SLIDES?|GRIPS?|BOBBLES?|ALICE BAND|HEADBAND|PURSE|HANDBAG|UMBRELLA|SCARF|GLOVES?|WALLET|KEY ?RINGS?|PARASOL|HAT|SUNGLASSES|COMPACT MIRROR|MAKE ?UP|KEY FOB|PASSPORT COVER|SHOPPER|HAND WARMER|SLIPPERS?|SOCKS?|PONCHO|SHOWER CAP'),
    (9, 'kitchen-baking', 'CAKES?|CUPCAKES?|BAKING|BAKE|CASES|CUTTERS?|MOULDS?|ICING|SPATULA|PASTRY|BISCUITS?|MUFFIN'),
    (10, 'kitchen-tableware', 'MUGS?|CUPS?|SAUCERS?|PLATES?|BOWLS?|CUTLERY|TEAPOT|TEA POT|TEACUPS?|NAPKINS?|TRAYS?|DISH|DISHES|BEAKERS?|TUMBLERS?|JUGS?|COASTERS?|PLACEMATS?|STRAWS?|SPOONS?|FORKS?|CHOPSTICKS|GOBLETS?|WINE GLASS(ES)?|TEA SET|CAKESTAND|DINNER|PICNIC'),
    (11, 'accessories-jewellery', 'NECKLACES?|NECKL|BRACELETS?|EARRINGS|RINGS?|BROOCH(ES)?|PENDANTS?|CHARMS?|BANGLES?|DIAMANTE|BEADS?|BEADED|PEARLS?|JEWELLERY|JEWELLED|CHOKER|ANKLET|TIARA|EARRING|LARIAT'),
    (12, 'home-textiles', 'HOT WATER BOTTLE|CUSHIONS?|THROW|BLANKET|QUILT|DOORMAT|CURTAINS?|COVER|BEDSPREAD|PILLOW|RUG|TEA COSY|COSY'),
    (13, 'bags-storage-bags', 'BAGS?|TOTE|BACKPACK|RUCKSACK|SATCHEL|WASHBAG|HOLDALL'),
    (14, 'kitchen-pantry', 'JARS?|JAM|BOTTLES?|LUNCH|PANTRY|KITCHEN|APRON|OVEN|TEA TOWELS?|SCALES|CHOPPING|FOOD|DOILY|DOILIES|COFFEE|TEA|SUGAR|MILK|RECIPE|BREAD|SPICE|SALT|PEPPER|EGG|EGGS|TIMER|GRINDER|COLANDER|FUNNEL'),
    (15, 'home-bathroom', 'BATHROOM|BATH|SOAP|TOILET|TOOTHBRUSH|SPONGE|TOWELS?|TISSUES|WASH'),
    (16, 'home-wall-decor', 'SIGNS?|PLAQUE|FRAMES?|MIRRORS?|CLOCKS?|WALL|PICTURES?|PRINTS?|ART|HOOKS?|COAT RACK|LETTERS?|CHALKBOARD|BLACKBOARD|NUMBER|POSTER|CANVAS|HANGER'),
    (17, 'toys-games-toys', 'TOYS?|DOLLS?|DOLLY|TEDDY|KIDS|CHILDRENS|CHILDS|CHILD|SPACEBOY|FELTCRAFT|CRAYONS|COLOURING|PAINTING SET|BUBBLES|SPINNING TOPS?|PUPPETS?|SOFT|KNITTING|MONEY BOX|PIGGY BANK|ROBOT|TRAIN|KITE|BALL|SKIPPING|YO-?YO|TATTOOS|MAGIC|BABY|PLAYHOUSE|WATER PISTOL|SPINNING|LUDO|HELICOPTER|ROCKING HORSE|MODELLING CLAY'),
    (18, 'bags-storage-boxes', 'STORAGE|BOX|BOXES|TINS?|BASKETS?|DRAWERS?|CABINET|CHEST|TRINKET|CASE|HAMPER|CRATES?|TRUNK|CADDY|ORGANISER|RACK'),
    (19, 'garden-plants', 'PLANTS?|PLANTERS?|POTS?|FLOWER ?POTS?|SEEDS?|WATERING|HERB|GROW|TROWEL|GARDENING|GREENHOUSE|CLOCHE'),
    (20, 'garden-decor', 'GARDEN|ZINC|GNOME|BIRD ?FEEDER|BIRD ?HOUSE|BIRD TABLE|WIND ?CHIMES?|WINDMILL|OUTDOOR|WELLIES|DOORSTOP|FENCE|NESTING'),
    (21, 'paper-goods-stationery', 'NOTEBOOKS?|PENCILS?|PENS?|PAPER|BOOKS?|NOTES?|NOTEPAD|DIARY|ERASERS?|RUBBERS?|RULERS?|CALENDAR|JOURNAL|CHALK|MAGNETS?|STAMPS?|SHARPENER|CLIPBOARD|PHOTO ALBUM|ALBUM|BOOKMARKS?|DESK|MEMO|STATIONERY|PAPERWEIGHT|STENCIL|CRAFT|HOLE PUNCH|SKETCHBOOK|MEMOBOARD|SCISSORS?'),
    (22, 'home-ornaments', 'DECORATIONS?|DECORATIVE|HANGING|ORNAMENTS?|GARLAND|WREATH|FEATHERS?|HEARTS?|VASES?|FLOWERS?|BIRDS?|BUTTERFL(Y|IES)|STAR|STARS|BELLS?|WOODEN|CERAMIC|GLASS|METAL|CHIMES?|SCULPTURE|FIGURE|ANGELS?|DOVE|MOBILE|KNOB|DOOR|HOLDER|STAND|CRYSTAL|ROSE|ROSES');
INSERT INTO categories (slug, name)
SELECT slug, name FROM demo_taxonomy WHERE parent IS NULL ORDER BY slug COLLATE "C";
INSERT INTO categories (slug, name, parent_id)
SELECT t.slug, t.name, c.id
  FROM demo_taxonomy t JOIN categories c ON c.slug = t.parent
 ORDER BY t.slug COLLATE "C";
SELECT format('==> categories (derived taxonomy): %s rows, %s leaves (%s s)', count(*),
              count(*) FILTER (WHERE NOT EXISTS (SELECT 1 FROM categories k WHERE k.parent_id = c.id)), :step_s) AS msg,
       :clock AS t FROM categories c \gset
\echo :msg

\if :olist
-- The 71 Olist categories, for the Olist products only (without --olist
-- they would all be empty): under one root, "olist" ("Olist marketplace").
-- slug = English name lower-cased with anything outside [a-z0-9_-]
-- replaced by '_' (none is a slug of the taxonomy above); name = English name with underscores as
-- spaces, title-cased (original typos such as "fashio_female_clothing" are
-- kept).
INSERT INTO categories (slug, name) VALUES ('olist', 'Olist marketplace');
INSERT INTO categories (slug, name, parent_id)
SELECT slug, name, (SELECT id FROM categories WHERE slug = 'olist')
  FROM (SELECT regexp_replace(lower(btrim(name_en, E' \r\n\ufeff')), '[^a-z0-9_-]', '_', 'g') AS slug,
               initcap(replace(btrim(name_en, E' \r\n\ufeff'), '_', ' ')) AS name
          FROM demo_olist_category) c
 ORDER BY slug COLLATE "C";
SELECT format('==> categories (olist): %s rows (%s s)', count(*), :step_s) AS msg, :clock AS t FROM
       categories c WHERE c.parent_id = (SELECT id FROM categories WHERE slug = 'olist') \gset
\echo :msg
\endif

-- UCI products. Real: sku, name, price (the most frequent positive unit
-- price, in pence). Derived: the category, by the keyword rules above. Synthetic: stock,
-- because the data holds no stock levels: 20 + (first 32 bits of md5(sku))
-- mod 480, i.e. a fixed value in 20..499 per sku (md5, unlike hashtext, is
-- the same on every platform). created_at/updated_at = first sale.
INSERT INTO products (sku, name, description, price, currency, stock, active,
                      category_id, created_at, updated_at)
SELECT sku, name, '', round(unit_price * 100)::bigint, 'GBP',
       20 + (('x' || substr(md5(sku), 1, 8))::bit(32)::bigint % 480)::integer,
       true,
       coalesce((SELECT c.id FROM demo_category_rule r JOIN categories c ON c.slug = r.slug
                  WHERE upper(p.name) ~ ('\m(' || r.words || ')\M')
                  ORDER BY r.priority LIMIT 1),
                (SELECT id FROM categories WHERE slug = 'other')),
       first_sold AT TIME ZONE 'UTC', first_sold AT TIME ZONE 'UTC'
  FROM demo_retail_product p
 ORDER BY sku COLLATE "C";
SELECT format('==> products (online retail, GBP): %s rows (%s s)', count(*), :step_s) AS msg, :clock AS t FROM
       products WHERE currency = 'GBP' \gset
\echo :msg

\if :olist
-- Olist products, for catalogue scale. Real: product id, category,
-- weight and dimensions. The data set has no names and NO PRICES:
--   name  = '<Category English name> <first 8 chars of product_id>'
--           (Portuguese category title-cased for the 2 untranslated ones,
--           'Olist Product' for the 610 without category);
--   price = SYNTHETIC, from the weight: (990 + 2 * weight_g) centavos,
--           rounded down to whole reais and ending in ,90
--           (0 g -> R$ 9,90; 700 g -> R$ 23,90; 40 kg -> R$ 818,90);
--   stock = SYNTHETIC, same md5 rule as above;
--   created_at = the import time (the file has no dates).
INSERT INTO products (sku, name, description, price, currency, stock, active,
                      category_id)
SELECT 'olist-' || p.product_id,
       coalesce(c.name, initcap(replace(nullif(p.category_pt, ''), '_', ' ')), 'Olist Product')
           || ' ' || left(p.product_id, 8),
       concat_ws(' ', 'Olist catalogue item ' || p.product_id || '.',
                 'Weight ' || p.weight_g || ' g.',
                 'Size ' || p.length_cm || ' x ' || p.width_cm || ' x ' || p.height_cm || ' cm.'),
       ((990 + 2 * coalesce(p.weight_g, 0)::bigint) / 100) * 100 + 90,
       'BRL',
       20 + (('x' || substr(md5('olist-' || p.product_id), 1, 8))::bit(32)::bigint % 480)::integer,
       true, c.id
  FROM demo_olist_product p
  LEFT JOIN demo_olist_category t ON t.name_pt = p.category_pt
  LEFT JOIN categories c
         ON c.slug = regexp_replace(lower(btrim(t.name_en, E' \r\n\ufeff')), '[^a-z0-9_-]', '_', 'g')
 ORDER BY p.product_id COLLATE "C";
SELECT format('==> products (olist, BRL, synthetic prices): %s rows (%s s)', count(*), :step_s) AS msg, :clock AS t FROM
       products WHERE currency = 'BRL' \gset
\echo :msg
\endif

-- Customers: every CustomerID in the file (4,372), including those whose
-- only invoices are cancellations. password_hash '!' is not a valid hash
-- of any scheme, so these accounts can never log in. Upserted, not
-- truncated: see the header. created_at = their first invoice.
INSERT INTO users (email, name, password_hash, is_staff, created_at, updated_at)
SELECT 'customer' || customer_id || '@demo.mod-ecom.invalid',
       'Customer ' || customer_id,
       '!', false,
       min(invoice_date) AT TIME ZONE 'UTC', min(invoice_date) AT TIME ZONE 'UTC'
  FROM demo_retail
 WHERE customer_id IS NOT NULL
 GROUP BY customer_id
 ORDER BY customer_id
    ON CONFLICT ((lower(email))) DO UPDATE
   SET name = EXCLUDED.name, password_hash = EXCLUDED.password_hash,
       is_staff = false, created_at = EXCLUDED.created_at,
       updated_at = EXCLUDED.updated_at;
SELECT format('==> users (online retail customers): %s rows (%s s)', count(*), :step_s) AS msg, :clock AS t FROM
       users WHERE email LIKE '%@demo.mod-ecom.invalid' \gset
\echo :msg

-- Orders: 'delivered', or 'cancelled' (see demo_cancelled), in GBP, no
-- discount; updated_at is the cancellation time for cancelled ones.
INSERT INTO orders (id, user_id, status, currency, subtotal, discount, total,
                    created_at, updated_at)
SELECT o.id, u.id,
       CASE WHEN o.cancelled_at IS NULL THEN 'delivered' ELSE 'cancelled' END,
       'GBP', o.subtotal, 0, o.subtotal, o.created_at,
       coalesce(o.cancelled_at, o.created_at)
  FROM demo_order o
  JOIN users u ON lower(u.email) = 'customer' || o.customer_id || '@demo.mod-ecom.invalid'
 ORDER BY o.id;
SELECT format('==> orders (online retail invoices): %s rows, %s delivered, %s cancelled (%s s)',
              count(*), count(*) FILTER (WHERE status = 'delivered'),
              count(*) FILTER (WHERE status = 'cancelled'), :step_s) AS msg, :clock AS t FROM
       orders \gset
\echo :msg

-- Lines keep the order's row order from the file; name and sku are the
-- product's (the snapshot an order line would have taken).
INSERT INTO order_lines (order_id, product_id, sku, name, unit_price, quantity, line_total)
SELECT o.id, p.id, p.sku, p.name, l.unit_price, l.quantity, l.unit_price * l.quantity
  FROM demo_line l
  JOIN demo_order o USING (invoice_no)
  JOIN products p ON p.sku = l.sku
 ORDER BY o.id, l.first_rn;
SELECT format('==> order lines: %s rows (%s s)', count(*), :step_s) AS msg, :clock AS t FROM
       order_lines \gset
\echo :msg

-- The audit trail (actor NULL: nobody on the API did it). A delivered
-- order went straight to 'delivered' when placed; a cancelled one was
-- placed ('pending', as POST /orders/ records it) and cancelled later.
INSERT INTO order_events (order_id, actor_id, from_status, to_status, created_at)
SELECT id, NULL, from_status, to_status, at
  FROM (SELECT id, NULL AS from_status, 'delivered' AS to_status, created_at AS at, 1 AS seq
          FROM demo_order WHERE cancelled_at IS NULL
        UNION ALL
        SELECT id, NULL, 'pending', created_at, 1
          FROM demo_order WHERE cancelled_at IS NOT NULL
        UNION ALL
        SELECT id, 'pending', 'cancelled', cancelled_at, 2
          FROM demo_order WHERE cancelled_at IS NOT NULL) e
 ORDER BY id, seq;
SELECT format('==> order events: %s rows (%s s)', count(*), :step_s) AS msg, :clock AS t FROM
       order_events \gset
\echo :msg

-- Explicit ids were written above: move every sequence past the data so the
-- API's next INSERT cannot collide.
SELECT setval(pg_get_serial_sequence('categories',   'id'), coalesce(max(id), 0) + 1, false) FROM categories   \gset
SELECT setval(pg_get_serial_sequence('products',     'id'), coalesce(max(id), 0) + 1, false) FROM products     \gset
SELECT setval(pg_get_serial_sequence('users',        'id'), coalesce(max(id), 0) + 1, false) FROM users        \gset
SELECT setval(pg_get_serial_sequence('orders',       'id'), coalesce(max(id), 0) + 1, false) FROM orders       \gset
SELECT setval(pg_get_serial_sequence('order_lines',  'id'), coalesce(max(id), 0) + 1, false) FROM order_lines  \gset
SELECT setval(pg_get_serial_sequence('order_events', 'id'), coalesce(max(id), 0) + 1, false) FROM order_events \gset

COMMIT;
SELECT format('==> committed (%s s)', :step_s) AS msg, :clock AS t \gset
\echo :msg

ANALYZE categories, products, users, orders, order_lines, order_events;
SELECT format('==> analyzed (%s s)', :step_s) AS msg, :clock AS t \gset
\echo :msg

-- the search terms' document frequencies (sql/034), which choose how a
-- q page is read
SELECT ecom_search_lexemes_refresh() AS lexemes \gset
SELECT format('==> search lexemes counted: %s (%s s)', :lexemes, :step_s) AS msg, :clock AS t \gset
\echo :msg

SELECT format('==> summary: %s products, %s categories, %s users, %s orders, %s order lines (%s s in the database session)',
              (SELECT count(*) FROM products), (SELECT count(*) FROM categories),
              (SELECT count(*) FROM users), (SELECT count(*) FROM orders),
              (SELECT count(*) FROM order_lines), round((:clock - :t0)::numeric, 1)) AS msg \gset
\echo :msg
