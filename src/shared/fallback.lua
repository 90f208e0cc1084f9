-- fallback: ARGV = prefix, seed, user, ticket, now (ms), fallback (ms)
-- `user` has waited the fallback time: it meets anyone of its pool now. Pairs it with a
-- random user of its language who meets anyone of it, else with a random open user of its
-- pool; or, if the two of them are the only ones waiting in the pool and both waited past
-- the fallback, with that one even within the cool-down. Returns like join.
local user, ticket, now, fallback = ARGV[3], ARGV[4], tonumber(ARGV[5]), tonumber(ARGV[6])
local me = redis.call('HMGET', P .. ':w:' .. user, 't', 's', 'm', 'l')
if me[1] ~= ticket then return {} end
local mode, lang = me[3] or 'video', me[4] or '-'
redis.call('HSET', P .. ':w:' .. user, 'o', '1')
redis.call('SADD', open_key(mode), user)
if lang ~= '-' then redis.call('SADD', lang_key(mode, lang), user) end

local ex = excluded_for(user, now)
-- Whoever shares tags with it in its language would have been paired with it already.
local partner = find_open(mode, lang, ex)
if not partner and redis.call('SCARD', all_key(mode)) == 2 then
  for _, other in ipairs(redis.call('SMEMBERS', all_key(mode))) do
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
return paired(partner, remove(partner), mine.tags, lang, mine.offer)
