-- Hold `seats` for `holder` under a new `token`: all or nothing. With `best` instead of
-- `seats`, the script picks them itself ({count, section, category}; best.lua).
-- args: seats or best, token, holder
local status, ttl, max_per_hold = unpack(redis.call('HMGET', K_META, 'status', 'ttl_ms',
  'max_per_hold'))
if not status then return fail('sale_not_open') end
if status ~= 'on_sale' then return fail('sale_closed') end
max_per_hold = tonumber(max_per_hold)
local seats = args.seats
local count = args.best and args.best.count or #seats
if count == 0 then return fail('no_seats') end
if count > max_per_hold then return fail('hold_limit_exceeded', {limit = max_per_hold}) end

local take_over, err
if not args.best then
  take_over, err = seats_check(seats)
  if not take_over then return err end
end

-- The cap is per holder, across all their live holds, so it cannot be dodged by
-- holding a few seats at a time.
local held_now = 0
for _, t in ipairs(holder_tokens(args.holder)) do
  local hold = hold_get(t)
  if hold and hold.expires > now then held_now = held_now + #hold.seats end
end
if held_now + count > max_per_hold then
  return fail('hold_limit_exceeded', {limit = max_per_hold, held = held_now})
end

if args.best then
  seats, err = best_pick(args.best)
  if not seats then return err end
else
  take_over()
end
local expires = now + tonumber(ttl)
for _, seat in ipairs(seats) do redis.call('HSET', K_STATE, seat, 'h:' .. args.token) end
if not args.best then index_mark(seats, false) end  -- best_pick marked its picks
redis.call('HSET', K_HOLDS, args.token, cjson.encode({holder = args.holder, seats = seats,
  created = now, expires = expires}))
redis.call('ZADD', K_EXPIRY, expires, args.token)
-- Re-read: ending stale holds above may have rewritten this holder's token list.
local tokens = {}
for _, t in ipairs(holder_tokens(args.holder)) do
  local hold = hold_get(t)
  if hold and hold.expires > now then tokens[#tokens + 1] = t end
end
tokens[#tokens + 1] = args.token
holder_tokens_set(args.holder, tokens)
local seq = emit('seat.held', {seats = seats, hold_token = args.token, expires_at = iso(expires)})
return reply({seq = seq, expires = expires, seats = seats})
