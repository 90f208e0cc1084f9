-- beat: ARGV = prefix, seed, instance, its connected users, ttl (ms), now (ms), of its
-- users those in video and those in text
-- The instance is alive for another ttl. Instances whose heartbeat lapsed are reaped: their
-- waiting users leave the queue, and they are listed as dead for a minute, so every
-- instance ends the rooms its users had with theirs. Returns {"1" if this instance itself
-- had been reaped (it is back now), "1" if its key was still alive, the online count of every
-- live instance, of them those in video and in text, the dead...}.
-- A Redis that restarted empty remembers no instance, so it reaps none: calls between
-- instances go on.
local inst, online, ttl, now = ARGV[3], ARGV[4], ARGV[5], tonumber(ARGV[6])
local modes = { video = ARGV[7] or '0', text = ARGV[8] or '0' }
local dead_key = P .. ':dead'
redis.call('ZREMRANGEBYSCORE', dead_key, '-inf', now - 60000)
local reaped = redis.call('ZSCORE', dead_key, inst)
if reaped then redis.call('ZREM', dead_key, inst) end
local was_alive = redis.call('EXISTS', P .. ':alive:' .. inst)
redis.call('SET', P .. ':alive:' .. inst, '1', 'PX', ttl)
redis.call('SADD', P .. ':instances', inst)
redis.call('HSET', P .. ':online', inst, online)
for mode, n in pairs(modes) do redis.call('HSET', P .. ':online:' .. mode, inst, n) end
local total, in_mode = 0, { video = 0, text = 0 }
for _, other in ipairs(redis.call('SMEMBERS', P .. ':instances')) do
  if redis.call('EXISTS', P .. ':alive:' .. other) == 1 then
    total = total + (tonumber(redis.call('HGET', P .. ':online', other)) or 0)
    for mode, n in pairs(in_mode) do
      in_mode[mode] = n + (tonumber(redis.call('HGET', P .. ':online:' .. mode, other)) or 0)
    end
  else
    for _, user in ipairs(redis.call('SMEMBERS', P .. ':iw:' .. other)) do remove(user) end
    redis.call('DEL', P .. ':iw:' .. other)
    redis.call('HDEL', P .. ':online', other)
    for mode in pairs(in_mode) do redis.call('HDEL', P .. ':online:' .. mode, other) end
    redis.call('SREM', P .. ':instances', other)
    redis.call('ZADD', dead_key, now, other)
  end
end
local reply = { reaped and '1' or '0', tostring(was_alive), tostring(total),
  tostring(in_mode.video), tostring(in_mode.text) }
for _, other in ipairs(redis.call('ZRANGE', dead_key, 0, -1)) do reply[#reply + 1] = other end
return reply
