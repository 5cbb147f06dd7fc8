-- ARGV: ttl, op ('put' | 'delete' | 'forget' | 'release'), name (a document's; a file's path), [value; for
-- forget and release: now] → {'ok', previous} | {'erased'} | {'missing'}
local closed = gate()
if closed then return {closed} end
local ttl, op, name = tonumber(ARGV[1]), ARGV[2], ARGV[3]
local previous = false
if op == 'put' then
  redis.call('HSET', meta, name, ARGV[4])
elseif op == 'delete' then
  previous = redis.call('HDEL', meta, name) == 1
elseif op == 'forget' then
  -- a live record becomes a tombstone holding its own sequencer: a redelivered 'created' of the deleted
  -- upload is then a duplicate, while the removal event (later) and a new upload (later) still win
  local now = tonumber(ARGV[4])
  load(now, {name})
  local r = rec[name]
  if r and not r.d then
    previous = redis.call('HGET', sess, 'f:' .. name)
    put_record(name, r.q and {d = 1, q = r.q, w = now} or nil)
  end
elseif op == 'release' then
  load(tonumber(ARGV[4]), {name})
  previous = redis.call('HGET', sess, 't:' .. name)
  if previous then put_ticket(name, nil) end
end
if op == 'forget' or op == 'release' then flush() end
if op ~= 'release' then touch(ttl) end
return {'ok', previous}
