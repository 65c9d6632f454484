-- Staff cancel a reservation: its seats are free again, reason "cancelled".
-- args: reservation_id
local raw = redis.call('HGET', K_RESERVATIONS, args.reservation_id)
if not raw then return fail('reservation_not_found') end
local reservation = cjson.decode(raw)
if reservation.status == 'cancelled' then return fail('reservation_cancelled') end
local owned_by, freed = 'r:' .. args.reservation_id, {}
for _, seat in ipairs(reservation.seats) do
  if redis.call('HGET', K_STATE, seat) == owned_by then
    redis.call('HDEL', K_STATE, seat)
    freed[#freed + 1] = seat
  end
end
index_mark(freed, true)
reservation.status = 'cancelled'
redis.call('HSET', K_RESERVATIONS, args.reservation_id, cjson.encode(reservation))
local seq = emit('seat.released', {seats = reservation.seats, reason = 'cancelled',
  reservation_id = args.reservation_id})
return reply({seq = seq, seats = reservation.seats})
