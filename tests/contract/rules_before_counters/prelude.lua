-- Shared by every script. KEYS: the session hash, its documents hash, its erase marker (one hash tag).
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
