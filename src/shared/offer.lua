-- offer: ARGV = prefix, seed, user, ticket, sdp
-- Keeps `sdp` as the early offer of `user`'s wait if it still waits with this ticket (it
-- goes with the wait: `remove` deletes the whole record). Returns 1 if it did.
local user, ticket, sdp = ARGV[3], ARGV[4], ARGV[5]
if redis.call('HGET', P .. ':w:' .. user, 't') ~= ticket then return 0 end
redis.call('HSET', P .. ':w:' .. user, 'x', sdp)
return 1
