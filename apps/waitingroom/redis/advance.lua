-- The tick (tasks.py, every second): draw at the start, forget expired passes, and admit
-- as many as the rate (per minute, with the fraction carried to the next tick) and the
-- cap on active buyers allow. Elapsed time comes from the room, so ticks that come late,
-- twice or from two processes admit exactly what the time since the last one allows.
-- args: max_gap_ms (a longer gap, such as the ticker being down, counts as this long:
-- no burst when it comes back)
if room.on ~= '1' then return cjson.encode({room = figures()}) end
draw()
redis.call('ZREMRANGEBYSCORE', K_ACTIVE, '-inf', now)
-- Admissions are earned from the start on, never for the time before it.
local since = math.max(num('tick_ms'), num('starts_ms'))
local elapsed = math.min(math.max(now - since, 0), args.max_gap_ms)
set('tick_ms', now)
if state() == 'open' then
  local serving = num('serving')
  local rate, cap = num('rate'), num('cap')
  local admit = num('tickets') - serving
  local credit = num('credit')
  if rate > 0 then
    credit = credit + rate * elapsed / 60000
    admit = math.min(admit, math.floor(credit))
  end
  if cap > 0 then admit = math.min(admit, cap - figures().active) end
  admit = math.max(admit, 0)
  -- What could not be used (nobody waiting, the cap reached) is not saved up for a burst.
  if rate > 0 then set('credit', math.min(credit - admit, 1)) end
  if admit > 0 then
    serving = serving + admit
    set('serving', serving)
    redis.call('ZADD', K_LOG, 'NX', now, serving)
  end
  -- The log needs to reach back over the claim window and the last minute (figures).
  local horizon = now - math.max(num('claim_ms'), 60000)
  local keep = serving_at(horizon)
  redis.call('ZREMRANGEBYSCORE', K_LOG, '-inf', '(' .. horizon)
  if keep > 0 then redis.call('ZADD', K_LOG, 'NX', horizon, keep) end
end
return cjson.encode({room = figures()})
