-- A live hold becomes a reservation: every seat of it, atomically.
-- args: token, holder, reservation_id, admitted
local refusal = admission_refusal()
if refusal then return refusal end
local hold, err = hold_for(args.token, args.holder)
if not hold then return err end
local prices = redis.call('HMGET', K_SEATS, unpack(hold.seats))
local total, cents = 0, {}
for i, seat in ipairs(hold.seats) do
  redis.call('HSET', K_STATE, seat, 'r:' .. args.reservation_id)
  cents[i] = tonumber(prices[i])
  total = total + cents[i]
end
hold_forget(args.token, hold)
redis.call('HSET', K_RESERVATIONS, args.reservation_id, cjson.encode({holder = hold.holder,
  seats = hold.seats, status = 'reserved'}))
local seq = emit('seat.reserved', {seats = hold.seats, reservation_id = args.reservation_id,
  hold_token = args.token, holder = hold.holder, price_cents = cents, total_cents = total})
return reply({seq = seq, seats = hold.seats})
