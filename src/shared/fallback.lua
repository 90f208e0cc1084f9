-- fallback: ARGV = prefix, seed, user, ticket, now (ms), fallback (ms)
-- `user` has waited the fallback time: it meets anyone now. Pairs it with a random user who
-- meets anyone; or, if the two of them are the only ones waiting and both waited past the
-- fallback, with that one even within the cool-down. Returns like join.
local user, ticket, now, fallback = ARGV[3], ARGV[4], tonumber(ARGV[5]), tonumber(ARGV[6])
local me = redis.call('HMGET', P .. ':w:' .. user, 't', 's')
if me[1] ~= ticket then return {} end
redis.call('HSET', P .. ':w:' .. user, 'o', '1')
redis.call('SADD', P .. ':open', user)

local excluded, nexcl = excluded_for(user, now)
local partner = choose({ P .. ':open' }, excluded, nexcl)
if not partner and redis.call('SCARD', P .. ':all') == 2 then
  for _, other in ipairs(redis.call('SMEMBERS', P .. ':all')) do
    if other ~= user then
      local since = tonumber(redis.call('HGET', P .. ':w:' .. other, 's'))
      if since and now - since >= fallback and now - tonumber(me[2]) >= fallback and alive(other) then
        partner = other
      end
    end
  end
end
if not partner then return {} end
local mine = remove(user)
return paired(partner, remove(partner), mine.tags, mine.offer)
