#!/usr/bin/env python3
"""eval-recs.py: measure the recommendations of a RUNNING mod_ecom server on
the Online Retail orders placed after the cut (what `make eval-recs` runs).

  scripts/eval-recs.py [--url URL] [--cut YYYY-MM-DD] [--data FILE]
                       [--max-baskets N] [--baseline-only]
  scripts/eval-recs.py metrics      (read JSON lines, print metrics: tests)

The server must hold the demo data imported with
`scripts/import-demo.sh --until CUT` and a fresh recommendations refresh
(`scripts/ecom-admin recs-refresh`). The protocol is in docs/RECS_EVAL.md:

  * cleaning: drop cancellations (invoice C...), non-positive quantities or
    prices, lines without a customer, non-product stock codes (no digit:
    POST, D, M, BANK CHARGES, ...); stock codes upper-cased (as the import).
  * train = invoices before CUT (00:00), test = from CUT to the end.
  * personal picks: every customer with purchases on both sides;
    GET /recommendations/?user_id=N&limit=10 (and &new_only=true) as staff;
    HR@10, Recall@10, NDCG@10 against the distinct products bought in the
    test period (all of them; only those not bought before the cut), and
    catalog coverage (distinct products recommended / active products).
  * bought together: each test order with two or more distinct products,
    the LAST distinct product (file order) hidden; the rest is put in a
    new guest cart (POST /cart/) and GET /cart/recommendations/?limit=50
    ranks; HR@10 and MRR (reciprocal rank in the list, 0 when absent).
  * popularity baseline: products ordered in the most orders in the 90
    days before CUT (ties: stock code, C order), computed here from the
    data; for new-only the customer's earlier products are skipped, for
    baskets the basket's products; MRR over the whole ranking.

Authentication: ECOM_TOKEN (a staff or support bearer token), or
ECOM_EVAL_EMAIL + ECOM_PASSWORD (a staff account; logs in once).
Standard library only (Debian's python3).
"""
import argparse
import collections
import csv
import datetime
import http.client
import io
import json
import lzma
import math
import os
import sys
import time
import urllib.parse

K = 10


# --- metrics (unit-tested by t/58-eval-recs.t through `metrics`) -------------

def hit_at(ranked, relevant, k=K):
    """1.0 when one of the first k ranked items is relevant."""
    return 1.0 if any(x in relevant for x in ranked[:k]) else 0.0


def recall_at(ranked, relevant, k=K):
    """Relevant items in the first k, over all relevant items."""
    if not relevant:
        return 0.0
    return len(set(ranked[:k]) & set(relevant)) / len(relevant)


def ndcg_at(ranked, relevant, k=K):
    """Binary-relevance NDCG: sum 1/log2(rank+1) over hits in the first k,
    over the same sum for min(|relevant|, k) hits at the top."""
    if not relevant:
        return 0.0
    dcg = sum(1.0 / math.log2(i + 2) for i, x in enumerate(ranked[:k]) if x in relevant)
    ideal = sum(1.0 / math.log2(i + 2) for i in range(min(len(relevant), k)))
    return dcg / ideal


def reciprocal_rank(ranked, item):
    """1/rank of item in the whole list (1-based), 0 when absent."""
    for i, x in enumerate(ranked):
        if x == item:
            return 1.0 / (i + 1)
    return 0.0


def metrics_cmd():
    """One JSON object a line: {"ranked": [...], "relevant": [...]} or
    {"ranked": [...], "hidden": x}; prints one JSON line of metrics each."""
    for line in sys.stdin:
        if not line.strip():
            continue
        case = json.loads(line)
        ranked = case["ranked"]
        if "hidden" in case:
            out = {"hr": hit_at(ranked, {case["hidden"]}),
                   "rr": reciprocal_rank(ranked, case["hidden"])}
        else:
            rel = set(case["relevant"])
            out = {"hr": hit_at(ranked, rel), "recall": recall_at(ranked, rel),
                   "ndcg": ndcg_at(ranked, rel)}
        print(json.dumps(out, sort_keys=True))


# --- data ---------------------------------------------------------------------

def progress(msg):
    print("==> " + msg, file=sys.stderr, flush=True)


def load(path):
    """Cleaned sale rows, file order: (invoice, sku, invoice_date, customer)."""
    opener = lzma.open if path.endswith(".xz") else open
    out = []
    with opener(path, "rt", encoding="utf-8", errors="replace", newline="") as f:
        r = csv.reader(f)
        header = next(r)
        col = {name: i for i, name in enumerate(header)}
        for row in r:
            inv, code = row[col["InvoiceNo"]], row[col["StockCode"]]
            cust = row[col["CustomerID"]].strip()
            try:
                qty = int(row[col["Quantity"]])
                price = float(row[col["UnitPrice"]])
            except ValueError:
                continue
            if inv.startswith("C") or qty <= 0 or price <= 0 or not cust:
                continue
            if not any(ch.isdigit() for ch in code):
                continue                      # POST, D, M, BANK CHARGES, DOT, ...
            out.append((inv, code.upper(), row[col["InvoiceDate"]], cust))
    return out


class Split:
    def __init__(self, rows, cut):
        cut_s = cut.isoformat()
        self.cut = cut
        self.train = [x for x in rows if x[2][:10] < cut_s]
        self.test = [x for x in rows if x[2][:10] >= cut_s]
        self.before = collections.defaultdict(set)
        self.after = collections.defaultdict(set)
        for inv, sku, dt, cust in self.train:
            self.before[cust].add(sku)
        for inv, sku, dt, cust in self.test:
            self.after[cust].add(sku)
        self.customers = sorted(set(self.before) & set(self.after), key=lambda c: (len(c), c))
        orders = collections.OrderedDict()
        for inv, sku, dt, cust in self.test:
            items = orders.setdefault(inv, [])
            if sku not in items:
                items.append(sku)
        # (rest, hidden): the last distinct product of each order of 2 or more
        self.baskets = [(items[:-1], items[-1]) for items in orders.values() if len(items) >= 2]

    def popularity(self, days=90):
        start = (self.cut - datetime.timedelta(days=days)).isoformat()
        seen = set()
        count = collections.Counter()
        for inv, sku, dt, cust in self.train:
            if dt[:10] >= start and (inv, sku) not in seen:
                seen.add((inv, sku))
                count[sku] += 1
        return [s for s, _ in sorted(count.items(), key=lambda kv: (-kv[1], kv[0]))]


def personal(split, recommend, new_only, label):
    """Mean HR/Recall/NDCG@10 and the products recommended; recommend(cust,
    new_only) -> ranked skus."""
    acc = collections.Counter()
    n = 0
    shown = set()
    for i, cust in enumerate(split.customers):
        rel = split.after[cust] - split.before[cust] if new_only else split.after[cust]
        if not rel:
            continue                      # nothing new bought: not counted
        ranked = recommend(cust, new_only)[:K]
        shown.update(ranked)
        n += 1
        acc["hr"] += hit_at(ranked, rel)
        acc["recall"] += recall_at(ranked, rel)
        acc["ndcg"] += ndcg_at(ranked, rel)
        if (i + 1) % 250 == 0:
            progress(f"{label}: {i + 1}/{len(split.customers)} customers")
    return {k: v / n for k, v in acc.items()} | {"n": n}, shown


def baskets(split, complete, label, limit=None):
    acc = collections.Counter()
    todo = split.baskets[:limit] if limit else split.baskets
    for i, (rest, hidden) in enumerate(todo):
        ranked = complete(rest)
        acc["hr"] += hit_at(ranked, {hidden})
        acc["mrr"] += reciprocal_rank(ranked, hidden)
        acc["mrr50"] += reciprocal_rank(ranked[:50], hidden)
        if (i + 1) % 500 == 0:
            progress(f"{label}: {i + 1}/{len(todo)} baskets")
    return {k: v / len(todo) for k, v in acc.items()} | {"n": len(todo)}


# --- the API ------------------------------------------------------------------

class Api:
    def __init__(self, url, token=None):
        u = urllib.parse.urlsplit(url)
        self.https = u.scheme == "https"
        self.host, self.port = u.hostname, u.port or (443 if self.https else 80)
        self.prefix = u.path.rstrip("/")
        self.token = token
        self.conn = None

    def _connect(self):
        if self.https:
            import ssl
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            return http.client.HTTPSConnection(self.host, self.port, context=ctx, timeout=60)
        return http.client.HTTPConnection(self.host, self.port, timeout=60)

    def call(self, method, path, body=None, headers=None, auth=True):
        h = {"Accept": "application/json"}
        if auth and self.token:
            h["Authorization"] = "Bearer " + self.token
        if body is not None:
            body = json.dumps(body)
            h["Content-Type"] = "application/json"
        h.update(headers or {})
        for attempt in range(5):
            if self.conn is None:
                self.conn = self._connect()
            try:
                self.conn.request(method, self.prefix + path, body=body, headers=h)
                res = self.conn.getresponse()
                data = res.read()
            except (http.client.HTTPException, OSError):
                self.conn.close()
                self.conn = None
                if attempt == 4:
                    raise
                time.sleep(0.2)
                continue
            if res.status in (429, 503) and attempt < 4:
                time.sleep(float(res.getheader("Retry-After") or 1))
                continue
            doc = json.loads(data) if data and data[:1] in (b"{", b"[") else None
            return res.status, doc, res
        raise RuntimeError("unreachable")

    def get_ok(self, path):
        status, doc, _ = self.call("GET", path)
        if status != 200:
            raise SystemExit(f"eval-recs: GET {path}: {status} {doc}")
        return doc


def api_recommender(api, user_ids, ids_to_sku):
    def rec(cust, new_only):
        path = f"/recommendations/?user_id={user_ids[cust]}&limit={K}"
        if new_only:
            path += "&new_only=true"
        return [ids_to_sku.get(it["id"]) for it in api.get_ok(path)["items"]]
    return rec


def api_basket(api, sku_to_id, ids_to_sku):
    def complete(rest):
        token = None
        for sku in rest[:500]:                       # a cart's cap
            pid = sku_to_id.get(sku)
            if pid is None:
                continue                             # not in the catalog
            hdr = {"Cart-Token": token} if token else {}
            status, _, res = api.call("POST", "/cart/", {"product_id": pid, "quantity": 1},
                                      headers=hdr, auth=False)
            if status == 201 and token is None:
                token = res.getheader("Cart-Token")
        if token is None:
            return []
        status, doc, _ = api.call("GET", "/cart/recommendations/?limit=50",
                                  headers={"Cart-Token": token}, auth=False)
        if status != 200:
            raise SystemExit(f"eval-recs: GET /cart/recommendations/ (guest cart): {status} {doc}")
        return [ids_to_sku.get(it["id"]) for it in doc["items"]]
    return complete


def catalog(api):
    sku_to_id, cursor = {}, None
    while True:
        path = "/products/?limit=100" + (f"&cursor={urllib.parse.quote(cursor)}" if cursor else "")
        doc = api.get_ok(path)
        for p in doc["items"]:
            sku_to_id[p["sku"].upper()] = p["id"]
        cursor = doc.get("next_cursor")
        if not cursor:
            return sku_to_id


def login(api):
    token = os.environ.get("ECOM_TOKEN")
    if token:
        return token
    email, password = os.environ.get("ECOM_EVAL_EMAIL"), os.environ.get("ECOM_PASSWORD")
    if not (email and password):
        raise SystemExit("eval-recs: set ECOM_TOKEN (staff bearer token) or ECOM_EVAL_EMAIL and ECOM_PASSWORD")
    status, doc, _ = api.call("POST", "/auth/login/", {"email": email, "password": password}, auth=False)
    if status != 200:
        raise SystemExit(f"eval-recs: login as {email}: {status} {doc}")
    return doc["token"]


# --- report -------------------------------------------------------------------

ISSUE_CHECK = {"new_hr": 0.3376, "new_ndcg": 0.0577, "bt_hr": 0.0380, "bt_mrr": 0.0169}


def table(rows):
    print(f"{'task':<44} {'popularity (90 d)':>20} {'module (API)':>20}")
    for name, a, b in rows:
        print(f"{name:<44} {a:>20} {b:>20}")


def fmt(*vals):
    return " / ".join(f"{v:.4f}" if isinstance(v, float) else str(v) for v in vals)


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "metrics":
        return metrics_cmd()
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--url", default=os.environ.get("ECOM_URL", "http://127.0.0.1:8080"))
    ap.add_argument("--cut", default="2011-09-01", type=datetime.date.fromisoformat)
    ap.add_argument("--data", default=os.path.join(os.environ.get("ECOM_DATA_DIR", os.path.join(root, "..", "shared", "data")),
                                                  "online-retail", "online_retail.csv.xz"))
    ap.add_argument("--max-baskets", type=int, default=None,
                    help="evaluate only the first N baskets through the API (quick look; the full run is the figure)")
    ap.add_argument("--baseline-only", action="store_true", help="the popularity baseline only, no server")
    args = ap.parse_args()

    t0 = time.time()
    progress(f"reading {args.data}")
    split = Split(load(args.data), args.cut)
    progress(f"cut {args.cut}: {len(split.train)} lines before, {len(split.test)} after; "
             f"{len(split.customers)} customers on both sides, {len(split.baskets)} later orders of 2+ products")
    pop = split.popularity()

    def pop_rec(cust, new_only):
        if not new_only:
            return pop[:K]
        mine = split.before[cust]
        return [s for s in pop if s not in mine][:K]

    def pop_basket(rest):
        inb = set(rest)
        return [s for s in pop if s not in inb]

    p_all, p_shown = personal(split, pop_rec, False, "popularity, all products")
    p_new, _ = personal(split, pop_rec, True, "popularity, new products")
    p_bt = baskets(split, pop_basket, "popularity, baskets")
    results = {"popularity": {"all": p_all, "new": p_new, "bought_together": p_bt}}

    m_all = m_new = m_bt = None
    coverage = pop_cov = None
    if not args.baseline_only:
        api = Api(args.url)
        api.token = login(api)
        progress(f"server {args.url}: reading the catalog")
        sku_to_id = catalog(api)
        id_to_sku = {v: k for k, v in sku_to_id.items()}
        progress(f"{len(sku_to_id)} active products; looking up {len(split.customers)} customers")
        user_ids = {}
        for cust in split.customers:
            email = f"customer{cust}@demo.mod-ecom.invalid"
            doc = api.get_ok("/users/?email=" + urllib.parse.quote(email))
            if not doc["items"]:
                raise SystemExit(f"eval-recs: no user {email} on the server (was the demo data imported?)")
            user_ids[cust] = doc["items"][0]["id"]
        rec = api_recommender(api, user_ids, id_to_sku)
        m_all, shown = personal(split, rec, False, "module, all products")
        m_new, _ = personal(split, rec, True, "module, new products")
        m_bt = baskets(split, api_basket(api, sku_to_id, id_to_sku), "module, baskets", args.max_baskets)
        coverage = len(shown - {None}) / len(sku_to_id)
        pop_cov = len(p_shown) / len(sku_to_id)
        results["module"] = {"all": m_all, "new": m_new, "bought_together": m_bt, "coverage": coverage}
        results["popularity"]["coverage"] = pop_cov

    print()
    print(f"make eval-recs: cut {args.cut}, {len(split.customers)} customers with purchases on both sides "
          f"({p_new['n']} of them bought something new), {len(split.baskets)} baskets"
          + (f" ({m_bt['n']} through the API)" if m_bt and m_bt["n"] != len(split.baskets) else ""))
    na = "-"
    table([
        ("personal, all products: HR@10", fmt(p_all["hr"]), fmt(m_all["hr"]) if m_all else na),
        ("personal, all products: Recall@10", fmt(p_all["recall"]), fmt(m_all["recall"]) if m_all else na),
        ("personal, all products: NDCG@10", fmt(p_all["ndcg"]), fmt(m_all["ndcg"]) if m_all else na),
        ("personal, new products only: HR@10", fmt(p_new["hr"]), fmt(m_new["hr"]) if m_new else na),
        ("personal, new products only: Recall@10", fmt(p_new["recall"]), fmt(m_new["recall"]) if m_new else na),
        ("personal, new products only: NDCG@10", fmt(p_new["ndcg"]), fmt(m_new["ndcg"]) if m_new else na),
        ("catalog coverage (all-products picks)", fmt(pop_cov) if pop_cov is not None else na,
         fmt(coverage) if coverage is not None else na),
        ("bought together: HR@10", fmt(p_bt["hr"]), fmt(m_bt["hr"]) if m_bt else na),
        ("bought together: MRR (whole list; API: top 50)", fmt(p_bt["mrr"]), fmt(m_bt["mrr"]) if m_bt else na),
        ("bought together: MRR@50", fmt(p_bt["mrr50"]), fmt(m_bt["mrr50"]) if m_bt else na),
    ])
    got = {"new_hr": p_new["hr"], "new_ndcg": p_new["ndcg"], "bt_hr": p_bt["hr"], "bt_mrr": p_bt["mrr"]}
    print()
    print("popularity check against issue 10's values: " + ", ".join(
        f"{k} {got[k]:.4f} (issue {v:.4f}{', same' if round(got[k], 4) == v else ''})" for k, v in ISSUE_CHECK.items()))
    print(f"({time.time() - t0:.0f} s)")
    if os.environ.get("ECOM_EVAL_JSON"):
        with open(os.environ["ECOM_EVAL_JSON"], "w") as f:
            json.dump(results, f, indent=1, sort_keys=True)


if __name__ == "__main__":
    main()
