-- Staff take free seats off sale.
-- args: seats
if not redis.call('HGET', K_META, 'status') then return fail('sale_not_open') end
if #args.seats == 0 then return fail('no_seats') end
local take_over, err = seats_check(args.seats)
if not take_over then return err end
take_over()
for _, seat in ipairs(args.seats) do redis.call('HSET', K_STATE, seat, 'b') end
index_mark(args.seats, false)
local seq = emit('seat.blocked', {seats = args.seats})
return reply({seq = seq, seats = args.seats})
