#!/usr/bin/env python3
"""tools/oaslint/add-common.py [openapi/openapi.json]

Adds to every operation of the OpenAPI document what the server does on
every route, by reference to the shared components, so that a new path
(or one merged from another branch) passes the OWASP rules of
scripts/oaslint.sh without copying them by hand:
  - on every response: the RateLimit-Policy, RateLimit (EcomRateLimit,
    EcomTokenRateLimit) and Access-Control-Allow-Origin/-Credentials
    (EcomCORSOrigins) headers (components/headers), and Ecom-Request-Id
    when components/headers has EcomRequestId (issue 11, part 3), unless
    the response is a $ref (the components/responses carry them themselves);
  - the 400 (BadRequest: a NUL byte in the query string, on any route),
    401 (Unauthorized: a bad token is refused on every route but the
    payment webhook), 429 (Throttled) and 500 (InternalError) responses an
    operation does not list yet, in status order;
  - security [{}, {"bearerAuth": []}] (public, a token is checked when
    sent) on an operation that has none.
Idempotent; rewrites the file in its own format (2-space JSON). The limits
of strings, integers and arrays are not mechanical: give them by hand
(see README.md, "The API").
"""
import json
import sys

NO_401 = {'/payments/webhook/'}   # authenticated by Ecom-Signature (400)
HEADERS = [('RateLimit-Policy', 'RateLimitPolicy'), ('RateLimit', 'RateLimit'),
           ('Access-Control-Allow-Origin', 'AccessControlAllowOrigin'),
           ('Access-Control-Allow-Credentials', 'AccessControlAllowCredentials')]
METHODS = ('get', 'put', 'post', 'delete', 'patch', 'head', 'options', 'trace')


def ref(kind, name):
    return {'$ref': '#/components/%s/%s' % (kind, name)}


def add_headers(resp, headers):
    if '$ref' in resp:
        return
    h = resp.setdefault('headers', {})
    for name, comp in headers:
        h.setdefault(name, ref('headers', comp))


def insert(resps, code, val):
    """resps with code added before the first larger status, if missing."""
    if code in resps:
        return resps
    out, done = {}, False
    for k, v in resps.items():
        if not done and k.isdigit() and int(k) > int(code):
            out[code], done = val, True
        out[k] = v
    if not done:
        out[code] = val
    return out


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else 'openapi/openapi.json'
    with open(path, encoding='utf-8') as f:
        doc = json.load(f)
    headers = list(HEADERS)
    if 'EcomRequestId' in doc.get('components', {}).get('headers', {}):
        headers.append(('Ecom-Request-Id', 'EcomRequestId'))
    for resp in doc.get('components', {}).get('responses', {}).values():
        add_headers(resp, headers)
    for p, item in doc['paths'].items():
        for m in METHODS:
            op = item.get(m)
            if not isinstance(op, dict):
                continue
            rs = op.setdefault('responses', {})
            for r in rs.values():
                add_headers(r, headers)
            if '400' not in rs and '422' not in rs:
                rs = insert(rs, '400', ref('responses', 'BadRequest'))
            if p not in NO_401:
                rs = insert(rs, '401', ref('responses', 'Unauthorized'))
            rs = insert(rs, '429', ref('responses', 'Throttled'))
            rs = insert(rs, '500', ref('responses', 'InternalError'))
            op['responses'] = rs
            op.setdefault('security', [{}, {'bearerAuth': []}])
    with open(path, 'w', encoding='utf-8') as f:
        json.dump(doc, f, indent=2, ensure_ascii=False)
        f.write('\n')


if __name__ == '__main__':
    main()
