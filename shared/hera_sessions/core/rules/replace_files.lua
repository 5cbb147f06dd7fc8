-- ARGV: ttl, then field/value pairs to set after every 'f:' field is dropped (reconcile) → {'ok'} | gate answer
local closed = gate()
if closed then return {closed} end
local flat = redis.call('HKEYS', sess)
for i = 1, #flat do
  if string.sub(flat[i], 1, 2) == 'f:' then redis.call('HDEL', sess, flat[i]) end
end
for i = 2, #ARGV, 2 do redis.call('HSET', sess, ARGV[i], ARGV[i + 1]) end
redis.call('HDEL', sess, '#')  -- the counters: the next script counts the new records once
touch(tonumber(ARGV[1]))
return {'ok'}
