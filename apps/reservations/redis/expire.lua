-- The sweep: end up to args.limit holds whose expiry has passed, reason "expired".
-- args: limit
return reply({ended = holds_expire(args.limit)})
