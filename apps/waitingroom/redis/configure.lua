-- Staff's settings of the room, from Postgres (services.room_sync); the admission state
-- (tickets, serving, passes) is kept. The inventory's meta gets the `room` flag that the
-- command scripts check (apps/reservations/redis/prelude.lua, admission_refusal).
-- args: on, starts_ms, rate, cap, pass_ms, claim_ms, paused
if not room.tick_ms or room.paused == '1' or room.on ~= '1' then
  -- Time spent paused or off earns no admissions.
  set('tick_ms', now)
end
for _, field in ipairs({'on', 'starts_ms', 'rate', 'cap', 'pass_ms', 'claim_ms', 'paused'}) do
  set(field, args[field])
end
redis.call('HSET', K_META, 'room', room.on)
return cjson.encode({room = figures()})
