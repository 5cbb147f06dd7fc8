-- ARGV: now, ttl, max_files, max_bytes, upload_max, the events (one JSON array)
-- → one JSON array of 'outcome|reason', one for each event
local events = cjson.decode(ARGV[6])
local n = #events
local out = {}
local closed = gate()
if closed then
  local outcome = closed == 'erased' and 'erased|the session was erased' or 'unknown_session|no live session'
  for i = 1, n do out[i] = outcome end
  return cjson.encode(out)
end
local now, ttl = tonumber(ARGV[1]), tonumber(ARGV[2])
local max_files, max_bytes, upload_max = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local paths, seen = {}, {}
for i = 1, n do
  local p = events[i].p
  if not seen[p] then seen[p] = true; paths[#paths + 1] = p end
end
load(now, paths)
local changed = false

-- A ticket's content_md5 (base64) as lower-case hex, to compare with an ETag that is a plain MD5.
local B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'
local function md5_hex(b64)
  local out, acc, bits = {}, 0, 0
  for i = 1, #b64 do
    local c = string.sub(b64, i, i)
    if c == '=' then break end
    local v = string.find(B64, c, 1, true)
    if not v then return nil end
    acc, bits = acc * 64 + v - 1, bits + 6
    if bits >= 8 then
      bits = bits - 8
      out[#out + 1] = string.format('%02x', math.floor(acc / 2 ^ bits) % 256)
      acc = acc % 2 ^ bits
    end
  end
  return table.concat(out)
end

-- A plain-MD5 ETag (32 hex digits) as base64, as content_md5 is written; nil for any other ETag.
local function md5_base64(etag)
  if not etag or #etag ~= 32 or string.find(etag, '[^0-9a-f]') then return nil end
  local out = {}
  for i = 1, 32, 6 do
    local chunk = string.sub(etag, i, i + 5)
    local n, width = tonumber(chunk, 16), #chunk / 2
    n = n * 256 ^ (3 - width)
    local digits = {}
    for k = 1, 4 do digits[k] = string.sub(B64, math.floor(n / 64 ^ (4 - k)) % 64 + 1, math.floor(n / 64 ^ (4 - k)) % 64 + 1) end
    if width < 3 then for k = width + 2, 4 do digits[k] = '=' end end
    out[#out + 1] = table.concat(digits)
  end
  return table.concat(out)
end

local function apply(ev)
  local cur = rec[ev.p]
  if cur and cur.q and ev.q then
    local order = later(ev.q, cur.q)
    if order == 0 then return 'duplicate|' end
    if order < 0 then return 'stale|' end
  end
  if ev.k == 'r' then
    -- with a sequencer, a tombstone: a late 'created' cannot resurrect the file
    put_record(ev.p, ev.q and {d = 1, q = ev.q, w = now} or nil)
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
  -- where the storage could not bind the declared MD5 (form POST): an ETag that is the object's plain MD5 (S3 and
  -- local single writes, GCS's md5Hash) must be it; other ETags (multipart "-N", Azure's) say nothing of it
  -- (a version the service rewrote without its GPS, location 'stripped', is ours, not the client's bytes)
  local ours = ev.L == 'stripped'
  if t and t.m and not ours and ev.e and #ev.e == 32 and not string.find(ev.e, '[^0-9a-f]')
      and ev.e ~= md5_hex(t.m) then
    return 'rejected|its MD5 is not the content_md5 declared'
  end
  local why = quota(ev.p, ev.s, max_files, max_bytes)
  if why then return 'rejected|' .. why end
  local r = {s = ev.s, t = ctype, u = ev.u or now, e = ev.e, q = ev.q}
  if t then
    r.n, r.m = t.n, t.m  -- the name and MD5 the ticket was asked with
  elseif cur and not cur.d and ev.e and cur.e == ev.e and cur.s == ev.s then
    -- the same object announced again under a later sequencer (S3 may send ObjectCreated:Put and then
    -- ObjectCreated:CompleteMultipartUpload for one multipart upload): it keeps the name and MD5 it was recorded with
    r.n, r.m = cur.n, cur.m
  end
  if ours then r.m = md5_base64(ev.e) end  -- the MD5 of the bytes the service wrote, not the client's
  r.W, r.H, r.L = ev.W, ev.H, ev.L
  put_record(ev.p, r)
  if t then put_ticket(ev.p, nil) end
  changed = true
  return 'recorded|'
end

for i = 1, n do out[i] = apply(events[i]) end
if changed then touch(ttl) end
flush()
return cjson.encode(out)
