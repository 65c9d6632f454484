-- Put an event on sale: load its seats (key → price in cents) and its rules. Loading
-- again (re-opening a closed sale, seats added to the venue) keeps every seat's state and
-- the event's seq: history is never rewritten.
-- args: seats ([[key, cents], ...]), ttl_ms, max_per_hold, max_hold_ms
for _, pair in ipairs(args.seats) do
  redis.call('HSET', K_SEATS, pair[1], pair[2])
end
redis.call('HSETNX', K_META, 'seq', 0)
redis.call('HSET', K_META, 'status', 'on_sale', 'ttl_ms', args.ttl_ms,
  'max_per_hold', args.max_per_hold, 'max_hold_ms', args.max_hold_ms)
return reply({seq = tonumber(redis.call('HGET', K_META, 'seq'))})
