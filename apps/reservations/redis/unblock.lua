-- Staff put blocked seats back on sale.
-- args: seats
if not redis.call('HGET', K_META, 'status') then return fail('sale_not_open') end
if #args.seats == 0 then return fail('no_seats') end
local states = redis.call('HMGET', K_STATE, unpack(args.seats))
local not_blocked, seen = {}, {}
for i, seat in ipairs(args.seats) do
  if seen[seat] then return fail('duplicate_seats', {seats = {seat}}) end
  seen[seat] = true
  if states[i] ~= 'b' then not_blocked[#not_blocked + 1] = seat end
end
if #not_blocked > 0 then return fail('seats_not_blocked', {seats = not_blocked}) end
for _, seat in ipairs(args.seats) do redis.call('HDEL', K_STATE, seat) end
index_mark(args.seats, true)
local seq = emit('seat.released', {seats = args.seats, reason = 'unblocked'})
return reply({seq = seq, seats = args.seats})
