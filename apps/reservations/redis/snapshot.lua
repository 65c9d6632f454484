-- Every seat's state and the seq it is consistent with, in one atomic read.
-- args: records (optional): also every reservation and every seat's price, for what
-- rebuilds the projections from this state (inventory.inventory_snapshot_full)
local meta = redis.call('HMGET', K_META, 'seq', 'status')
if not meta[2] then return fail('sale_not_open') end
local result = {seq = tonumber(meta[1]), status = meta[2],
  state = redis.call('HGETALL', K_STATE), holds = redis.call('HGETALL', K_HOLDS)}
if args.records then
  result.reservations = redis.call('HGETALL', K_RESERVATIONS)
  result.prices = redis.call('HGETALL', K_SEATS)
end
return reply(result)
