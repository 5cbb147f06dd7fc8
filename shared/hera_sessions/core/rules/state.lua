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

-- What a script costs is what it touches: it reads the records and tickets of the paths it is given (HMGET), and
-- the session's counters from the field '#' (core/rules/__init__.py describes them), and keeps both up to date as
-- it writes. The counters are a cache of one pass over the hash: that pass runs again (recount) when they are
-- absent, when the hash no longer has the field count the last script left (another writer: the scripts of a
-- release without counters, during a deploy), when a ticket they count as live has expired, and when they are
-- older than RECOUNT_AFTER seconds (so whatever a writer without counters changed in place heals by then).
local RECOUNT_AFTER = 300
local rec, tick = {}, {}  -- the touched paths' record and ticket (false: none)
local c, had, dirty, clock = nil, false, false, 0  -- dirty: the counters changed since they were read
local expired, stones = {}, {}  -- what the last recount found: tickets past their expiry, tombstones

-- What a path holds against the quota: its live ticket's size, else its live record's; nil for nothing.
local function holding(r, t)
  if t and t.x > clock then return t.s end
  if r and not r.d then return r.s end
  return nil
end

local function recount()
  local flat = redis.call('HGETALL', sess)
  local recs, ticks = {}, {}
  for i = 1, #flat, 2 do
    local kind, path = string.sub(flat[i], 1, 2), string.sub(flat[i], 3)
    if kind == 'f:' then recs[path] = cjson.decode(flat[i + 1])
    elseif kind == 't:' then ticks[path] = cjson.decode(flat[i + 1]) end
  end
  c = {v = 1, f = 0, b = 0, d = 0, x = 0, e = 0, k = clock, r = clock}
  dirty = true
  expired, stones = {}, {}
  local function add(path)
    local size = holding(recs[path], ticks[path])
    if size then c.f = c.f + 1; c.b = c.b + size end
  end
  for path, r in pairs(recs) do
    if r.d then stones[#stones + 1] = {w = tonumber(r.w) or 0, name = 'f:' .. path} end
    if not ticks[path] then add(path) end
  end
  for path, t in pairs(ticks) do
    add(path)
    if t.x > clock then
      if c.x == 0 or t.x < c.x then c.x = t.x end
    else
      expired[#expired + 1] = 't:' .. path
    end
  end
  c.d = #stones
  if #expired > 0 then c.e = 1 end
end

-- The counters (recounted when they cannot be trusted), then the record and ticket of each of `paths`.
local function load(now, paths)
  local raw = redis.call('HGET', sess, '#')
  had = raw and true or false
  c = raw and cjson.decode(raw) or nil
  clock = now
  if c and c.k > clock then clock = c.k end  -- callers' clocks differ: a ticket, once expired, stays so
  if not c or c.v ~= 1 or c.n ~= redis.call('HLEN', sess) or (c.x > 0 and clock >= c.x)
      or clock - c.r >= RECOUNT_AFTER then
    recount()
  end
  if #paths == 0 then return end
  local names = {}
  for i, path in ipairs(paths) do names[2 * i - 1] = 'f:' .. path; names[2 * i] = 't:' .. path end
  local values = redis.call('HMGET', sess, unpack(names))
  for i, path in ipairs(paths) do
    local r, t = values[2 * i - 1], values[2 * i]
    rec[path] = r and cjson.decode(r) or false
    tick[path] = t and cjson.decode(t) or false
  end
end

-- The counters after what a script wrote, with the field count it leaves (the mark another writer changes).
local function save()
  if not dirty then return end
  c.k = clock
  c.n = redis.call('HLEN', sess) + (had and 0 or 1)
  redis.call('HSET', sess, '#', cjson.encode(c))
  had, dirty = true, false
end

local function count(before, after)
  dirty = true
  if before then c.f = c.f - 1; c.b = c.b - before end
  if after then c.f = c.f + 1; c.b = c.b + after end
end

-- Write a touched path's record (a table, or nil to delete it), keeping the counters right.
local function put_record(path, r, encoded)
  local old, t = rec[path], tick[path]
  count(holding(old, t), holding(r, t))
  c.d = c.d + (r and r.d and 1 or 0) - (old and old.d and 1 or 0)
  if r then redis.call('HSET', sess, 'f:' .. path, encoded or cjson.encode(r))
  else redis.call('HDEL', sess, 'f:' .. path) end
  rec[path] = r or false
end

-- Write a touched path's ticket (a table and its JSON, or nil to delete it), keeping the counters right.
local function put_ticket(path, t, encoded)
  local r = rec[path]
  count(holding(r, tick[path]), holding(r, t))
  if t then
    redis.call('HSET', sess, 't:' .. path, encoded)
    if t.x > clock then
      if c.x == 0 or t.x < c.x then c.x = t.x end
    else
      c.e = 1
    end
  else
    redis.call('HDEL', sess, 't:' .. path)
  end
  tick[path] = t or false
end

local function quota(path, size, max_files, max_bytes)
  local files, bytes = c.f, c.b
  local own = holding(rec[path], tick[path])
  if own then files, bytes = files - 1, bytes - own end
  if files + 1 > max_files then
    return 'the session already holds ' .. files .. ' files (at most ' .. max_files .. ')'
  end
  if bytes + size > max_bytes then
    return 'the session would hold ' .. (bytes + size) .. ' bytes (at most ' .. max_bytes .. ')'
  end
  return nil
end
