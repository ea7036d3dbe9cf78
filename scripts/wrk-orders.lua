-- scripts/wrk-orders.lua: the order scenarios of the wrk benchmarks
-- (scripts/bench.sh mix and purchase, scripts/bench-cluster.sh mix). The
-- caller prepends the globals tokens (one user's bearer token per thread),
-- pids (the product ids the users add) and can_pay (the module has the
-- payment route), and passes the scenario as wrk's script argument.
-- One user per thread, one connection per thread (wrk -tN -cN), so the
-- steps of each user run in order: request() is called again only after
-- response() has seen the previous answer.
local threads = {}
local assigned = 0
function setup(thread)
  assigned = assigned + 1
  thread:set("me", assigned)
  table.insert(threads, thread)
end
function init(args)
  scenario = args[1]
  auth = "Bearer " .. tokens[me]
  non2xx, orders, purchases, n = 0, 0, 0, 0
  step, order_id = "add", nil
  adds = 0
end
local json = { ["Authorization"] = nil, ["Content-Type"] = "application/json" }
request = function()
  json["Authorization"] = auth
  if step == "add" then
    n = n + 1
    local pid = pids[((me * 31 + n * 7) % #pids) + 1]
    return wrk.format("POST", "/cart/", json,
      string.format('{"product_id": %d, "quantity": 1}', pid))
  elseif step == "checkout" then
    return wrk.format("POST", "/orders/", { ["Authorization"] = auth })
  else
    return wrk.format("POST", "/orders/" .. order_id .. "/payments/", json,
      '{"token": "tok_ok"}')
  end
end
response = function(status, headers, body)
  local ok = status >= 200 and status <= 299
  if not ok then non2xx = non2xx + 1 end
  if step == "add" then
    adds = adds + 1
    if scenario == "purchase" or adds >= 2 then step = "checkout"; adds = 0 end
  elseif step == "checkout" then
    if status == 201 then
      orders = orders + 1
      order_id = string.match(headers["Location"] or "", "/orders/(%d+)/")
    end
    if scenario == "purchase" and can_pay and status == 201 and order_id then
      step = "pay"
    else
      step = "add"
    end
  else
    if status == 201 then purchases = purchases + 1 end
    step = "add"
  end
end
function done(summary, latency, requests)
  local bad, o, p = 0, 0, 0
  for _, t in ipairs(threads) do
    bad = bad + (t:get("non2xx") or 0)
    o = o + (t:get("orders") or 0)
    p = p + (t:get("purchases") or 0)
  end
  local secs = summary.duration / 1e6
  local e = summary.errors
  -- init() ran in the threads' Lua states: ask one which scenario it ran
  local scenario = threads[1] and threads[1]:get("scenario")
  local what
  if scenario == "purchase" and can_pay then
    what = string.format("purchases_s=%.1f counted=paid_purchases", p / secs)
  elseif scenario == "purchase" then
    what = string.format("orders_s=%.1f counted=orders:no_payment_route_yet", o / secs)
  else
    what = string.format("orders_s=%.1f counted=orders", o / secs)
  end
  io.write(string.format(
    "ECOM_RESULT rps=%.1f avg_ms=%.3f p99_ms=%.3f requests=%d non2xx=%d socket_errors=%d %s\n",
    summary.requests / secs, latency.mean / 1000,
    latency:percentile(99) / 1000, summary.requests, bad,
    e.connect + e.read + e.write + e.timeout, what))
end
