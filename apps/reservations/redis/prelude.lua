-- Shared head of every inventory script (inventory.py prepends it).
--
-- KEYS: meta, seats, state, holds, holders, expiry, reservations, outbox, and the row
-- index: rows, rows_free, seat_rows, free, sections, row_best (keys.py), all under one event's hash
-- tag. ARGV[1]: the command's arguments as one JSON object, with at least `now` (ms since
-- epoch, the caller's clock), `event_id` and `nonce`, and `request_id` within a request.
local K_META, K_SEATS, K_STATE, K_HOLDS = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local K_HOLDERS, K_EXPIRY, K_RESERVATIONS, K_OUTBOX = KEYS[5], KEYS[6], KEYS[7], KEYS[8]
local K_ROWS, K_ROWS_FREE, K_SEAT_ROWS, K_FREE = KEYS[9], KEYS[10], KEYS[11], KEYS[12]
local K_SECTIONS, K_ROW_BEST = KEYS[13], KEYS[14]
-- The fit sets are one per scope and size, so their names are derived (keys.py, fit and
-- fit_ok): same hash tag, same slot.
local K_FIT = K_META:sub(1, -#':meta' - 1) .. ':fit:'
local args = cjson.decode(ARGV[1])
local now = args.now

local function reply(tbl) return cjson.encode(tbl) end
local function fail(code, extra)
  extra = extra or {}
  extra.error = code
  return cjson.encode(extra)
end

-- ISO 8601 UTC from ms since epoch (Howard Hinnant's civil_from_days): Redis' Lua has
-- no os.date, and timestamps in events must come from the same clock as expiry checks.
local function iso(ms)
  local secs = math.floor(ms / 1000)
  local days, rem = math.floor(secs / 86400), secs % 86400
  local z = days + 719468
  local era = math.floor(z / 146097)
  local doe = z - era * 146097
  local yoe = math.floor((doe - math.floor(doe / 1460) + math.floor(doe / 36524)
    - math.floor(doe / 146096)) / 365)
  local doy = doe - (365 * yoe + math.floor(yoe / 4) - math.floor(yoe / 100))
  local mp = math.floor((5 * doy + 2) / 153)
  local d = doy - math.floor((153 * mp + 2) / 5) + 1
  local m = mp < 10 and mp + 3 or mp - 9
  local y = yoe + era * 400 + (m <= 2 and 1 or 0)
  return string.format('%04d-%02d-%02dT%02d:%02d:%02d.%03dZ', y, m, d,
    math.floor(rem / 3600), math.floor(rem % 3600 / 60), rem % 60, ms % 1000)
end

-- A message id that is unique per (call, seq) yet needs no randomness inside the script.
local function message_id(seq)
  local h = redis.sha1hex(args.nonce .. ':' .. seq)
  return string.format('%s-%s-5%s-a%s-%s', h:sub(1, 8), h:sub(9, 12), h:sub(14, 16),
    h:sub(18, 20), h:sub(21, 32))
end

-- The one way state changes become visible: bump seq and append the envelope to the
-- outbox in the same atomic step as the change itself (no dual write).
local function emit(event_type, data)
  local seq = redis.call('HINCRBY', K_META, 'seq', 1)
  -- request_id: the command's, for the consumers' log lines (nil, so absent, outside one).
  local envelope = {id = message_id(seq), type = event_type, event_id = args.event_id,
    seq = seq, occurred_at = iso(now), data = data, request_id = args.request_id}
  redis.call('XADD', K_OUTBOX, '*', 'seq', seq, 'envelope', cjson.encode(envelope))
  return seq
end

-- The event's waiting room (apps/waitingroom): while it is on (meta `room`), a buyer's
-- command needs a pass, which the caller has checked (args.admitted). Checked here, in the
-- same atomic step as the command, so staff turning the room on or off takes effect at once.
local function admission_refusal()
  if not args.admitted and redis.call('HGET', K_META, 'room') == '1' then
    return fail('not_admitted')
  end
end

local function hold_get(token)
  local raw = redis.call('HGET', K_HOLDS, token)
  if not raw then return nil end
  return cjson.decode(raw)
end

local function holder_tokens(holder)
  local raw = redis.call('HGET', K_HOLDERS, holder)
  if not raw then return {} end
  return cjson.decode(raw)
end

local function holder_tokens_set(holder, tokens)
  if #tokens == 0 then
    redis.call('HDEL', K_HOLDERS, holder)
  else
    redis.call('HSET', K_HOLDERS, holder, cjson.encode(tokens))
  end
end

local function holder_token_drop(holder, token)
  local kept = {}
  for _, t in ipairs(holder_tokens(holder)) do
    if t ~= token then kept[#kept + 1] = t end
  end
  holder_tokens_set(holder, kept)
end

-- A hold ends: its token leaves the holder's list and, for an anonymous buyer's hold, the
-- list of the address it was made from (hold.lua, the address cap).
local function hold_forget(token, hold)
  redis.call('HDEL', K_HOLDS, token)
  redis.call('ZREM', K_EXPIRY, token)
  holder_token_drop(hold.holder, token)
  if hold.address then holder_token_drop(hold.address, token) end
end

-- The row index of best available (docs/architecture.md, Best available). A seat is free
-- in it exactly when it has no state; index_mark is called by every change between the
-- two, so the index is exact after every script.
local function fit_key(scope, size) return K_FIT .. scope .. ':' .. size end
local function fit_ok_key(scope, size) return K_FIT .. 'ok:' .. scope .. ':' .. size end

local function row_parse(raw)
  local section, category, bound, pattern = raw:match('^(%S+) (%S+) (%S+) (%S+)$')
  return {section = section, category = category, bound = bound, pattern = pattern}
end

local function row_scopes(row)
  return {'all', 's:' .. row.section, 'c:' .. row.category}
end

-- Which sizes (1..fit_max) a row can seat side by side, and which of those without
-- stranding a seat: a free run of length L has a block of n that strands nobody exactly
-- when L == n or L >= n + 2 (with L == n + 1, either end leaves one seat alone).
local function row_fits(pattern, fit_max)
  local fits, fits_ok = {}, {}
  for run in pattern:gmatch('1+') do
    local length = #run
    for size = 1, math.min(length, fit_max) do
      fits[size] = true
      if length == size or length >= size + 2 then fits_ok[size] = true end
    end
  end
  return fits, fits_ok
end

-- A row's pattern as the seats' states say it should be (load builds the index from it,
-- index_check compares the index with it). `seats`: the row's keys, '' for a gap.
local function row_pattern(seats)
  local keys = {}
  for _, key in ipairs(seats) do
    if key ~= '' then keys[#keys + 1] = key end
  end
  local states, marks, n = redis.call('HMGET', K_STATE, unpack(keys)), {}, 0
  for pos, key in ipairs(seats) do
    if key == '' then
      marks[pos] = '-'
    else
      n = n + 1
      marks[pos] = states[n] and '0' or '1'
    end
  end
  return table.concat(marks)
end

-- `seats` became free (free = true) or taken: update their rows' patterns, the free
-- counts, the fit sets and drop the rows' cached best blocks. Seats already marked so
-- are left alone, which makes marking twice harmless (best available marks its picks
-- before the hold sets their state).
local function index_mark(seats, free)
  if #seats == 0 then return end
  local mark = free and '1' or '0'
  local by_row, row_order = {}, {}
  for _, location in ipairs(redis.call('HMGET', K_SEAT_ROWS, unpack(seats))) do
    if location then
      local row_id, pos = location:match('^(%d+):(%d+)$')
      if not by_row[row_id] then
        by_row[row_id] = {}
        row_order[#row_order + 1] = row_id
      end
      table.insert(by_row[row_id], tonumber(pos))
    end
  end
  local fit_max = tonumber(redis.call('HGET', K_META, 'fit_max'))
  for _, row_id in ipairs(row_order) do
    local row = row_parse(redis.call('HGET', K_ROWS_FREE, row_id))
    local pattern, changed = row.pattern, 0
    for _, pos in ipairs(by_row[row_id]) do
      if pattern:sub(pos, pos) ~= mark then
        pattern = pattern:sub(1, pos - 1) .. mark .. pattern:sub(pos + 1)
        changed = changed + 1
      end
    end
    if changed > 0 then
      redis.call('HSET', K_ROWS_FREE, row_id,
        table.concat({row.section, row.category, row.bound, pattern}, ' '))
      local fits_before, ok_before = row_fits(row.pattern, fit_max)
      local fits_after, ok_after = row_fits(pattern, fit_max)
      -- Best blocks a search resolved for this row are stale now: forget them, and put
      -- the row's score in those sets back to its bound (best.lua, row_resolve).
      local fields, resolved, stale = {}, {}, {}
      for size = 1, fit_max do fields[size] = row_id .. ':' .. size end
      local cached = redis.call('HMGET', K_ROW_BEST, unpack(fields))
      for size = 1, fit_max do
        if cached[size] then
          resolved[size] = true
          stale[#stale + 1] = fields[size]
        end
      end
      if #stale > 0 then redis.call('HDEL', K_ROW_BEST, unpack(stale)) end
      for _, scope in ipairs(row_scopes(row)) do
        redis.call('HINCRBY', K_FREE, scope, free and changed or -changed)
        for size = 1, fit_max do
          local key = fit_key(scope, size)
          if fits_after[size] and not fits_before[size] then
            redis.call('ZADD', key, row.bound, row_id)
          elseif fits_before[size] and not fits_after[size] then
            redis.call('ZREM', key, row_id)
          end
          key = fit_ok_key(scope, size)
          if ok_after[size] and (resolved[size] or not ok_before[size]) then
            redis.call('ZADD', key, row.bound, row_id)
          elseif ok_before[size] and not ok_after[size] then
            redis.call('ZREM', key, row_id)
          end
        end
      end
    end
  end
end

-- Free every seat still held by `token`, drop the hold and say so with `reason`.
local function hold_end(token, hold, reason)
  local freed = {}
  local held_by = 'h:' .. token
  for _, seat in ipairs(hold.seats) do
    if redis.call('HGET', K_STATE, seat) == held_by then
      redis.call('HDEL', K_STATE, seat)
      freed[#freed + 1] = seat
    end
  end
  index_mark(freed, true)
  hold_forget(token, hold)
  if #freed > 0 then
    return emit('seat.released', {seats = freed, reason = reason, hold_token = token})
  end
  return nil
end

-- End up to `limit` holds whose expiry has passed, reason "expired"; returns how many.
local function holds_expire(limit)
  local ended = 0
  local due = redis.call('ZRANGEBYSCORE', K_EXPIRY, '-inf', now, 'LIMIT', 0, limit)
  for _, token in ipairs(due) do
    local hold = hold_get(token)
    if hold and hold.expires <= now then
      hold_end(token, hold, 'expired')
      ended = ended + 1
    elseif not hold then
      redis.call('ZREM', K_EXPIRY, token)
    end
  end
  return ended
end

-- Seats the caller may take: a seat is free when it has no state, or when it is held
-- by a hold that has expired (the sweep may not have run yet; correctness never waits
-- for it). Returns unavailable seats and the expired holds to end first, in order.
local function seats_check(seats)
  local unknown, unavailable, seen = {}, {}, {}
  local stale, stale_order = {}, {}
  local prices = redis.call('HMGET', K_SEATS, unpack(seats))
  local states = redis.call('HMGET', K_STATE, unpack(seats))
  for i, seat in ipairs(seats) do
    if seen[seat] then return nil, fail('duplicate_seats', {seats = {seat}}) end
    seen[seat] = true
    if not prices[i] then
      unknown[#unknown + 1] = seat
    elseif states[i] then
      local s = states[i]
      local token = s:sub(1, 2) == 'h:' and s:sub(3) or nil
      local hold = token and hold_get(token)
      if token and (not hold or hold.expires <= now) then
        if not stale[token] then
          stale[token] = hold or {seats = {seat}, holder = ''}
          stale_order[#stale_order + 1] = token
        end
      else
        unavailable[#unavailable + 1] = seat
      end
    end
  end
  if #unknown > 0 then return nil, fail('unknown_seats', {seats = unknown}) end
  if #unavailable > 0 then return nil, fail('seats_unavailable', {seats = unavailable}) end
  return function()
    for _, token in ipairs(stale_order) do hold_end(token, stale[token], 'expired') end
  end, prices
end

-- Checks shared by the commands on an existing hold.
local function hold_for(token, holder)
  local hold = hold_get(token)
  if not hold then return nil, fail('hold_not_found') end
  if hold.holder ~= holder then return nil, fail('not_hold_owner') end
  if hold.expires <= now then return nil, fail('hold_expired') end
  return hold
end
