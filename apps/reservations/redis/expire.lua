-- The sweep: end up to args.limit holds whose expiry has passed, reason "expired".
-- args: limit
local due = redis.call('ZRANGEBYSCORE', K_EXPIRY, '-inf', now, 'LIMIT', 0, args.limit)
local ended = 0
for _, token in ipairs(due) do
  local hold = hold_get(token)
  if hold and hold.expires <= now then
    hold_end(token, hold, 'expired')
    ended = ended + 1
  elseif not hold then
    redis.call('ZREM', K_EXPIRY, token)
  end
end
return reply({ended = ended})
