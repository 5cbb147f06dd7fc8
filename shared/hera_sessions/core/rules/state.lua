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

-- What a script costs is what it touches: it reads the records and tickets of the paths it is given and the
-- session's counters (the field '#', described in core/rules/__init__.py) in one HMGET, keeps both up to date
-- as it decides, and writes what changed in one HSET (and one HDEL) at the end (flush). The counters are a cache
-- of one pass over the hash: that pass runs again (recount) when they are absent, when the hash no longer has
-- the field count the last script left (another writer: the scripts of a release without counters, during a
-- deploy), when a ticket they count as live has expired, and when they are RECOUNT_AFTER seconds old (so that
-- whatever a writer without counters changed in place is counted again by then).
local RECOUNT_AFTER = 300
local rec, tick = {}, {}  -- the touched paths' record and ticket (false: none)
local c, clock, dirty = nil, 0, false  -- dirty: the counters changed since they were read
local existed, sets, dels = {}, {}, {}  -- field → it existed when read; field → its new value; field → deleted
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
  c = {v = 1, f = 0, b = 0, d = 0, x = 0, e = 0, r = clock}
  dirty, expired, stones = true, {}, {}
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

-- The counters (recounted when they cannot be trusted) and the record and ticket of each of `paths`.
local function load(now, paths)
  local names = {'#'}
  for i, path in ipairs(paths) do names[2 * i] = 'f:' .. path; names[2 * i + 1] = 't:' .. path end
  local values = redis.call('HMGET', sess, unpack(names))
  for i, name in ipairs(names) do existed[name] = values[i] and true or false end
  c, clock = values[1] and cjson.decode(values[1]) or nil, now
  if c and c.k > clock then clock = c.k end  -- callers' clocks differ: a ticket, once expired, stays so
  if not c or c.v ~= 1 or c.n ~= fields or (c.x > 0 and clock >= c.x) or clock - c.r >= RECOUNT_AFTER then
    recount()
  end
  for i, path in ipairs(paths) do
    local r, t = values[2 * i], values[2 * i + 1]
    rec[path] = r and cjson.decode(r) or false
    tick[path] = t and cjson.decode(t) or false
  end
end

local function count(before, after)
  dirty = true
  if before then c.f = c.f - 1; c.b = c.b - before end
  if after then c.f = c.f + 1; c.b = c.b + after end
end

local function set(name, value)
  if value then sets[name], dels[name] = value, nil else sets[name], dels[name] = nil, true end
end

-- Delete fields a recount found (expired tickets, old tombstones) at once, keeping the field count.
local function drop(names)
  if #names == 0 then return end
  fields = fields - redis.call('HDEL', sess, unpack(names))
  for _, name in ipairs(names) do
    existed[name] = false
    local kind, path = string.sub(name, 1, 2), string.sub(name, 3)
    if kind == 'f:' and rec[path] then rec[path] = false elseif kind == 't:' and tick[path] then tick[path] = false end
  end
end

-- A touched path's record becomes `r` (a table, or nil: none); the counters follow.
local function put_record(path, r, encoded)
  local old, t = rec[path], tick[path]
  count(holding(old, t), holding(r, t))
  c.d = c.d + (r and r.d and 1 or 0) - (old and old.d and 1 or 0)
  set('f:' .. path, r and (encoded or cjson.encode(r)))
  rec[path] = r or false
end

-- A touched path's ticket becomes `t` (a table and its JSON, or nil: none); the counters follow.
local function put_ticket(path, t, encoded)
  local r = rec[path]
  count(holding(r, tick[path]), holding(r, t))
  if t and t.x > clock then
    if c.x == 0 or t.x < c.x then c.x = t.x end
  elseif t then
    c.e = 1
  end
  set('t:' .. path, t and encoded)
  tick[path] = t or false
end

-- Write what changed, and the counters with the field count the hash will have: one HSET, one HDEL.
local function flush()
  local args, gone = {}, {}
  for name, value in pairs(sets) do
    args[#args + 1] = name; args[#args + 1] = value
    if not existed[name] then fields = fields + 1 end
  end
  for name in pairs(dels) do
    gone[#gone + 1] = name
    if existed[name] then fields = fields - 1 end
  end
  if dirty then
    if not existed['#'] then fields = fields + 1 end
    c.k, c.n = clock, fields
    args[#args + 1] = '#'; args[#args + 1] = cjson.encode(c)
  end
  if #args > 0 then redis.call('HSET', sess, unpack(args)) end
  if #gone > 0 then redis.call('HDEL', sess, unpack(gone)) end
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
