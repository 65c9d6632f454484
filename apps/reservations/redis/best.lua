-- Best available, inside the hold script (docs/architecture.md, Best available): the rules
-- of best_available.py's reference model, searched over the row index instead of seats.
--
-- A block is `size` free seats side by side in one row. Better blocks strand nobody (no
-- single free seat left between the block and a taken seat or the row's end), then sit
-- nearer the focal point (the block's centre); equals go to the first row in the
-- venue's order (row ids are zero-padded, so text order is that order) and the leftmost
-- block in it.

-- How many rows one ZRANGE brings when every block strands someone.
local ROWS_PER_READ = 16
-- Holds already past expiry that a pick ends first, so their seats count as free.
local EXPIRE_FIRST = 50

-- A row's geometry, decoded once per script run.
local geometries = {}
local function row_geometry(row_id)
  local geometry = geometries[row_id]
  if not geometry then
    geometry = cjson.decode(redis.call('HGET', K_ROWS, row_id))
    geometries[row_id] = geometry
  end
  return geometry
end

-- The best blocks of `size` in one row: `ok` strands nobody, `stranding` does. Each is
-- {distance, first} (first: the block's position in the row) or nil. The leftmost of
-- equals wins.
local function row_blocks(row_id, size, fx, fy)
  local pattern = row_parse(redis.call('HGET', K_ROWS_FREE, row_id)).pattern
  local xs, ys
  -- Plain locals, no table per block: this loop is most of a search's work.
  local ok_distance, ok_first, strand_distance, strand_first
  local start, stop = pattern:find('1+')
  while start do
    if stop - start + 1 >= size then
      if not xs then
        local geometry = row_geometry(row_id)
        xs, ys = geometry.x, geometry.y
      end
      for first = start, stop - size + 1 do
        local sx, sy = 0, 0
        for pos = first, first + size - 1 do
          sx, sy = sx + xs[pos], sy + ys[pos]
        end
        local dx, dy = sx / size - fx, sy / size - fy
        local distance = math.sqrt(dx * dx + dy * dy)
        if first - start == 1 or stop - (first + size - 1) == 1 then
          if not strand_distance or distance < strand_distance then
            strand_distance, strand_first = distance, first
          end
        elseif not ok_distance or distance < ok_distance then
          ok_distance, ok_first = distance, first
        end
      end
    end
    start, stop = pattern:find('1+', stop + 1)
  end
  return ok_distance and {distance = ok_distance, first = ok_first},
    strand_distance and {distance = strand_distance, first = strand_first}
end

-- The fit_ok sets score a row by its bound until a search needs the row: then by the
-- exact distance of its best block of that size, which the row cache remembers. Either
-- way no score exceeds the row's true best, so a row at the top of a set whose score is
-- exact is the best (equal scores go to the lower row id: the venue's row order).
local function row_resolve(row_id, size, fx, fy)
  local row = row_parse(redis.call('HGET', K_ROWS_FREE, row_id))
  local ok = row_blocks(row_id, size, fx, fy)
  local distance = string.format('%.17g', ok.distance)  -- every digit: Lua prints 14
  redis.call('HSET', K_ROW_BEST, row_id .. ':' .. size, distance .. ' ' .. ok.first)
  for _, scope in ipairs(row_scopes(row)) do
    redis.call('ZADD', fit_ok_key(scope, size), 'XX', distance, row_id)
  end
end

-- The best block of `size` in `scope` that strands nobody, as {distance, first, row}.
local function block_best_ok(scope, size, fx, fy)
  local key = fit_ok_key(scope, size)
  while true do
    local top = redis.call('ZRANGE', key, 0, 0)[1]
    if not top then return nil end
    local cached = redis.call('HGET', K_ROW_BEST, top .. ':' .. size)
    if cached then
      local distance, first = cached:match('^(%S+) (%S+)$')
      return {distance = tonumber(distance), first = tonumber(first), row = top}
    end
    row_resolve(top, size, fx, fy)
  end
end

-- The best block of `size` in `scope` when every such block strands a seat (rare: no
-- cache). Rows come nearest bound first; a row whose bound exceeds the best so far
-- cannot beat it.
local function block_best_stranding(scope, size, fx, fy)
  local key, best, offset = fit_key(scope, size), nil, 0
  while true do
    local rows = redis.call('ZRANGE', key, offset, offset + ROWS_PER_READ - 1, 'WITHSCORES')
    if #rows == 0 then return best end
    for i = 1, #rows, 2 do
      local row_id = rows[i]
      if best and tonumber(rows[i + 1]) > best.distance then return best end
      local _, block = row_blocks(row_id, size, fx, fy)
      if not best or block.distance < best.distance
          or (block.distance == best.distance and row_id < best.row) then
        best = block
        best.row = row_id
      end
    end
    offset = offset + ROWS_PER_READ
  end
end

local function block_best(scope, size, fx, fy)
  return block_best_ok(scope, size, fx, fy) or block_best_stranding(scope, size, fx, fy)
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
  local fx, fy, fit_max = unpack(redis.call('HMGET', K_META, 'focal_x', 'focal_y', 'fit_max'))
  if not fit_max then  -- put on sale before the index existed: an operator must act
    return nil, redis.error_reply('no row index for best available: open the sale again')
  end
  fx, fy = tonumber(fx), tonumber(fy)
  holds_expire(EXPIRE_FIRST)
  local scope = scope_of(best)
  if not scope or tonumber(redis.call('HGET', K_FREE, scope) or '0') < best.count then
    return nil, fail('seats_unavailable')
  end
  local picked, remaining = {}, best.count
  while remaining > 0 do
    -- Enough seats are free in the scope, so some row has at least one: size >= 1.
    local size = remaining
    while redis.call('ZCARD', fit_key(scope, size)) == 0 do size = size - 1 end
    local block = block_best(scope, size, fx, fy)
    local keys = row_geometry(block.row).k
    local seats = {}
    for pos = block.first, block.first + size - 1 do seats[#seats + 1] = keys[pos] end
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
