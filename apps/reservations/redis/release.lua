-- Release some (args.seats) or all (empty list) seats of a hold.
-- args: token, holder, seats, admitted
local refusal = admission_refusal()
if refusal then return refusal end
local hold, err = hold_for(args.token, args.holder)
if not hold then return err end
local wanted = args.seats
if #wanted == 0 then wanted = hold.seats end
local in_hold, seen = {}, {}
for _, seat in ipairs(hold.seats) do in_hold[seat] = true end
local foreign = {}
for _, seat in ipairs(wanted) do
  if seen[seat] then return fail('duplicate_seats', {seats = {seat}}) end
  seen[seat] = true
  if not in_hold[seat] then foreign[#foreign + 1] = seat end
end
if #foreign > 0 then return fail('seats_not_in_hold', {seats = foreign}) end

for _, seat in ipairs(wanted) do redis.call('HDEL', K_STATE, seat) end
index_mark(wanted, true)
local kept = {}
for _, seat in ipairs(hold.seats) do
  if not seen[seat] then kept[#kept + 1] = seat end
end
if #kept == 0 then
  hold_forget(args.token, hold)
else
  hold.seats = kept
  redis.call('HSET', K_HOLDS, args.token, cjson.encode(hold))
end
local seq = emit('seat.released', {seats = wanted, reason = 'released', hold_token = args.token})
return reply({seq = seq, seats = wanted})
