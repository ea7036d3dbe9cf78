-- 011: ecom_checkout_as keeps one plan per statement (issue 7, round 4).
--
-- PL/pgSQL caches each statement's plan, but for a statement with
-- parameters the plan cache plans it again for the call's values (a custom
-- plan) whenever the generic plan's estimated cost is above the custom
-- plans' average. The checkout's two writing statements take arrays
-- (unnest(v_pids, v_qtys), ci.id = ANY (v_ids)), which a generic plan
-- estimates at ten elements against the two of a real cart, so the cache
-- chose custom plans on every call: each checkout planned its two largest
-- statements anew (seen with auto_explain: the array literals inlined in
-- the plans of the eighth call and later). The generic plans are the same
-- shape (a nested loop over the array into products_pkey, cart_items_pkey
-- for the delete), so planning once is all that changes: 2,000 checkouts
-- (with their four cart adds) in one session took 3.3 s instead of 3.8 to
-- 4.2 s.
ALTER FUNCTION ecom_checkout_as(bigint, text, int, bigint, jsonb)
    SET plan_cache_mode = force_generic_plan;
