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
    local marks = {}
    for pos, key in ipairs(seats) do
      if key == '' then
        marks[pos] = '-'
      else
        indexed = indexed + 1
        marks[pos] = redis.call('HEXISTS', K_STATE, key) == 1 and '0' or '1'
        if redis.call('HGET', K_SEAT_ROWS, key) ~= id .. ':' .. pos then
          problem('seat ' .. key .. ': not indexed at row ' .. id .. ' position ' .. pos)
        end
      end
    end
    local pattern = table.concat(marks)
    if pattern ~= row.pattern then
      problem('row ' .. id .. ': pattern ' .. row.pattern .. ', states say ' .. pattern)
    end
    local _, free_here = pattern:gsub('1', '')
    local longest = longest_run(pattern)
    for _, scope in ipairs(row_scopes(row)) do
      free[scope] = (free[scope] or 0) + free_here
      for size = 1, fit_max do
        local key = fit_key(scope, size)
        local score = redis.call('ZSCORE', key, id)
        if size <= longest then
          members[key] = (members[key] or 0) + 1
          if not score then
            problem('row ' .. id .. ': missing from ' .. scope .. ' size ' .. size)
          elseif tonumber(score) ~= tonumber(row.bound) then
            problem('row ' .. id .. ': score ' .. score .. ' in ' .. scope .. ' size ' .. size)
          end
        elseif score then
          problem('row ' .. id .. ': in ' .. scope .. ' size ' .. size .. ', longest run ' .. longest)
        end
      end
    end
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
    local key = fit_key(scope, size)
    local stored, fit = redis.call('ZCARD', key), members[key] or 0
    if stored ~= fit then problem(key .. ': ' .. stored .. ' rows, ' .. fit .. ' fit') end
  end
end
return reply({problems = problems})
