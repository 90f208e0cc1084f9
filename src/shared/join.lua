-- join: ARGV = prefix, seed, user, ticket, now (ms), open (1 = meets anyone now), client
-- (who the user is for reports, or -), tags...
-- Pairs `user` with a waiting user (those sharing the most tags first) or queues it.
-- Returns {} when queued, or a pairing (see `paired`; the joiner has no early offer yet: an
-- early offer belongs to a wait, and this one has only begun).
local user, ticket, now, open, client = ARGV[3], ARGV[4], tonumber(ARGV[5]), ARGV[6] == '1', ARGV[7]
local tags = {}
for i = 8, #ARGV do tags[#tags + 1] = ARGV[i] end

remove(user)
local excluded, nexcl = excluded_for(user, now)
local partner
if #tags == 0 then
  partner = choose({ P .. ':open' }, excluded, nexcl)
else
  for size = #tags, 1, -1 do
    -- A user sharing exactly `size` tags sits in exactly one of these sets.
    partner = choose(subset_keys(tags, size), excluded, nexcl)
    if partner then break end
  end
end
if partner then
  return paired(partner, remove(partner), tags)
end

redis.call('HSET', P .. ':w:' .. user, 't', ticket, 'g', table.concat(tags, SEP), 's', now, 'o', open and '1' or '0', 'c', client)
redis.call('SADD', P .. ':all', user)
redis.call('SADD', P .. ':iw:' .. instance_of(user), user)
for _, k in ipairs(subset_keys(tags, 0)) do redis.call('SADD', k, user) end
if open then redis.call('SADD', P .. ':open', user) end
return {}
