/*
 * ecom_page.c: keyset-paginated list pages, for every list resource.
 *
 * A list statement fetches limit + 1 rows in its order; the extra row only
 * says that a next page exists. The cursor is opaque to clients: the list's
 * ordering tag and the keys of the last item shown (ecom_util.c encodes it),
 * so a cursor of one list or ordering is refused by another.
 */
#include "ecom_page.h"
#include "ecom_http.h"
#include "ecom_path.h"
#include "ecom_util.h"

int ecom_page_args(ecom_req *q, int *limit)
{
    /* any positive integer, however large, is capped to the maximum */
    if (ecom_parse_limit(apr_table_get(q->args, "limit"), q->dc->page_size,
                         q->dc->page_max, limit) != 0) {
        return ecom_problem(q, HTTP_BAD_REQUEST, "bad-request",
                            "limit must be an integer >= 1.");
    }
    return 0;
}

int ecom_page_cursor(ecom_req *q, char tag, long long *k1, long long *k2)
{
    const char *cursor = apr_table_get(q->args, "cursor");

    if (cursor && ecom_cursor_decode(cursor, tag, k1, k2) != 0) {
        return ecom_problem(q, HTTP_BAD_REQUEST, "bad-request",
                            "Query parameter cursor is not a cursor of this "
                            "list.");
    }
    return 0;
}

int ecom_page(ecom_req *q, apr_dbd_results_t *res, int limit,
              const ecom_col *cols, char tag, int key1, int key2)
{
    return ecom_page_with(q, res, limit, cols, tag, key1, key2, NULL, NULL);
}

int ecom_page_with(ecom_req *q, apr_dbd_results_t *res, int limit,
                   const ecom_col *cols, char tag, int key1, int key2,
                   const char *name, json_t *extra)
{
    json_t *answer;
    json_t *items = ecom_jarray(q);
    apr_dbd_row_t *row = NULL;
    long long k1 = 0, k2 = 0;
    char next[ECOM_CURSOR_MAX];
    int n = 0;

    while (ecom_db_next(q, res, &row)) {
        if (n == limit) {
            /* a next page exists: the cursor points after the last item
             * (rows of res stay readable: the result is not exhausted) */
            break;
        }
        json_array_append(items, ecom_row_json(q, row, cols, 0));
        k1 = ecom_db_ll(q, row, key1);
        k2 = key2 >= 0 ? ecom_db_ll(q, row, key2) : 0;
        n++;
    }
    if (row) {
        ecom_cursor_encode(tag, k1, k2, next);
    }
    answer = ecom_jown(q, json_pack("{s:O, s:s?}", "items", items,
                                    "next_cursor", row ? next : NULL));
    if (answer && name && extra) {
        json_object_set(answer, name, extra);
    }
    return ecom_json(q, HTTP_OK, answer);
}

int ecom_page_of_parent(ecom_req *q, apr_dbd_results_t *res, int limit,
                        const ecom_col *cols, char tag, int key1,
                        const char *label, int nargs, const char **args,
                        const char *what)
{
    apr_dbd_row_t *row, *none = NULL;
    ecom_err e;

    if (ecom_db_nrows(q, res) > 0) {
        /* rows: the parent exists (the page's statement joined it) */
        return ecom_page(q, res, limit, cols, tag, key1, -1);
    }
    ecom_db_next(q, res, &none);    /* frees the empty result */
    e = ecom_db_one(q, label, &row, nargs, args);
    if (e == ECOM_E_NOT_FOUND) {
        return ecom_problem(q, HTTP_NOT_FOUND, "not-found",
                            apr_psprintf(q->r->pool, "No such %s.", what));
    }
    if (e) {
        return ecom_fail(q, e);
    }
    return ecom_json(q, HTTP_OK, ecom_jown(q, json_pack("{s:[], s:n}", "items",
                                                        "next_cursor")));
}
