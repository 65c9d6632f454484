-- Every seat's state and the seq it is consistent with, in one atomic read.
-- args: (none beyond now)
local meta = redis.call('HMGET', K_META, 'seq', 'status')
if not meta[2] then return fail('sale_not_open') end
return reply({seq = tonumber(meta[1]), status = meta[2],
  state = redis.call('HGETALL', K_STATE), holds = redis.call('HGETALL', K_HOLDS)})
