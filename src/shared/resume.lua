-- resume: ARGV = prefix, seed, user, room, wait (ms), client (or -), me, partner
-- `user` is back after a restart (or stayed while its partner's instance restarted) and
-- asks for `room`. `me` is the hash of its secret, `partner` the hash of its partner's
-- secret (both from the proofs `matched` gave; no secret ever reaches Redis). Two entries
-- pair when their hashes cross: the one filed under `partner` names `me` as its partner.
-- Anyone who knows the room id can file an entry, but no entry of theirs pairs with a
-- member's, so they neither get in nor keep the members apart; a room holds a few at most.
-- Returns {} when waiting, or {other, other's client}.
local user, room, wait, client, me, partner = ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8]
local k = P .. ':resume:' .. room
local waiting = redis.call('HGET', k, partner)
if waiting then
  local other, other_client, wanted = string.match(waiting, '^(%S+) (%S+) (%S+)$')
  if other and other ~= user and wanted == me then
    redis.call('HDEL', k, partner)
    return { other, other_client }
  end
end
if redis.call('HLEN', k) < 4 or redis.call('HEXISTS', k, me) == 1 then
  redis.call('HSET', k, me, user .. ' ' .. client .. ' ' .. partner)
  redis.call('PEXPIRE', k, wait)
end
return {}
