-- The order of two sequencers: > 0 when a is later, 0 when equal, < 0 when earlier. They are upper-case hex
-- (S3, Azure) or decimal (GCS generations): the event readers refuse anything else. S3's rule: right-pad the
-- shorter with zeros, then compare. Equal-width digit strings compare as their values do, so 12 digits at a time
-- (48 bits, exact in a Lua number) compare as numbers; Lua's string '<' would use strcoll (the server's locale).
local function later(a, b)
  local la, lb = #a, #b
  if la < lb then a = a .. string.rep('0', lb - la) elseif lb < la then b = b .. string.rep('0', la - lb) end
  for i = 1, #a, 12 do
    local x, y = tonumber(string.sub(a, i, i + 11), 16), tonumber(string.sub(b, i, i + 11), 16)
    if not (x and y) then error('a sequencer is not hex: ' .. a .. ' / ' .. b) end
    if x ~= y then if x > y then return 1 else return -1 end end
  end
  return 0
end

-- The session's records and tickets, and what each path holds against the quota (a live ticket's size, else
-- a live record's): kept up to date as events apply, so a quota check costs O(1), not a pass over the hash.
local rec, tick, held = {}, {}, {}
local held_files, held_bytes, clock = 0, 0, 0

local function settle(path)
  local t, r, size = tick[path], rec[path], nil
  if t and t.x > clock then size = t.s elseif r and not r.d then size = r.s end
  local old = held[path]
  if old then held_files = held_files - 1; held_bytes = held_bytes - old end
  if size then held_files = held_files + 1; held_bytes = held_bytes + size end
  held[path] = size
end

local function load(now)
  clock = now
  local flat = redis.call('HGETALL', sess)
  for i = 1, #flat, 2 do
    local kind, path = string.sub(flat[i], 1, 2), string.sub(flat[i], 3)
    if kind == 'f:' then rec[path] = cjson.decode(flat[i + 1])
    elseif kind == 't:' then tick[path] = cjson.decode(flat[i + 1]) end
  end
  for path in pairs(rec) do settle(path) end
  for path in pairs(tick) do settle(path) end
end

local function usage(except)
  local own = held[except]
  if own then return held_files - 1, held_bytes - own end
  return held_files, held_bytes
end

local function quota(path, size, max_files, max_bytes)
  local files, bytes = usage(path)
  if files + 1 > max_files then
    return 'the session already holds ' .. files .. ' files (at most ' .. max_files .. ')'
  end
  if bytes + size > max_bytes then
    return 'the session would hold ' .. (bytes + size) .. ' bytes (at most ' .. max_bytes .. ')'
  end
  return nil
end
