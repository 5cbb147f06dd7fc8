-- ARGV: now, ttl, max_files, max_bytes, path, ticket JSON, max_tombstones
-- → {'ok'} | {'erased'} | {'missing'} | {'quota', why} | {'exists'} | {'pending'}
local closed = gate()
if closed then return {closed} end
local now, ttl = tonumber(ARGV[1]), tonumber(ARGV[2])
local path, ticket, keep = ARGV[5], ARGV[6], tonumber(ARGV[7])
load(now, {path})
local function refuse(answer) flush(); return answer end  -- a recount is kept even when the ticket is refused
local wanted = cjson.decode(ticket)
-- no silent overwrite: a ticket that did not ask to overwrite (o = 1) is refused where a live record is, or
-- where a live ticket for another file is (another size, type, MD5 or name; the same file again is a retry)
if wanted.o ~= 1 then
  local cur, pending = rec[path], tick[path]
  if cur and not cur.d then return refuse({'exists'}) end
  if pending and pending.x > now and (pending.s ~= wanted.s or pending.t ~= wanted.t or pending.m ~= wanted.m
      or pending.n ~= wanted.n) then
    return refuse({'pending'})
  end
end
local why = quota(path, wanted.s, tonumber(ARGV[3]), tonumber(ARGV[4]))
if why then return refuse({'quota', why}) end

-- drop expired tickets (they hold nothing) and prune the oldest tombstones beyond `keep` (oldest written first,
-- then by name, bytewise: no strcoll); both need the whole hash, so they wait until the counters call for them
if c.e == 1 or c.d > keep then
  recount()
  drop(expired)
  c.e = 0
  local function bytes_less(a, b)
    for i = 1, math.min(#a, #b) do
      local x, y = string.byte(a, i), string.byte(b, i)
      if x ~= y then return x < y end
    end
    return #a < #b
  end
  if #stones > keep then
    table.sort(stones, function(a, b)
      if a.w ~= b.w then return a.w < b.w end
      return bytes_less(a.name, b.name)
    end)
    local pruned = {}
    for i = 1, #stones - keep do pruned[i] = stones[i].name end
    drop(pruned)
    c.d = keep
  end
end
put_ticket(path, wanted, ticket)
flush()
touch(ttl)
return {'ok'}
