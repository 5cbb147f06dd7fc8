-- ARGV: now, ttl, max_files, max_bytes, path, ticket JSON, max_tombstones
-- → {'ok'} | {'erased'} | {'missing'} | {'quota', why} | {'exists'} | {'pending'}
local closed = gate()
if closed then return {closed} end
local now, ttl = tonumber(ARGV[1]), tonumber(ARGV[2])
local path, ticket = ARGV[5], ARGV[6]
load(now)
local wanted = cjson.decode(ticket)
-- no silent overwrite: a ticket that did not ask to overwrite (o = 1) is refused where a live record is, or
-- where a live ticket for another file is (another size, type, MD5 or name; the same file again is a retry)
if wanted.o ~= 1 then
  local cur, pending = rec[path], tick[path]
  if cur and not cur.d then return {'exists'} end
  if pending and pending.x > now and (pending.s ~= wanted.s or pending.t ~= wanted.t or pending.m ~= wanted.m
      or pending.n ~= wanted.n) then
    return {'pending'}
  end
end
local why = quota(path, wanted.s, tonumber(ARGV[3]), tonumber(ARGV[4]))
if why then return {'quota', why} end
for p, t in pairs(tick) do
  if t.x <= now then redis.call('HDEL', sess, 't:' .. p) end  -- expired tickets release their reservation
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
