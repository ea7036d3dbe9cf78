-- scripts/wrk-result.lua: the result script of the wrk benchmarks (scripts/bench.sh,
-- scripts/bench-cluster.sh).
-- Counts responses that are not 2xx (wrk itself lets 3xx pass) and prints a
-- machine-readable result line.
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) non2xx = 0 end
function response(status, headers, body)
  if status < 200 or status > 299 then non2xx = non2xx + 1 end
end
function done(summary, latency, requests)
  local bad = 0
  for _, t in ipairs(threads) do bad = bad + (t:get("non2xx") or 0) end
  local e = summary.errors
  io.write(string.format(
    "ECOM_RESULT rps=%.1f avg_ms=%.3f p99_ms=%.3f requests=%d non2xx=%d socket_errors=%d\n",
    summary.requests / (summary.duration / 1e6), latency.mean / 1000,
    latency:percentile(99) / 1000, summary.requests, bad,
    e.connect + e.read + e.write + e.timeout))
end
