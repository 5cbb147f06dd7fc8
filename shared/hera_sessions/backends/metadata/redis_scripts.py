"""The Redis twins of :class:`hera_sessions.backends.metadata.base.SessionState`: the same rules, run atomically.

Every script takes the session's three keys (they share the session id as hash tag, so a script never
crosses a Cluster slot): ``KEYS[1]`` the session hash, ``KEYS[2]`` the documents hash, ``KEYS[3]`` the erase
marker. A script that finds the session erased or gone answers ``{"erased"}`` or ``{"missing"}``.
"""

from __future__ import annotations

_PRELUDE = r"""
local sess, meta, erased = KEYS[1], KEYS[2], KEYS[3]
local function gate()
  if redis.call('EXISTS', erased) == 1 then return 'erased' end
  if redis.call('EXISTS', sess) == 0 then return 'missing' end
  return nil
end
local function touch(ttl)
  redis.call('EXPIRE', sess, ttl)
  redis.call('EXPIRE', meta, ttl)
end
"""

_STATE = r"""
-- S3's rule: right-pad the shorter with zeros, then compare byte by byte (not strcoll: Redis sets a locale).
local function later(a, b)
  if a == b then return 0 end
  local la, lb = #a, #b
  if la < lb then a = a .. string.rep('0', lb - la) elseif lb < la then b = b .. string.rep('0', la - lb) end
  if a == b then return 0 end
  -- 12 hex digits at a time (48 bits: exact in a Lua number); equal-width hex compares as its value does
  for i = 1, #a, 12 do
    local x, y = string.sub(a, i, i + 11), string.sub(b, i, i + 11)
    if x ~= y then
      local nx, ny = tonumber(x, 16), tonumber(y, 16)
      if nx and ny and nx ~= ny then if nx > ny then return 1 else return -1 end end
      for j = 1, #x do  -- not hex: byte by byte
        local bx, by = string.byte(x, j), string.byte(y, j)
        if bx ~= by then if bx > by then return 1 else return -1 end end
      end
    end
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

local function quota(path, size, now, max_files, max_bytes)
  local files, bytes = usage(path)
  if files + 1 > max_files then
    return 'the session already holds ' .. files .. ' files (at most ' .. max_files .. ')'
  end
  if bytes + size > max_bytes then
    return 'the session would hold ' .. (bytes + size) .. ' bytes (at most ' .. max_bytes .. ')'
  end
  return nil
end
"""

#: ARGV: now, ttl, max_files, max_bytes, path, ticket JSON, max_tombstones → {"ok"} | {"erased"} | {"missing"} |
#: {"quota", why}
RESERVE = (
    _PRELUDE
    + _STATE
    + r"""
local closed = gate()
if closed then return {closed} end
local now, ttl = tonumber(ARGV[1]), tonumber(ARGV[2])
local path, ticket = ARGV[5], ARGV[6]
load(now)
local why = quota(path, cjson.decode(ticket).s, now, tonumber(ARGV[3]), tonumber(ARGV[4]))
if why then return {'quota', why} end
for p, t in pairs(tick) do
  if t.x <= now then redis.call('HDEL', sess, 't:' .. p) end
end
redis.call('HSET', sess, 't:' .. path, ticket)

-- prune the oldest tombstones beyond ARGV[7] (oldest written first, then by name, bytewise: no strcoll)
local function bytes_less(a, b)
  for i = 1, math.min(#a, #b) do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then return x < y end
  end
  return #a < #b
end
local stones = {}
for p, r in pairs(rec) do
  if r.d then stones[#stones + 1] = {w = tonumber(r.w) or 0, name = 'f:' .. p} end
end
local keep = tonumber(ARGV[7])
if #stones > keep then
  table.sort(stones, function(a, b)
    if a.w ~= b.w then return a.w < b.w end
    return bytes_less(a.name, b.name)
  end)
  for i = 1, #stones - keep do redis.call('HDEL', sess, stones[i].name) end
end
touch(ttl)
return {'ok'}
"""
)

#: ARGV: now, ttl, max_files, max_bytes, upload_max, event JSON... → one "outcome|reason" per event
APPLY = (
    _PRELUDE
    + _STATE
    + r"""
local n = #ARGV - 5
local out = {}
local closed = gate()
if closed then
  local outcome = closed == 'erased' and 'erased|the session was erased' or 'unknown_session|no live session'
  for i = 1, n do out[i] = outcome end
  return out
end
local now, ttl = tonumber(ARGV[1]), tonumber(ARGV[2])
local max_files, max_bytes, upload_max = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
load(now)
local changed = false

local function apply(ev)
  local cur = rec[ev.p]
  if cur and cur.q and ev.q then
    local order = later(ev.q, cur.q)
    if order == 0 then return 'duplicate|' end
    if order < 0 then return 'stale|' end
  end
  if ev.k == 'r' then
    if ev.q then
      rec[ev.p] = {d = 1, q = ev.q, w = now}
      redis.call('HSET', sess, 'f:' .. ev.p, cjson.encode(rec[ev.p]))
    else
      rec[ev.p] = nil
      redis.call('HDEL', sess, 'f:' .. ev.p)
    end
    settle(ev.p)
    changed = true
    return 'removed|'
  end
  if ev.x then return 'rejected|' .. ev.x end
  local t = tick[ev.p]
  local declared = t and t.s or upload_max
  if t and ev.t and ev.t ~= t.t then
    return 'rejected|stored as ' .. ev.t .. ', declared as ' .. t.t
  end
  local ctype = (t and t.t) or ev.t or ev.g
  if not ctype then return 'rejected|its type is not allowed' end
  if ev.s > declared then
    return 'rejected|' .. ev.s .. ' bytes, more than the ' .. declared .. ' declared'
  end
  local why = quota(ev.p, ev.s, now, max_files, max_bytes)
  if why then return 'rejected|' .. why end
  local r = {s = ev.s, t = ctype, u = ev.u or now, e = ev.e, q = ev.q}
  rec[ev.p] = r
  redis.call('HSET', sess, 'f:' .. ev.p, cjson.encode(r))
  if t then
    tick[ev.p] = nil
    redis.call('HDEL', sess, 't:' .. ev.p)
  end
  settle(ev.p)
  changed = true
  return 'recorded|'
end

for i = 1, n do out[i] = apply(cjson.decode(ARGV[5 + i])) end
if changed then touch(ttl) end
return out
"""
)

#: ARGV: ttl, op ("put" | "delete" | "forget" | "release"), field, [value; for forget: now] → {"ok", previous} | gate
#: answer
WRITE = (
    _PRELUDE
    + r"""
local closed = gate()
if closed then return {closed} end
local ttl, op, field = tonumber(ARGV[1]), ARGV[2], ARGV[3]
local previous = false
if op == 'put' then
  redis.call('HSET', meta, field, ARGV[4])
elseif op == 'delete' then
  previous = redis.call('HDEL', meta, field) == 1
elseif op == 'forget' then
  -- a live record becomes a tombstone holding its own sequencer: a redelivered "created" of the deleted
  -- upload is then a duplicate, while the removal event (later) and a new upload (later) still win
  previous = redis.call('HGET', sess, field)
  if previous then
    local r = cjson.decode(previous)
    if r.d then previous = false
    elseif r.q then redis.call('HSET', sess, field, cjson.encode({d = 1, q = r.q, w = tonumber(ARGV[4])}))
    else redis.call('HDEL', sess, field) end
  end
elseif op == 'release' then
  previous = redis.call('HGET', sess, field)
  redis.call('HDEL', sess, field)
end
if op ~= 'release' then touch(ttl) end
return {'ok', previous}
"""
)

#: ARGV: ttl, then field/value pairs to set after every ``f:`` field is dropped (reconcile)
REPLACE_FILES = (
    _PRELUDE
    + r"""
local closed = gate()
if closed then return {closed} end
local flat = redis.call('HKEYS', sess)
for i = 1, #flat do
  if string.sub(flat[i], 1, 2) == 'f:' then redis.call('HDEL', sess, flat[i]) end
end
for i = 2, #ARGV, 2 do redis.call('HSET', sess, ARGV[i], ARGV[i + 1]) end
touch(tonumber(ARGV[1]))
return {'ok'}
"""
)
