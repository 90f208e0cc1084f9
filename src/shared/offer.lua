-- offer: ARGV = prefix, seed, user, ticket, sdp
-- Keeps `sdp` as the early offer of `user`'s wait if it still waits with this ticket, in the
-- video pool (it goes with the wait: `remove` deletes the whole record). Returns 1 if it did.
local user, ticket, sdp = ARGV[3], ARGV[4], ARGV[5]
local rec = redis.call('HMGET', P .. ':w:' .. user, 't', 'm')
if rec[1] ~= ticket or (rec[2] or 'video') ~= 'video' then return 0 end
redis.call('HSET', P .. ':w:' .. user, 'x', sdp)
return 1
