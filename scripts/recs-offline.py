#!/usr/bin/env python3
"""recs-offline.py: the offline prototype of the personal picks of products a
customer never bought ("new products only", docs/RECS_EVAL.md), 022's
bought-together cosine against 030's random walk (RP3beta), on the same
cleaned data, split and metrics as scripts/eval-recs.py (imported from it).

  scripts/recs-offline.py [--data FILE] [--cut YYYY-MM-DD]
                          [--beta B] [--top K] [--history N]

Prints HR@10 and NDCG@10 over the customers who bought something new after
the cut, for 022's neighbours (cosine over orders, shrink 5, top 50, each
product's scores summing to 1; the last 50 products, exp(-days/365)) and
for the walk (item -> order -> item, divided by the arrival product's
orders^beta, top K; the last N products). Needs Debian's python3-numpy and
python3-scipy (run with /usr/bin/python3 when another python3 comes first).
Ties are broken by stock code here and by product id in SQL, so the figures
can differ from the SQL ones in the fourth decimal.
"""
import argparse
import collections
import datetime
import importlib.util
import math
import os

import numpy as np
import scipy.sparse as sp

HERE = os.path.dirname(os.path.abspath(__file__))
_spec = importlib.util.spec_from_file_location("eval_recs", os.path.join(HERE, "eval-recs.py"))
ev = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(ev)


def when(s):
    return datetime.datetime.fromisoformat(s)


def matrices(split):
    """order x product (an order's first 100 distinct products), and per
    customer x product: orders holding it and days since the last one."""
    items = sorted({r[1] for r in split.train})
    iid = {s: i for i, s in enumerate(items)}
    custs = sorted({r[3] for r in split.train})
    uid = {c: i for i, c in enumerate(custs)}
    orders, odate, ocust = collections.OrderedDict(), {}, {}
    for inv, sku, dt, cust in split.train:
        lines = orders.setdefault(inv, [])
        if iid[sku] not in lines:
            lines.append(iid[sku])
        odate[inv], ocust[inv] = when(dt), cust
    now = max(odate.values())
    rows, cols = [], []
    for k, lines in enumerate(orders.values()):
        rows += [k] * len(lines[:100])
        cols += lines[:100]
    x = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(orders), len(items)))
    days = {}
    for inv, lines in orders.items():
        d = (now - odate[inv]).total_seconds() / 86400
        for i in lines:
            key = (uid[ocust[inv]], i)
            days[key] = min(days.get(key, math.inf), d)
    return items, iid, uid, x, days


def top_rows(w, k):
    """each row's k best (ties: lower column first), then scaled to sum 1"""
    w = sp.csr_matrix(w)
    w = (w - sp.diags(w.diagonal())).tocsr()
    w.eliminate_zeros()
    rows, cols, vals = [], [], []
    for r in range(w.shape[0]):
        a, b = w.indptr[r], w.indptr[r + 1]
        v, c = w.data[a:b], w.indices[a:b]
        keep = np.lexsort((c, -v))[:k]
        if len(keep):
            rows += [r] * len(keep)
            cols += list(c[keep])
            vals += list(v[keep] / v[keep].sum())
    return sp.csr_matrix((vals, (rows, cols)), shape=w.shape)


def cosine(x):
    c = (x.T @ x).tocoo()
    n = np.asarray(x.sum(0)).ravel()
    s = c.data / (np.sqrt(n[c.row] * n[c.col]) + 5)
    return top_rows(sp.csr_matrix((s, (c.row, c.col)), shape=c.shape), 50)


def walk(x, beta, k):
    size = np.asarray(x.sum(1)).ravel()
    n = np.asarray(x.sum(0)).ravel()
    n[n == 0] = 1
    w = (x.T @ sp.diags(1 / size) @ x).tocsr() @ sp.diags(n ** -beta)
    return top_rows(w, k)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=os.path.join(os.environ.get("ECOM_DATA_DIR", os.path.join(HERE, "..", "..", "shared", "data")),
                                                  "online-retail", "online_retail.csv.xz"))
    ap.add_argument("--cut", default="2011-09-01", type=datetime.date.fromisoformat)
    ap.add_argument("--beta", type=float, default=0.4)
    ap.add_argument("--top", type=int, default=30)
    ap.add_argument("--history", type=int, default=100)
    args = ap.parse_args()
    split = ev.Split(ev.load(args.data), args.cut)
    items, iid, uid, x, days = matrices(split)
    mine = collections.defaultdict(list)
    for (u, i), d in days.items():
        mine[u].append((d, items[i], i))
    for u in mine:
        mine[u].sort()

    def recommender(neighbours, history):
        def rec(cust, new_only):
            u = uid[cust]
            h = np.zeros(len(items))
            for d, _, i in mine[u][:history]:
                h[i] = math.exp(-d / 365)
            score = neighbours.T @ h
            score[[i for _, _, i in mine[u]]] = -np.inf
            best = np.lexsort((np.array(items), -score))[:ev.K]
            return [items[i] for i in best if score[i] > 0]
        return rec

    for label, nb, hist in (("022: cosine over orders, top 50, last 50", cosine(x), 50),
                            (f"030: walk over orders, beta {args.beta}, top {args.top}, last {args.history}",
                             walk(x, args.beta, args.top), args.history)):
        res, _ = ev.personal(split, recommender(nb, hist), True, label)
        print(f"{label}: new products only HR@10 {res['hr']:.4f} NDCG@10 {res['ndcg']:.4f} ({res['n']} customers)")


if __name__ == "__main__":
    main()
