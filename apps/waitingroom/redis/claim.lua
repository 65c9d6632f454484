-- An admitted buyer takes their pass: from now until now + pass_ms, their commands on the
-- event are let through (the pass itself is signed by the caller, passes.py). Taking it
-- again while it is valid answers the same expiry.
-- args: buyer
if room.on ~= '1' then return cjson.encode({room = figures()}) end
draw()
local place = redis.call('HGET', K_PLACES, args.buyer)
if not place then return fail('not_in_queue') end
local serving = num('serving')
if place == 'e' or tonumber(place) > serving then
  return fail('not_your_turn', {room = figures(), you = place_of(args.buyer)})
end
local ticket = tonumber(place)
local expires = redis.call('ZSCORE', K_ACTIVE, args.buyer)
if redis.call('ZSCORE', K_CLAIMED, ticket) then
  if expires and tonumber(expires) > now then
    return cjson.encode({pass_expires = tonumber(expires)})
  end
  return fail('place_expired')
end
if ticket <= serving_at(now - num('claim_ms')) then return fail('place_expired') end
expires = now + num('pass_ms')
redis.call('ZADD', K_CLAIMED, ticket, ticket)
redis.call('ZADD', K_ACTIVE, expires, args.buyer)
return cjson.encode({pass_expires = expires})
