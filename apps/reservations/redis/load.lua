-- Put an event on sale: load its seats (key → price in cents) and its rules. Loading
-- again (re-opening a closed sale, or an opening that did not finish) keeps every seat's
-- state and the event's seq: history is never rewritten. The venue's seats cannot change
-- in between (services.venue_layout_check_editable).
--
-- The row index of best available is rebuilt here from the rows and the seats' current
-- states, so loading again also repairs it.
-- args: seats ([[key, cents], ...]), rows ([{id, section, category, bound, geometry}],
-- bound as a string and geometry as JSON text, both kept exactly as Python wrote them),
-- focal ([x, y]), ttl_ms, max_per_hold, max_hold_ms
for _, pair in ipairs(args.seats) do
  redis.call('HSET', K_SEATS, pair[1], pair[2])
end
redis.call('HSETNX', K_META, 'seq', 0)
redis.call('HSET', K_META, 'status', 'on_sale', 'ttl_ms', args.ttl_ms,
  'max_per_hold', args.max_per_hold, 'max_hold_ms', args.max_hold_ms)

-- Drop the old index, fit sets included (their names come from the old sections).
local old_fit_max = tonumber(redis.call('HGET', K_META, 'fit_max') or '0')
local old_scopes, doomed = {all = true}, {}
local sections = redis.call('HGETALL', K_SECTIONS)
for i = 1, #sections, 2 do
  old_scopes['s:' .. sections[i]] = true
  old_scopes['c:' .. sections[i + 1]] = true
end
for scope in pairs(old_scopes) do
  for size = 1, old_fit_max do
    doomed[#doomed + 1] = fit_key(scope, size)
    doomed[#doomed + 1] = fit_ok_key(scope, size)
  end
end
for i = 1, #doomed, 500 do
  redis.call('DEL', unpack(doomed, i, math.min(i + 499, #doomed)))
end
redis.call('DEL', K_ROWS, K_ROWS_FREE, K_SEAT_ROWS, K_FREE, K_SECTIONS, K_ROW_BEST)

local fit_max = args.max_per_hold
local free, fits = {}, {}  -- scope → free seats; fit set key → {score, member, ...}
for _, row in ipairs(args.rows) do
  local id = tostring(row.id)
  local seats = cjson.decode(row.geometry).k
  local pattern = row_pattern(seats)
  local _, free_here = pattern:gsub('1', '')
  local locations = {}
  for pos, key in ipairs(seats) do
    if key ~= '' then
      locations[#locations + 1] = key
      locations[#locations + 1] = id .. ':' .. pos
    end
  end
  for i = 1, #locations, 1000 do
    redis.call('HSET', K_SEAT_ROWS, unpack(locations, i, math.min(i + 999, #locations)))
  end
  redis.call('HSET', K_ROWS, id, row.geometry)
  redis.call('HSET', K_ROWS_FREE, id,
    table.concat({row.section, row.category, row.bound, pattern}, ' '))
  redis.call('HSET', K_SECTIONS, row.section, row.category)
  local parsed = {section = tostring(row.section), category = tostring(row.category)}
  local row_fit, row_fit_ok = row_fits(pattern, fit_max)
  for _, scope in ipairs(row_scopes(parsed)) do
    free[scope] = (free[scope] or 0) + free_here
    for size = 1, fit_max do
      local keys = {}
      if row_fit[size] then keys[#keys + 1] = fit_key(scope, size) end
      if row_fit_ok[size] then keys[#keys + 1] = fit_ok_key(scope, size) end
      for _, key in ipairs(keys) do
        fits[key] = fits[key] or {}
        table.insert(fits[key], row.bound)
        table.insert(fits[key], id)
      end
    end
  end
end
for scope, count in pairs(free) do redis.call('HSET', K_FREE, scope, count) end
for key, members in pairs(fits) do
  for i = 1, #members, 1000 do
    redis.call('ZADD', key, unpack(members, i, math.min(i + 999, #members)))
  end
end
redis.call('HSET', K_META, 'fit_max', fit_max, 'focal_x', args.focal[1],
  'focal_y', args.focal[2])
return reply({seq = tonumber(redis.call('HGET', K_META, 'seq'))})
