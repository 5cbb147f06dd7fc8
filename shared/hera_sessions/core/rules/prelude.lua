-- Shared by every script. KEYS: the session hash, its documents hash, its erase marker (one hash tag).
local sess, meta, erased = KEYS[1], KEYS[2], KEYS[3]
local fields = 0  -- how many fields the session hash has (gate() reads it)
local function gate()
  if redis.call('EXISTS', erased) == 1 then return 'erased' end
  fields = redis.call('HLEN', sess)
  if fields == 0 then return 'missing' end
  return nil
end
local function touch(ttl)
  redis.call('EXPIRE', sess, ttl)
  redis.call('EXPIRE', meta, ttl)
end
