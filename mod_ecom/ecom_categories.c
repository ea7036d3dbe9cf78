/*
 * ecom_categories.c: the category tree.
 *
 *   GET    /categories/          the whole tree: {items: [root nodes]}
 *   GET    /categories/{slug}/   one node with its subtree and ancestors
 *   POST   /categories/          staff: {slug, name, parent?}
 *   PATCH  /categories/{slug}/   staff: {name?, slug?, parent?}
 *   DELETE /categories/{slug}/   staff: only an empty category
 *
 * A node is {id, slug, name, parent (slug or null), product_count,
 * children: [nodes, by slug]}, where product_count is the number of
 * active products filed in the node or anywhere below it. Both reads run
 * one statement (every category with the count of active products filed
 * directly under it, through products_category_active) and build the tree
 * and the subtree sums here; they are served from the response cache's
 * categories section, which category and product writes invalidate.
 *
 * Writes run in one transaction that first takes a transaction-scoped
 * advisory lock (class 7316003) held by every category write, so the
 * checks they make (slug free, parent not below the node, no children)
 * still hold when they write; the row a write names is locked FOR UPDATE,
 * which also makes a product insert or move into it wait (its foreign key
 * check locks the row FOR KEY SHARE). A move under the node's own subtree
 * is a 409 category-cycle (sql/012's trigger is the last guard).
 */
#include "ecom_resource.h"
#include "ecom_http.h"
#include "ecom_cache.h"
#include "ecom_util.h"

/* The tree statement reads at most this many categories; POST refuses the
 * category past it (409 category-limit), so the tree is never cut. */
#define CATEGORY_MAX 10000

enum { CAT_ID, CAT_SLUG, CAT_NAME, CAT_PARENT_ID, CAT_DIRECT, CAT_NCOLS };
/* single-column statements: ecom_categories_lookup, ecom_categories_insert,
 * ecom_categories_slug_taken, ecom_categories_ancestor */
enum { ONE_COL };
enum { CAT_HAS_CHILDREN, CAT_HAS_PRODUCTS };

static const ecom_stmt category_sql[] = {
    /* every category with its count of active products filed directly
     * under it; slug order makes the children's order */
    { "ecom_categories_tree",
      "SELECT c.id, c.slug, c.name, c.parent_id, "
      "(SELECT count(*) FROM products pr WHERE pr.category_id = c.id "
      " AND pr.active) "
      "FROM categories c ORDER BY c.slug COLLATE \"C\" LIMIT %s::int",
      ECOM_STMT_READ | ECOM_STMT_LIST },
    { "ecom_categories_lock", "SELECT pg_advisory_xact_lock(7316003)", 0 },
    { "ecom_categories_lookup",
      "SELECT id FROM categories WHERE slug = %s FOR UPDATE", 0 },
    { "ecom_categories_insert",
      "INSERT INTO categories (slug, name, parent_id) "
      "SELECT %s, %s, %s::bigint "
      "WHERE (SELECT count(*) FROM categories) < %s::int "
      "ON CONFLICT (slug) DO NOTHING RETURNING id", 0 },
    { "ecom_categories_slug_taken",
      "SELECT id FROM categories WHERE slug = %s AND id <> %s::bigint",
      ECOM_STMT_READ },
    /* a row when category $2 is $1 or one of $1's ancestors */
    { "ecom_categories_ancestor",
      "WITH RECURSIVE up(id) AS (SELECT %s::bigint UNION "
      "SELECT c.parent_id FROM categories c JOIN up ON c.id = up.id "
      "WHERE c.parent_id IS NOT NULL) "
      "SELECT 1 FROM up WHERE id = %s::bigint", ECOM_STMT_READ },
    /* a NULL keeps name and slug; parent has an explicit "set" flag
     * because null (the root) is a value it can take */
    { "ecom_categories_update",
      "UPDATE categories SET name = COALESCE(%s, name), "
      "slug = COALESCE(%s, slug), "
      "parent_id = CASE WHEN %s::boolean THEN %s::bigint ELSE parent_id END "
      "WHERE id = %s::bigint", 0 },
    { "ecom_categories_contents",
      "SELECT EXISTS (SELECT 1 FROM categories WHERE parent_id = %s::bigint), "
      "EXISTS (SELECT 1 FROM products WHERE category_id = %s::bigint)",
      ECOM_STMT_READ },
    { "ecom_categories_delete",
      "DELETE FROM categories WHERE id = %s::bigint", 0 },
    { NULL, NULL, 0 }
};

/* ---- the tree ------------------------------------------------------------ */

typedef struct cat_node cat_node;
struct cat_node {
    long long id, parent_id;        /* parent_id 0: a root */
    const char *slug, *name;
    long long direct, total;        /* active products here / in the subtree */
    cat_node *parent, *first, *last, *next;    /* children in slug order */
    int seen;
};

typedef struct {
    cat_node *nodes;
    int n;
    cat_node *first_root, *last_root;
} cat_tree;

static void append(cat_node **first, cat_node **last, cat_node *c)
{
    if (*last) {
        (*last)->next = c;
    }
    else {
        *first = c;
    }
    *last = c;
}

/* Subtree sums, from the roots down: a node that no root reaches (only a
 * cycle, which sql/012 forbids, could do that) is left out of the tree. */
static long long sum(cat_node *n)
{
    n->seen = 1;
    n->total = n->direct;
    for (cat_node *c = n->first; c; c = c->next) {
        if (!c->seen) {
            n->total += sum(c);
        }
    }
    return n->total;
}

static ecom_err load_tree(ecom_req *q, cat_tree *t)
{
    const char *args[1] = { apr_itoa(q->r->pool, CATEGORY_MAX) };
    apr_hash_t *by_id = apr_hash_make(q->r->pool);
    apr_dbd_results_t *res;
    apr_dbd_row_t *row = NULL;
    ecom_err e;
    int i, nrows;

    memset(t, 0, sizeof(*t));
    if ((e = ecom_db_select(q, "ecom_categories_tree", &res, 1, args))) {
        return e;
    }
    nrows = ecom_db_nrows(q, res);
    t->nodes = apr_pcalloc(q->r->pool, sizeof(cat_node) * (nrows > 0 ? nrows : 1));
    while (ecom_db_next(q, res, &row)) {
        cat_node *n;
        const char *pid;
        if (t->n == nrows) {
            continue;   /* read the result to its end */
        }
        n = &t->nodes[t->n++];
        n->id = ecom_db_ll(q, row, CAT_ID);
        n->slug = apr_pstrdup(q->r->pool, ecom_db_get(q, row, CAT_SLUG));
        n->name = apr_pstrdup(q->r->pool, ecom_db_get(q, row, CAT_NAME));
        pid = ecom_db_get(q, row, CAT_PARENT_ID);
        n->parent_id = pid ? ecom_db_ll(q, row, CAT_PARENT_ID) : 0;
        n->direct = ecom_db_ll(q, row, CAT_DIRECT);
        apr_hash_set(by_id, &n->id, sizeof(n->id), n);
    }
    for (i = 0; i < t->n; i++) {
        cat_node *n = &t->nodes[i];
        cat_node *p = n->parent_id
                      ? apr_hash_get(by_id, &n->parent_id, sizeof(n->parent_id))
                      : NULL;
        if (p) {
            n->parent = p;
            append(&p->first, &p->last, n);
        }
        else {
            append(&t->first_root, &t->last_root, n);
        }
    }
    for (cat_node *r = t->first_root; r; r = r->next) {
        sum(r);
    }
    return ECOM_OK;
}

static cat_node *find_slug(cat_tree *t, const char *slug)
{
    for (int i = 0; i < t->n; i++) {
        if (t->nodes[i].seen && !strcmp(t->nodes[i].slug, slug)) {
            return &t->nodes[i];
        }
    }
    return NULL;
}

/* A node and its subtree as JSON (not yet owned: the caller's container
 * takes it, or the caller owns it). */
static json_t *node_json(cat_node *n)
{
    json_t *children = json_array();
    json_t *j = json_pack("{s:I, s:s, s:s, s:s?, s:I, s:o}",
                          "id", (json_int_t)n->id, "slug", n->slug,
                          "name", n->name,
                          "parent", n->parent ? n->parent->slug : NULL,
                          "product_count", (json_int_t)n->total,
                          "children", children);

    for (cat_node *c = n->first; j && c; c = c->next) {
        json_array_append_new(children, node_json(c));
    }
    return j;
}

/* The answer for one node: the node, its subtree, and its ancestors from
 * the root down. */
static int send_node(ecom_req *q, cat_tree *t, const char *slug, int status)
{
    cat_node *n = find_slug(t, slug);
    json_t *j, *anc;

    if (!n) {
        return ecom_problem(q, HTTP_NOT_FOUND, "not-found",
                            "No such category.");
    }
    j = ecom_jown(q, node_json(n));
    anc = json_array();
    for (cat_node *a = n->parent; anc && a; a = a->parent) {
        json_array_insert_new(anc, 0, json_pack("{s:I, s:s, s:s}",
                                                "id", (json_int_t)a->id,
                                                "slug", a->slug,
                                                "name", a->name));
    }
    if (!j || json_object_set_new(j, "ancestors", anc) != 0) {
        return ecom_fail(q, ECOM_E_INTERNAL);
    }
    return ecom_json(q, status, j);
}

/* The whole tree: {items: [the roots, each with its subtree]}. */
static int send_tree(ecom_req *q, cat_tree *t)
{
    json_t *j = ecom_jobject(q), *items = json_array();

    for (cat_node *r = t->first_root; items && r; r = r->next) {
        json_array_append_new(items, node_json(r));
    }
    if (!j || json_object_set_new(j, "items", items) != 0) {
        return ecom_fail(q, ECOM_E_INTERNAL);
    }
    return ecom_json(q, HTTP_OK, j);
}

/* No query parameter changes the answers: their cache keys have none. */
static const char *const no_params[] = { NULL };

/* GET of the tree (slug NULL) or of one node, through the cache. */
static int category_read(ecom_req *q, const char *slug)
{
    const char *ckey = ecom_cache_key(q, ECOM_CACHE_CATEGORIES,
                                      slug ? apr_pstrcat(q->r->pool,
                                                         "category/", slug,
                                                         NULL)
                                           : "categories", no_params);
    cat_tree t;
    ecom_err e;
    int rv;

    if (ecom_cache_serve(q, ckey)) {
        return HTTP_OK;
    }
    if ((e = load_tree(q, &t))) {
        return ecom_fail(q, e);
    }
    rv = slug ? send_node(q, &t, slug, HTTP_OK) : send_tree(q, &t);
    if (rv == HTTP_OK) {
        ecom_cache_store(q, ckey);
    }
    return rv;
}

static int categories_tree(ecom_req *q)
{
    return category_read(q, NULL);
}

static int category_get(ecom_req *q)
{
    return category_read(q, q->slug);
}

/* ---- writes -------------------------------------------------------------- */

typedef struct {
    const char *slug, *name, *parent;   /* parent: a slug, or NULL */
    int parent_set;                     /* "parent" was sent (maybe null) */
} cat_fields;

/* Validates the body into f; 0 or the status of the 422 it set. */
static int read_fields(ecom_req *q, cat_fields *f, int creating)
{
    static const char *const known[] = { "slug", "name", "parent", NULL };
    json_t *errs = ecom_jarray(q), *v;
    int rv;

    ecom_body_unknown(q, q->body, "", known, errs);
    rv = ecom_get_str(q->body, "slug", 1, 100, &f->slug, errs);
    if (rv == 1 && !ecom_slug_valid(f->slug, strlen(f->slug))) {
        ecom_field_error(errs, "slug", "must be 1 to 100 characters of a-z, "
                         "0-9, '_' and '-'");
    }
    else if (rv == 0 && creating) {
        ecom_field_error(errs, "slug", "is required");
    }
    if (ecom_get_str(q->body, "name", 1, 200, &f->name, errs) == 0
        && creating) {
        ecom_field_error(errs, "name", "is required");
    }
    if ((v = json_object_get(q->body, "parent"))) {
        f->parent_set = 1;
        if (!json_is_null(v)
            && ecom_get_str(q->body, "parent", 1, 100, &f->parent, errs) == 1
            && !ecom_slug_valid(f->parent, strlen(f->parent))) {
            ecom_field_error(errs, "parent", "is not a known category");
        }
    }
    if (json_array_size(errs)) {
        return ecom_invalid(q, errs);
    }
    return 0;
}

/* The lock every category write takes first, then the row named by slug,
 * FOR UPDATE: its id in *id, or 0 when there is no such category. */
static ecom_err lock_category(ecom_req *q, const char *slug, long long *id)
{
    const char *args[1] = { slug };
    apr_dbd_row_t *row;
    ecom_err e = ecom_db_one(q, "ecom_categories_lookup", &row, 1, args);

    *id = 0;
    if (e == ECOM_OK) {
        *id = ecom_db_ll(q, row, ONE_COL);
    }
    return e == ECOM_E_NOT_FOUND ? ECOM_OK : e;
}

static ecom_err take_lock(ecom_req *q)
{
    const char *none[1] = { NULL };
    apr_dbd_row_t *row;

    return ecom_db_one(q, "ecom_categories_lock", &row, 0, none);
}

/* The id of the parent the body names, or a 422 on "parent". */
static ecom_tx_end find_parent(ecom_req *q, const char *slug, long long *id)
{
    json_t *errs;
    ecom_err e;

    if ((e = lock_category(q, slug, id))) {
        return ecom_tx_fail(e);
    }
    if (!*id) {
        errs = ecom_jarray(q);
        ecom_field_error(errs, "parent", "is not a known category");
        ecom_invalid(q, errs);
        return ECOM_TX_REFUSE;
    }
    return ECOM_TX_COMMIT;
}

static ecom_tx_end slug_taken(ecom_req *q)
{
    ecom_problem(q, HTTP_CONFLICT, "conflict",
                 "Another category already has this slug.");
    return ECOM_TX_REFUSE;
}

/* The lock, then the category the path names (a 404 when there is none). */
static ecom_tx_end lock_named(ecom_req *q, long long *id)
{
    ecom_err e;

    if ((e = take_lock(q)) || (e = lock_category(q, q->slug, id))) {
        return ecom_tx_fail(e);
    }
    if (!*id) {
        ecom_problem(q, HTTP_NOT_FOUND, "not-found", "No such category.");
        return ECOM_TX_REFUSE;
    }
    return ECOM_TX_COMMIT;
}

static ecom_tx_end create(ecom_req *q, void *data)
{
    cat_fields *f = data;
    const char *args[4];
    apr_dbd_results_t *res;
    long long parent = 0, other;
    ecom_tx_end end;
    ecom_err e;

    if ((e = take_lock(q))) {
        return ecom_tx_fail(e);
    }
    if (f->parent && (end = find_parent(q, f->parent, &parent)).err) {
        return end;
    }
    args[0] = f->slug;
    args[1] = f->name;
    args[2] = parent ? ECOM_LL(q, parent) : NULL;
    args[3] = apr_itoa(q->r->pool, CATEGORY_MAX);
    if ((e = ecom_db_select(q, "ecom_categories_insert", &res, 4, args))) {
        return ecom_tx_fail(e);
    }
    if (ecom_db_row(q, res)) {
        return ECOM_TX_COMMIT;
    }
    if ((e = lock_category(q, f->slug, &other))) {
        return ecom_tx_fail(e);
    }
    if (other) {
        return slug_taken(q);
    }
    ecom_problem(q, HTTP_CONFLICT, "category-limit",
                 apr_psprintf(q->r->pool, "There are already %d categories, "
                              "the most the tree holds.", CATEGORY_MAX));
    return ECOM_TX_REFUSE;
}

/* Answers a write with the node as it now is. */
static int send_written(ecom_req *q, const char *slug, int status)
{
    cat_tree t;
    ecom_err e;

    if ((e = load_tree(q, &t))) {
        return ecom_fail(q, e);
    }
    return send_node(q, &t, slug, status);
}

static ecom_tx_end update(ecom_req *q, void *data)
{
    cat_fields *f = data;
    const char *args[5];
    apr_dbd_results_t *res;
    long long id, parent = 0;
    ecom_tx_end end;
    ecom_err e;
    int n;

    if ((end = lock_named(q, &id)).err) {
        return end;
    }
    if (f->slug) {
        const char *a[2] = { f->slug, ECOM_LL(q, id) };
        if ((e = ecom_db_select(q, "ecom_categories_slug_taken", &res, 2, a))) {
            return ecom_tx_fail(e);
        }
        if (ecom_db_row(q, res)) {
            return slug_taken(q);
        }
    }
    if (f->parent) {
        const char *a[2];
        if ((end = find_parent(q, f->parent, &parent)).err) {
            return end;
        }
        a[0] = ECOM_LL(q, parent);
        a[1] = ECOM_LL(q, id);
        if ((e = ecom_db_select(q, "ecom_categories_ancestor", &res, 2, a))) {
            return ecom_tx_fail(e);
        }
        if (ecom_db_row(q, res)) {
            ecom_problem(q, HTTP_CONFLICT, "category-cycle",
                         "The new parent is the category itself or one of "
                         "its descendants; nothing was changed.");
            return ECOM_TX_REFUSE;
        }
    }
    args[0] = f->name;
    args[1] = f->slug;
    args[2] = f->parent_set ? "true" : "false";
    args[3] = parent ? ECOM_LL(q, parent) : NULL;
    args[4] = ECOM_LL(q, id);
    if ((e = ecom_db_query(q, "ecom_categories_update", &n, 5, args))) {
        return ecom_tx_fail(e);
    }
    return n == 1 ? ECOM_TX_COMMIT : ecom_tx_fail(ECOM_E_INTERNAL);
}

/* POST and PATCH: validate, write in one transaction, answer with the
 * node as it now is. */
static int category_write(ecom_req *q, int creating)
{
    cat_fields f = { 0 };
    ecom_err e;
    int rv;

    if ((rv = read_fields(q, &f, creating))) {
        return rv;
    }
    if ((e = ecom_db_tx(q, creating ? create : update, &f))) {
        return ecom_fail(q, e);
    }
    if (creating) {
        apr_table_setn(q->r->headers_out, "Location",
                       ecom_url(q, "/categories/%s/", f.slug));
        return send_written(q, f.slug, HTTP_CREATED);
    }
    return send_written(q, f.slug ? f.slug : q->slug, HTTP_OK);
}

static int category_create(ecom_req *q)
{
    return category_write(q, 1);
}

static int category_update(ecom_req *q)
{
    return category_write(q, 0);
}

static ecom_tx_end delete_empty(ecom_req *q, void *data)
{
    const char *args[2];
    apr_dbd_row_t *row;
    long long id;
    ecom_tx_end end;
    ecom_err e;
    int n, children, products;

    if ((end = lock_named(q, &id)).err) {
        return end;
    }
    args[0] = args[1] = ECOM_LL(q, id);
    if ((e = ecom_db_one(q, "ecom_categories_contents", &row, 2, args))) {
        return ecom_tx_fail(e == ECOM_E_NOT_FOUND ? ECOM_E_INTERNAL : e);
    }
    children = ecom_db_bool(q, row, CAT_HAS_CHILDREN);
    products = ecom_db_bool(q, row, CAT_HAS_PRODUCTS);
    if (children || products) {
        ecom_problem_with(q, HTTP_CONFLICT, "category-not-empty",
                          "The category still has subcategories or products "
                          "(active or not); move or delete them first.",
                          ecom_jown(q, json_pack("{s:b, s:b}",
                                                 "has_children", children,
                                                 "has_products", products)));
        return ECOM_TX_REFUSE;
    }
    if ((e = ecom_db_query(q, "ecom_categories_delete", &n, 1, args))) {
        return ecom_tx_fail(e);
    }
    return n == 1 ? ECOM_TX_COMMIT : ecom_tx_fail(ECOM_E_INTERNAL);
}

static int category_delete(ecom_req *q)
{
    ecom_err e;

    if ((e = ecom_db_tx(q, delete_empty, NULL))) {
        return ecom_fail(q, e);
    }
    return ecom_no_content(q, HTTP_NO_CONTENT);
}

/* Category writes change the tree and the category slug product lists
 * show. */
#define CAT_WRITES (ECOM_CACHE_CATEGORIES | ECOM_CACHE_CATALOG)

static const ecom_route category_routes[] = {
    { M_GET, "categories", categories_tree, ECOM_AUTH_NONE, 0, 0,
      "categories.list" },
    { M_POST, "categories", category_create, ECOM_AUTH_STAFF,
      ECOM_BODY | ECOM_IDEMPOTENT, CAT_WRITES, "categories.create" },
    { M_GET, "categories/{slug}", category_get, ECOM_AUTH_NONE, 0, 0,
      "categories.get" },
    { M_PATCH, "categories/{slug}", category_update, ECOM_AUTH_STAFF,
      ECOM_BODY, CAT_WRITES, "categories.update" },
    { M_DELETE, "categories/{slug}", category_delete, ECOM_AUTH_STAFF, 0,
      CAT_WRITES, "categories.delete" },
    { 0, NULL, NULL, 0, 0, 0, NULL }
};

const ecom_resource ecom_categories_resource = {
    "categories", category_sql, category_routes, NULL
};
