/*
 * ecom_page.h: keyset-paginated list pages (ecom_page.c), a helper below
 * the resources: it reads limit and cursor, and answers {items,
 * next_cursor} from a result holding limit + 1 rows.
 */
#ifndef ECOM_PAGE_H
#define ECOM_PAGE_H

#include "ecom_req.h"
#include "ecom_db.h"

/* Reads ?limit= (any positive integer, capped at EcomPageSizeMax; none:
 * EcomPageSize) into *limit. Returns 0 or the status of the 400 set. */
int ecom_page_args(ecom_req *q, int *limit);
/* Reads ?cursor= of a list ordered under tag (ecom_cursor_decode) into *k1
 * and *k2, left as they are when there is none. Returns 0 or the status
 * of the 400 set (a cursor of another list, or none at all). */
int ecom_page_cursor(ecom_req *q, char tag, long long *k1, long long *k2);
/* Answers the first limit rows of res (limit + 1 when a next page exists)
 * as {items, next_cursor}, the cursor carrying columns key1 and key2 (-1:
 * none) of the last item under the tag of the list's ordering. Returns
 * the status. */
int ecom_page(ecom_req *q, apr_dbd_results_t *res, int limit,
              const ecom_col *cols, char tag, int key1, int key2);
/* ecom_page, with one more member name: extra in the answer object when
 * extra is not NULL (the product list's facets). */
int ecom_page_with(ecom_req *q, apr_dbd_results_t *res, int limit,
                   const ecom_col *cols, char tag, int key1, int key2,
                   const char *name, json_t *extra);

/* A page of one parent's items (a product's reviews, its price history)
 * from res, ordered by one key (column key1): ecom_page() when res has
 * rows; when it has none, an empty page if the statement label (with its
 * args) finds the parent, else 404 "No such <what>.". Returns the status. */
int ecom_page_of_parent(ecom_req *q, apr_dbd_results_t *res, int limit,
                        const ecom_col *cols, char tag, int key1,
                        const char *label, int nargs, const char **args,
                        const char *what);

#endif /* ECOM_PAGE_H */
