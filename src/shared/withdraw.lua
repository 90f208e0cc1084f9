-- withdraw: ARGV = prefix, seed, user, ticket
-- Takes `user` out of the queue if it still waits with this ticket. Returns 1 if it did.
local user, ticket = ARGV[3], ARGV[4]
if redis.call('HGET', P .. ':w:' .. user, 't') ~= ticket then return 0 end
remove(user)
return 1
