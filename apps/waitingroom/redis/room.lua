-- Shared head of every waiting-room script (store.py prepends it).
-- docs/architecture.md, "Waiting room".
--
-- KEYS: room (hash: the staff's settings and the admission state), early (sorted set:
-- buyers who arrived before the start, scored by a random draw), places (hash: buyer →
-- ticket, or "e" while their ticket is not drawn yet), claimed (sorted set: tickets whose
-- pass was taken), active (sorted set: buyer → pass expiry, ms), log (sorted set: serving
-- → when it was reached, ms), meta (the event's inventory meta, whose `room` field the
-- command scripts read), all under the event's hash tag; and for join the address's
-- counter of new places. ARGV[1]: JSON arguments with at least `now` (ms).
local K_ROOM, K_EARLY, K_PLACES, K_CLAIMED = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local K_ACTIVE, K_LOG, K_META = KEYS[5], KEYS[6], KEYS[7]
local args = cjson.decode(ARGV[1])
local now = args.now

local function fail(code, extra)
  extra = extra or {}
  extra.error = code
  return cjson.encode(extra)
end

local room = {}
do
  local flat = redis.call('HGETALL', K_ROOM)
  for i = 1, #flat, 2 do room[flat[i]] = flat[i + 1] end
end
local function num(field) return tonumber(room[field] or '0') end
local function set(field, value)
  room[field] = tostring(value)
  redis.call('HSET', K_ROOM, field, room[field])
end

local function state()
  if room.on ~= '1' then return 'off' end
  if now < num('starts_ms') then return 'before' end
  if room.paused == '1' then return 'paused' end
  return 'open'
end

-- At the start, every early arrival gets a ticket in the order of their random draw:
-- arriving early is no advantage. Later arrivals are numbered after them as they come.
local function draw()
  if room.on ~= '1' or room.drawn == '1' or now < num('starts_ms') then return end
  local early = redis.call('ZRANGE', K_EARLY, 0, -1)
  local tickets = num('tickets')
  for i = 1, #early, 1000 do
    local pairs_ = {}
    for j = i, math.min(i + 999, #early) do
      tickets = tickets + 1
      pairs_[#pairs_ + 1] = early[j]
      pairs_[#pairs_ + 1] = tickets
    end
    redis.call('HSET', K_PLACES, unpack(pairs_))
  end
  redis.call('DEL', K_EARLY)
  set('tickets', tickets)
  set('drawn', 1)
end

-- How far admission had got at time `ms` (0 before the first admission).
local function serving_at(ms)
  local found = redis.call('ZREVRANGEBYSCORE', K_LOG, ms, '-inf', 'LIMIT', 0, 1)
  return tonumber(found[1] or '0')
end

-- The room's figures. Admitted tickets not claimed within claim_ms are dropped; those
-- still inside it are pending and count as active (their buyer is on the way).
local function figures()
  local serving = num('serving')
  local lo = serving_at(now - num('claim_ms'))
  local claimed_recent = redis.call('ZCOUNT', K_CLAIMED, '(' .. lo, serving)
  local waiting
  if room.drawn == '1' then waiting = num('tickets') - serving
  else waiting = redis.call('ZCARD', K_EARLY) + num('tickets') - serving end
  local rate = num('rate')
  if rate == 0 then rate = serving - serving_at(now - 60000) end
  return {
    state = state(), serving = serving, waiting = waiting, drawn = room.drawn == '1',
    starts_ms = num('starts_ms'), rate_per_minute = rate,
    admitted = serving,
    active = redis.call('ZCOUNT', K_ACTIVE, '(' .. now, '+inf')
      + (serving - lo - claimed_recent),
    dropped = lo - redis.call('ZCOUNT', K_CLAIMED, 1, lo),
    paused = room.paused == '1',
  }
end

-- One buyer's place: their ticket (nil before the draw), and when their pass expires.
local function place_of(buyer)
  local place = redis.call('HGET', K_PLACES, buyer)
  if not place then return nil end
  local you = {queued = true}
  if place ~= 'e' then you.ticket = tonumber(place) end
  local expires = redis.call('ZSCORE', K_ACTIVE, buyer)
  if expires and tonumber(expires) > now then you.pass_expires = tonumber(expires) end
  return you
end

-- Whether a place still counts: waiting, admitted and still claimable, or admitted with
-- a pass that has not run out. A spent place may be traded for a new one at the back.
local function place_live(buyer)
  local place = redis.call('HGET', K_PLACES, buyer)
  if not place then return false end
  if place == 'e' then return true end
  local ticket = tonumber(place)
  if ticket > num('serving') then return true end
  if redis.call('ZSCORE', K_CLAIMED, ticket) then
    local expires = redis.call('ZSCORE', K_ACTIVE, buyer)
    return expires ~= false and tonumber(expires) > now
  end
  return ticket > serving_at(now - num('claim_ms'))
end
