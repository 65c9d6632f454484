-- Best available, inside the hold script (docs/architecture.md, Best available): the rules
-- of best_available.py's reference model, searched over the row index instead of seats.
--
-- A block is `size` free seats side by side in one row. Better blocks strand nobody (no
-- single free seat left between the block and a taken seat or the row's end), then sit
-- nearer the focal point (the block's centre); equals go to the first row in visiting
-- order (bound, then row id as bytes) and the leftmost block in it.

-- How many rows one ZRANGE brings: most searches end in the first row or two.
local ROWS_PER_READ = 16
-- Holds already past expiry that a pick ends first, so their seats count as free.
local EXPIRE_FIRST = 50

-- The best blocks of `size` in one row, folded into the best so far: `ok` strands nobody,
-- `stranding` does. Each is {distance, first, geometry} or nil.
local function row_blocks(row_id, size, fx, fy, ok, stranding)
  local pattern = row_parse(redis.call('HGET', K_ROWS_FREE, row_id)).pattern
  local geometry
  local start, stop = pattern:find('1+')
  while start do
    if stop - start + 1 >= size then
      geometry = geometry or cjson.decode(redis.call('HGET', K_ROWS, row_id))
      for first = start, stop - size + 1 do
        local sx, sy = 0, 0
        for pos = first, first + size - 1 do
          sx, sy = sx + geometry.x[pos], sy + geometry.y[pos]
        end
        local dx, dy = sx / size - fx, sy / size - fy
        local block = {distance = math.sqrt(dx * dx + dy * dy), first = first,
          geometry = geometry}
        if first - start == 1 or stop - (first + size - 1) == 1 then
          if not stranding or block.distance < stranding.distance then stranding = block end
        elseif not ok or block.distance < ok.distance then
          ok = block
        end
      end
    end
    start, stop = pattern:find('1+', stop + 1)
  end
  return ok, stranding
end

-- The best block of `size` in `scope`. Rows come from the scope's fit set for `size`, so
-- only rows that can seat the block are visited, nearest bound first; once a block that
-- strands nobody is nearer than the next row's bound, no later row can beat it.
local function block_best(scope, size, fx, fy)
  local ok, stranding
  local key, offset = fit_key(scope, size), 0
  while true do
    local rows = redis.call('ZRANGE', key, offset, offset + ROWS_PER_READ - 1, 'WITHSCORES')
    if #rows == 0 then break end
    for i = 1, #rows, 2 do
      if ok and tonumber(rows[i + 1]) >= ok.distance then return ok end
      ok, stranding = row_blocks(rows[i], size, fx, fy, ok, stranding)
    end
    offset = offset + ROWS_PER_READ
  end
  return ok or stranding
end

local function scope_of(best)
  if best.section then
    -- Both filters: the section's seats, if the section has that category at all.
    local category = redis.call('HGET', K_SECTIONS, tostring(best.section))
    if best.category and category ~= tostring(best.category) then return nil end
    return 's:' .. best.section
  end
  if best.category then return 'c:' .. best.category end
  return 'all'
end

-- Pick `best.count` free seats: one block if any row seats them all side by side;
-- otherwise greedily the longest run still needed, again and again, each the best of its
-- size. Picked seats are marked taken in the index at once, so the next round sees them;
-- the caller sets their state. Returns the seats, or nil and the refusal.
local function best_pick(best)
  holds_expire(EXPIRE_FIRST)
  local scope = scope_of(best)
  if not scope or tonumber(redis.call('HGET', K_FREE, scope) or '0') < best.count then
    return nil, fail('seats_unavailable')
  end
  local focal = redis.call('HMGET', K_META, 'focal_x', 'focal_y')
  local fx, fy = tonumber(focal[1]), tonumber(focal[2])
  local picked, remaining = {}, best.count
  while remaining > 0 do
    -- Enough seats are free in the scope, so some row has at least one: size >= 1.
    local size = remaining
    while redis.call('ZCARD', fit_key(scope, size)) == 0 do size = size - 1 end
    local block = block_best(scope, size, fx, fy)
    local seats = {}
    for pos = block.first, block.first + size - 1 do seats[#seats + 1] = block.geometry.k[pos] end
    index_mark(seats, false)
    for _, seat in ipairs(seats) do picked[#picked + 1] = seat end
    remaining = remaining - size
  end
  -- The index says these seats are free; the states must agree, or the index is wrong
  -- (a bug, or data from before it existed) and nothing may be held on its word.
  local states, were_free = redis.call('HMGET', K_STATE, unpack(picked)), {}
  for i, seat in ipairs(picked) do
    if not states[i] then were_free[#were_free + 1] = seat end
  end
  if #were_free < #picked then
    index_mark(were_free, true)
    return nil, redis.error_reply('seat index out of date: see manage.py reconcile')
  end
  return picked
end
