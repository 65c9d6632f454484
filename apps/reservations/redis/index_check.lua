-- Compare the row index of best available with the seats' states (for reconcile): every
-- difference, as text, at most args.limit of them.
-- args: limit
local problems = {}
local function problem(text)
  if #problems < args.limit then problems[#problems + 1] = text end
end
local fit_max = tonumber(redis.call('HGET', K_META, 'fit_max'))
if not fit_max then
  return reply({problems = {'no row index: open the sale again to build it'}})
end

local free, members, indexed = {}, {}, 0  -- scope → count; fit set key → row count
local rows = redis.call('HGETALL', K_ROWS)
for i = 1, #rows, 2 do
  local id, seats = rows[i], cjson.decode(rows[i + 1]).k
  local raw = redis.call('HGET', K_ROWS_FREE, id)
  local row = raw and row_parse(raw)
  if not row then
    problem('row ' .. id .. ': no pattern')
  else
    for pos, key in ipairs(seats) do
      if key ~= '' then
        indexed = indexed + 1
        if redis.call('HGET', K_SEAT_ROWS, key) ~= id .. ':' .. pos then
          problem('seat ' .. key .. ': not indexed at row ' .. id .. ' position ' .. pos)
        end
      end
    end
    local pattern = row_pattern(seats)
    if pattern ~= row.pattern then
      problem('row ' .. id .. ': pattern ' .. row.pattern .. ', states say ' .. pattern)
    end
    local _, free_here = pattern:gsub('1', '')
    local row_fit, row_fit_ok = row_fits(pattern, fit_max)
    for _, scope in ipairs(row_scopes(row)) do
      free[scope] = (free[scope] or 0) + free_here
      for size = 1, fit_max do
        -- A fit_ok score is the bound, or the cached best distance once resolved.
        local cached = redis.call('HGET', K_ROW_BEST, id .. ':' .. size)
        local resolved = cached and tonumber(cached:match('^(%S+)')) or tonumber(row.bound)
        for _, set in ipairs({{fit_key(scope, size), row_fit[size], tonumber(row.bound)},
                              {fit_ok_key(scope, size), row_fit_ok[size], resolved}}) do
          local key, fits, expected = set[1], set[2], set[3]
          local score = redis.call('ZSCORE', key, id)
          if fits then
            members[key] = (members[key] or 0) + 1
            if not score then
              problem('row ' .. id .. ': missing from ' .. key)
            elseif tonumber(score) ~= expected then
              problem('row ' .. id .. ': score ' .. score .. ' in ' .. key .. ', not ' .. expected)
            end
          elseif score then
            problem('row ' .. id .. ': in ' .. key .. ', but pattern ' .. pattern)
          end
        end
      end
    end
  end
end

-- Every cached best block is the one the row has now.
local focal = redis.call('HMGET', K_META, 'focal_x', 'focal_y')
local cache = redis.call('HGETALL', K_ROW_BEST)
for i = 1, #cache, 2 do
  local row_id, size = cache[i]:match('^(%d+):(%d+)$')
  local ok, fresh = nil, 'no row'
  if redis.call('HEXISTS', K_ROWS_FREE, row_id) == 1 then
    ok = row_blocks(row_id, tonumber(size), tonumber(focal[1]), tonumber(focal[2]))
    fresh = ok and string.format('%.17g %d', ok.distance, ok.first) or 'none'
  end
  if fresh ~= cache[i + 1] then
    problem('row ' .. row_id .. ' size ' .. size .. ': cached ' .. cache[i + 1] .. ', now ' .. fresh)
  end
end

if indexed ~= redis.call('HLEN', K_SEATS) then
  problem(redis.call('HLEN', K_SEATS) .. ' seats on sale, ' .. indexed .. ' in rows')
end
local counted = redis.call('HGETALL', K_FREE)
local seen = {}
for i = 1, #counted, 2 do
  local scope, count = counted[i], tonumber(counted[i + 1])
  seen[scope] = true
  if count ~= (free[scope] or 0) then
    problem('scope ' .. scope .. ': ' .. count .. ' free counted, ' .. (free[scope] or 0) .. ' free')
  end
end
for scope, count in pairs(free) do
  if not seen[scope] then problem('scope ' .. scope .. ': no free count (' .. count .. ' free)') end
end
for scope in pairs(free) do
  for size = 1, fit_max do
    for _, key in ipairs({fit_key(scope, size), fit_ok_key(scope, size)}) do
      local stored, fit = redis.call('ZCARD', key), members[key] or 0
      if stored ~= fit then problem(key .. ': ' .. stored .. ' rows, ' .. fit .. ' fit') end
    end
  end
end
return reply({problems = problems})
