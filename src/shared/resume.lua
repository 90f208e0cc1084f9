-- resume: ARGV = prefix, seed, user, room, wait (ms), client (or -)
-- `user` is back after a restart and asks for `room`. If the other member already asked,
-- both are told of each other; otherwise `user` is remembered for `wait`. Knowing the room
-- id (128 random bits, sent only to its two members) is the proof of membership.
-- Returns {} when waiting, or {other, other's client}.
local user, room, wait, client = ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local k = P .. ':resume:' .. room
local waiting = redis.call('GET', k)
if waiting then
  local other, other_client = string.match(waiting, '^(%S+) (%S+)$')
  if other and other ~= user then
    redis.call('DEL', k)
    return { other, other_client }
  end
end
redis.call('SET', k, user .. ' ' .. client, 'PX', wait)
return {}
