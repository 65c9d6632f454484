-- Hold `seats` for `holder` under a new `token`: all or nothing. With `best` instead of
-- `seats`, the script picks them itself ({count, section, category}; best.lua).
-- args: seats or best, token, holder; address ('addr:<client address>', an anonymous
-- buyer's) and address_factor (the address's cap in buyers' caps), or neither; admitted
local status, ttl, max_per_hold = unpack(redis.call('HMGET', K_META, 'status', 'ttl_ms',
  'max_per_hold'))
if not status then return fail('sale_not_open') end
if status ~= 'on_sale' then return fail('sale_closed') end
local refusal = admission_refusal()
if refusal then return refusal end
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

-- A holder's (or an address's) live holds: their tokens and how many seats they hold.
-- Counting only live holds means a release, a reservation or an expiry frees the room at
-- once, sweep or not.
local function holds_live(holder)
  local tokens, held = {}, 0
  for _, t in ipairs(holder_tokens(holder)) do
    local hold = hold_get(t)
    if hold and hold.expires > now then
      tokens[#tokens + 1] = t
      held = held + #hold.seats
    end
  end
  return tokens, held
end

-- The cap is per holder, across all their live holds, so it cannot be dodged by
-- holding a few seats at a time.
local _, held_now = holds_live(args.holder)
if held_now + count > max_per_hold then
  return fail('hold_limit_exceeded', {limit = max_per_hold, held = held_now})
end
-- An anonymous session costs nothing to make, so the sessions of one address also share
-- a cap: a script that drops its cookies is a new holder every time, not a new address.
if args.address then
  local address_cap = max_per_hold * args.address_factor
  local _, address_held = holds_live(args.address)
  if address_held + count > address_cap then
    return fail('address_limit_exceeded', {limit = address_cap, held = address_held})
  end
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
  created = now, expires = expires, address = args.address}))
redis.call('ZADD', K_EXPIRY, expires, args.token)
-- Re-read: ending stale holds above may have rewritten these token lists. Tokens of holds
-- that expired but were not ended yet are dropped here.
local function token_add(holder)
  local tokens = holds_live(holder)
  tokens[#tokens + 1] = args.token
  holder_tokens_set(holder, tokens)
end
token_add(args.holder)
if args.address then token_add(args.address) end
local seq = emit('seat.held', {seats = seats, hold_token = args.token, expires_at = iso(expires)})
return reply({seq = seq, expires = expires, seats = seats})
