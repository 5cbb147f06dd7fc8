-- ARGV: ttl, op ('put' | 'delete' | 'forget' | 'release'), field, [value; for forget: now]
-- → {'ok', previous} | {'erased'} | {'missing'}
local closed = gate()
if closed then return {closed} end
local ttl, op, field = tonumber(ARGV[1]), ARGV[2], ARGV[3]
local previous = false
if op == 'put' then
  redis.call('HSET', meta, field, ARGV[4])
elseif op == 'delete' then
  previous = redis.call('HDEL', meta, field) == 1
elseif op == 'forget' then
  -- a live record becomes a tombstone holding its own sequencer: a redelivered 'created' of the deleted
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
