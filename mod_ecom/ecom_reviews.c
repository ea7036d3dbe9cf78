/*
 * ecom_reviews.c: product reviews (issue 8, item 2): the list of a
 * product's reviews, a buyer's review, its author's edits and deletion,
 * and staff moderation (hide / unhide).
 *
 * Every write is ONE statement (its own transaction, or part of the
 * Idempotency-Key's): the insert carries its own conditions (an active
 * product, a paid, shipped or delivered order of the caller holding it,
 * no review of the caller yet), and the edits and the delete carry the
 * caller's right to make them, so nothing is checked in one statement and
 * written in another. The product's rating summary (rating_count,
 * rating_sum, rating_key on products) is kept by the trigger of
 * sql/013_reviews.sql in the same statement, under the product row's
 * lock, so concurrent reviews never lose a count. When a write changes
 * nothing, a second read tells the client why (404, 403 or 409); that read
 * only explains, it decides nothing.
 *
 * Visibility: a hidden review is listed to staff only and counts in no
 * summary; another user's review is a 404 to every write but staff's
 * hide / unhide and delete (moderation). Every route that writes
 * invalidates the catalog cache section (product pages show the rating)
 * and the reviews section.
 */
#include "ecom_resource.h"
#include "ecom_http.h"
#include "ecom_cache.h"
#include "ecom_page.h"
#include "ecom_util.h"

/* the statuses of an order whose customer may review what it holds */
#define BOUGHT_STATUSES "('paid', 'shipped', 'delivered')"

#define REVIEW_COLS \
    "r.id, r.product_id, NULLIF(u.name, ''), r.rating, r.title, r.body, " \
    "r.hidden, " ECOM_TS("r.created_at") ", " ECOM_TS("r.updated_at")

enum { R_ID, R_PRODUCT_ID, R_USER, R_RATING, R_TITLE, R_BODY, R_HIDDEN,
       R_CREATED_AT, R_UPDATED_AT, R_NCOLS };
/* ecom_review_why */
enum { W_ACTIVE, W_BOUGHT, W_REVIEWED };
/* ecom_review_author */
enum { A_USER_ID };

/* a page of one product's reviews, newest first; the product's activity
 * is checked in the same statement, hidden reviews shown to staff only */
#define LIST_FROM \
    "SELECT " REVIEW_COLS " FROM reviews r " \
    "JOIN users u ON u.id = r.user_id " \
    "JOIN products p ON p.id = r.product_id AND (p.active OR %s::boolean) " \
    "WHERE r.product_id = %s::bigint AND (NOT r.hidden OR %s::boolean) "
#define LIST_KEY \
    "AND r.id < COALESCE(%s::bigint, 9223372036854775807) " \
    "ORDER BY r.id DESC LIMIT %s::int"

static const ecom_stmt review_sql[] = {
    { "ecom_reviews", LIST_FROM LIST_KEY, ECOM_STMT_READ | ECOM_STMT_LIST },
    { "ecom_reviews_r", LIST_FROM "AND r.rating = %s::int " LIST_KEY,
      ECOM_STMT_READ | ECOM_STMT_LIST },
    { "ecom_review_product",
      "SELECT id FROM products WHERE id = %s::bigint "
      "AND (active OR %s::boolean)", ECOM_STMT_READ },
    /* the insert and its conditions, one statement; nothing when one
     * fails (ecom_review_why then says which) */
    { "ecom_review_insert",
      "WITH ins AS (INSERT INTO reviews (product_id, user_id, rating, title, "
      "body) SELECT p.id, %s::bigint, %s::int, %s, %s FROM products p "
      "WHERE p.id = %s::bigint AND p.active AND EXISTS (SELECT 1 "
      "FROM order_lines l JOIN orders o ON o.id = l.order_id "
      "WHERE l.product_id = p.id AND o.user_id = %s::bigint "
      "AND o.status IN " BOUGHT_STATUSES ") "
      "ON CONFLICT ON CONSTRAINT reviews_one_per_user DO NOTHING "
      "RETURNING *) "
      "SELECT " REVIEW_COLS " FROM ins r JOIN users u ON u.id = r.user_id",
      0 },
    { "ecom_review_why",
      "SELECT p.active, EXISTS (SELECT 1 FROM order_lines l "
      "JOIN orders o ON o.id = l.order_id WHERE l.product_id = p.id "
      "AND o.user_id = %s::bigint AND o.status IN " BOUGHT_STATUSES "), "
      "EXISTS (SELECT 1 FROM reviews r WHERE r.product_id = p.id "
      "AND r.user_id = %s::bigint) FROM products p WHERE p.id = %s::bigint",
      ECOM_STMT_READ },
    /* GET /reviews/{id}/: a visible review of an active product; its
     * author and staff see it always */
    { "ecom_review_get",
      "SELECT " REVIEW_COLS " FROM reviews r JOIN users u ON u.id = r.user_id "
      "JOIN products p ON p.id = r.product_id WHERE r.id = %s::bigint "
      "AND ((p.active AND NOT r.hidden) OR r.user_id = %s::bigint "
      "OR %s::boolean)", ECOM_STMT_READ },
    /* PATCH: a NULL argument keeps the column; title and body have a
     * "set" flag because null is a value they take. The author may change
     * anything (hidden: staff only, checked before); staff may change
     * another's review only when the body holds nothing but hidden
     * (the last flag). updated_at moves with the content only. */
    { "ecom_review_update",
      "WITH up AS (UPDATE reviews SET rating = COALESCE(%s::int, rating), "
      "title = CASE WHEN %s::boolean THEN %s ELSE title END, "
      "body = CASE WHEN %s::boolean THEN %s ELSE body END, "
      "hidden = COALESCE(%s::boolean, hidden), "
      "updated_at = CASE WHEN %s::boolean THEN now() ELSE updated_at END "
      "WHERE id = %s::bigint AND (user_id = %s::bigint "
      "OR (%s::boolean AND %s::boolean)) RETURNING *) "
      "SELECT " REVIEW_COLS " FROM up r JOIN users u ON u.id = r.user_id", 0 },
    { "ecom_review_author",
      "SELECT user_id FROM reviews WHERE id = %s::bigint", ECOM_STMT_READ },
    { "ecom_review_delete",
      "DELETE FROM reviews WHERE id = %s::bigint "
      "AND (user_id = %s::bigint OR %s::boolean)", 0 },
    { NULL, NULL, 0 }
};

static const ecom_col review_cols[] = {
    [R_ID] = { "id", EC_INT }, [R_PRODUCT_ID] = { "product_id", EC_INT },
    [R_USER] = { "user", EC_STR_NULL }, [R_RATING] = { "rating", EC_INT },
    [R_TITLE] = { "title", EC_STR_NULL }, [R_BODY] = { "body", EC_STR_NULL },
    [R_HIDDEN] = { "hidden", EC_BOOL },
    [R_CREATED_AT] = { "created_at", EC_TIME },
    [R_UPDATED_AT] = { "updated_at", EC_TIME }, [R_NCOLS] = { NULL, 0 }
};

#define TITLE_MAX 200
#define BODY_MAX 5000

static int not_found(ecom_req *q)
{
    return ecom_problem(q, HTTP_NOT_FOUND, "not-found", "No such review.");
}

static int no_product(ecom_req *q)
{
    return ecom_problem(q, HTTP_NOT_FOUND, "not-found", "No such product.");
}

static const char *staff_arg(ecom_req *q)
{
    return q->is_staff ? "true" : "false";
}

/* GET /products/{id}/reviews/ */
static int ecom_reviews_list(ecom_req *q)
{
    const char *cursor = apr_table_get(q->args, "cursor");
    const char *rating = apr_table_get(q->args, "rating");
    const char *args[6], *a[2];
    long long k1 = 0, k2 = 0, stars = 0;
    apr_dbd_results_t *res;
    int limit, rv, n = 0;
    ecom_err e;

    if ((rv = ecom_page_args(q, &limit))) {
        return rv;
    }
    if (rating && ecom_parse_ll(rating, 1, 5, &stars) != 0) {
        return ecom_problem(q, HTTP_BAD_REQUEST, "bad-request",
                            "Query parameter rating must be an integer "
                            "from 1 to 5.");
    }
    if ((rv = ecom_page_cursor(q, 'v', &k1, &k2))) {
        return rv;
    }
    args[n++] = staff_arg(q);
    args[n++] = ECOM_LL(q, q->id[0]);
    args[n++] = staff_arg(q);
    if (rating) {
        args[n++] = ECOM_LL(q, stars);
    }
    args[n++] = cursor ? ECOM_LL(q, k1) : NULL;
    args[n++] = apr_itoa(q->r->pool, limit + 1);
    if ((e = ecom_db_select(q, rating ? "ecom_reviews_r" : "ecom_reviews",
                            &res, n, args))) {
        return ecom_fail(q, e);
    }
    /* an empty page: is there a product at all? (a page with rows has
     * shown an active product already) */
    a[0] = ECOM_LL(q, q->id[0]);
    a[1] = staff_arg(q);
    return ecom_page_of_parent(q, res, limit, review_cols, 'v', R_ID,
                               "ecom_review_product", 2, a, "product");
}

typedef struct {
    const char *rating, *title, *body, *hidden;
    int title_set, body_set;
} review_fields;

/* A string field that may be null (title, body). */
static void nullable_str(json_t *b, const char *name, size_t max,
                         const char **out, int *set, json_t *errs)
{
    json_t *v = json_object_get(b, name);

    if (!v) {
        return;
    }
    *set = 1;
    if (!json_is_null(v)) {
        ecom_get_str(b, name, 0, max, out, errs);
    }
}

/* Validates a review body into f. Returns 0 or the status of the 422. */
static int read_fields(ecom_req *q, review_fields *f, int creating)
{
    static const char *const create_known[] = {
        "rating", "title", "body", NULL
    };
    static const char *const patch_known[] = {
        "rating", "title", "body", "hidden", NULL
    };
    json_t *errs = ecom_jarray(q);
    json_t *b = q->body;
    long long n;
    int flag, rv;

    ecom_body_unknown(q, b, "", creating ? create_known : patch_known, errs);
    if ((rv = ecom_get_int(b, "rating", 1, 5, &n, errs)) == 1) {
        f->rating = ECOM_LL(q, n);
    }
    else if (rv == 0 && creating) {
        ecom_field_error(errs, "rating", "is required");
    }
    nullable_str(b, "title", TITLE_MAX, &f->title, &f->title_set, errs);
    nullable_str(b, "body", BODY_MAX, &f->body, &f->body_set, errs);
    if (!creating && ecom_get_bool(b, "hidden", &flag, errs) == 1) {
        f->hidden = flag ? "true" : "false";
    }
    if (!creating && json_object_size(b) == 0) {
        ecom_field_error(errs, "", "send at least one of rating, title, "
                         "body, hidden");
    }
    if (json_array_size(errs)) {
        return ecom_invalid(q, errs);
    }
    return 0;
}

/* Why ecom_review_insert wrote nothing. */
static int create_refused(ecom_req *q)
{
    const char *args[3] = { ECOM_LL(q, q->user_id), ECOM_LL(q, q->user_id),
                            ECOM_LL(q, q->id[0]) };
    apr_dbd_row_t *row;
    ecom_err e = ecom_db_one(q, "ecom_review_why", &row, 3, args);

    if (e == ECOM_E_NOT_FOUND || (!e && !ecom_db_bool(q, row, W_ACTIVE))) {
        return no_product(q);
    }
    if (e) {
        return ecom_fail(q, e);
    }
    if (ecom_db_bool(q, row, W_REVIEWED)) {
        return ecom_problem(q, HTTP_CONFLICT, "conflict",
                            "You have already reviewed this product; edit "
                            "that review instead (PATCH /reviews/{id}/).");
    }
    return ecom_problem(q, HTTP_FORBIDDEN, "not-a-buyer",
                        "Only customers with a paid, shipped or delivered "
                        "order holding this product may review it.");
}

/* Runs a write that returns the review it wrote (REVIEW_COLS) and answers
 * it with status (201: with its Location), or with refused(q) when the
 * statement wrote nothing. */
static int write_review(ecom_req *q, const char *label, int nargs,
                        const char **args, int (*refused)(ecom_req *),
                        int status)
{
    apr_dbd_results_t *res;
    apr_dbd_row_t *row;
    ecom_err e;

    if ((e = ecom_db_select(q, label, &res, nargs, args))) {
        return ecom_fail(q, e);
    }
    if (!(row = ecom_db_row(q, res))) {
        return refused(q);
    }
    if (status == HTTP_CREATED) {
        apr_table_setn(q->r->headers_out, "Location",
                       ecom_url(q, "/reviews/%s/", ecom_db_get(q, row, R_ID)));
    }
    return ecom_json(q, status, ecom_row_json(q, row, review_cols, 0));
}

/* POST /products/{id}/reviews/ */
static int ecom_review_create(ecom_req *q)
{
    review_fields f = { 0 };
    const char *args[6];
    int rv;

    if ((rv = read_fields(q, &f, 1))) {
        return rv;
    }
    args[0] = ECOM_LL(q, q->user_id);
    args[1] = f.rating;
    args[2] = f.title;
    args[3] = f.body;
    args[4] = ECOM_LL(q, q->id[0]);
    args[5] = args[0];
    return write_review(q, "ecom_review_insert", 6, args, create_refused,
                        HTTP_CREATED);
}

/* GET /reviews/{id}/ */
static int ecom_review_get(ecom_req *q)
{
    const char *args[3] = { ECOM_LL(q, q->id[0]), ECOM_LL(q, q->user_id),
                            staff_arg(q) };
    apr_dbd_row_t *row;
    ecom_err e = ecom_db_one(q, "ecom_review_get", &row, 3, args);

    if (e == ECOM_E_NOT_FOUND) {
        return not_found(q);
    }
    if (e) {
        return ecom_fail(q, e);
    }
    return ecom_json(q, HTTP_OK, ecom_row_json(q, row, review_cols, 0));
}

/* Why ecom_review_update changed nothing: 404 (no such review, or
 * another user's), or 403 for staff who sent more than hidden for a
 * review that is not theirs. */
static int update_refused(ecom_req *q)
{
    const char *args[1] = { ECOM_LL(q, q->id[0]) };
    apr_dbd_row_t *row;
    ecom_err e;

    if (!q->is_staff) {
        return not_found(q);
    }
    e = ecom_db_one(q, "ecom_review_author", &row, 1, args);
    if (e == ECOM_E_NOT_FOUND) {
        return not_found(q);
    }
    if (e) {
        return ecom_fail(q, e);
    }
    return ecom_problem(q, HTTP_FORBIDDEN, "forbidden",
                        "Staff may only hide or unhide another user's "
                        "review (send hidden alone).");
}

/* PATCH /reviews/{id}/ */
static int ecom_review_update(ecom_req *q)
{
    review_fields f = { 0 };
    const char *args[11];
    int rv, content;

    if ((rv = read_fields(q, &f, 0))) {
        return rv;
    }
    if (f.hidden && !q->is_staff) {
        return ecom_problem(q, HTTP_FORBIDDEN, "forbidden",
                            "Only staff may hide or unhide a review.");
    }
    content = f.rating || f.title_set || f.body_set;
    args[0] = f.rating;
    args[1] = f.title_set ? "true" : "false";
    args[2] = f.title;
    args[3] = f.body_set ? "true" : "false";
    args[4] = f.body;
    args[5] = f.hidden;
    args[6] = content ? "true" : "false";
    args[7] = ECOM_LL(q, q->id[0]);
    args[8] = ECOM_LL(q, q->user_id);
    args[9] = staff_arg(q);
    args[10] = content ? "false" : "true";
    return write_review(q, "ecom_review_update", 11, args, update_refused,
                        HTTP_OK);
}

/* DELETE /reviews/{id}/: its author, or staff */
static int ecom_review_delete(ecom_req *q)
{
    const char *args[3] = { ECOM_LL(q, q->id[0]), ECOM_LL(q, q->user_id),
                            staff_arg(q) };
    ecom_err e;
    int n = 0;

    if ((e = ecom_db_query(q, "ecom_review_delete", &n, 3, args))) {
        return ecom_fail(q, e);
    }
    if (n == 0) {
        return not_found(q);
    }
    return ecom_no_content(q, HTTP_NO_CONTENT);
}

#define REVIEW_WRITES (ECOM_CACHE_CATALOG | ECOM_CACHE_REVIEWS)

static const ecom_route review_routes[] = {
    { M_GET, "products/{id}/reviews", ecom_reviews_list, ECOM_AUTH_NONE, 0, 0,
      "reviews.list" },
    { M_POST, "products/{id}/reviews", ecom_review_create, ECOM_AUTH_USER,
      ECOM_BODY | ECOM_IDEMPOTENT, REVIEW_WRITES, "reviews.create" },
    { M_GET, "reviews/{id}", ecom_review_get, ECOM_AUTH_NONE, 0, 0,
      "reviews.get" },
    { M_PATCH, "reviews/{id}", ecom_review_update, ECOM_AUTH_USER, ECOM_BODY,
      REVIEW_WRITES, "reviews.update" },
    { M_DELETE, "reviews/{id}", ecom_review_delete, ECOM_AUTH_USER, 0,
      REVIEW_WRITES, "reviews.delete" },
    { 0, NULL, NULL, 0, 0, 0, NULL }
};

const ecom_resource ecom_reviews_resource = {
    "reviews", review_sql, review_routes, NULL
};
