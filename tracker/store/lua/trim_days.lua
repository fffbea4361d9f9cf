-- Keep a customer's day buckets to the days a trend can still read, expiring after the newest of them
-- (tracker.store.customer_days): what a customer's outbox step does after writing them, here for buckets written
-- before the rule (`tracker upgrade-store`). Safe at any time: it changes nothing a trend reads.
-- KEYS: 1 a customer's day buckets
-- ARGV: 1 the days kept, 2 today's number (days since 1970-01-01, UTC)
-- Returns 1 when the buckets were there, else 0.
--#days
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
keep_days(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]))
return 1
