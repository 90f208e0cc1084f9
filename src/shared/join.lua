-- join: ARGV = prefix, seed, user, ticket, now (ms), open (1 = meets anyone of its pool now),
-- client (who the user is for reports, or -), mode, language (or -), tags...
-- Pairs `user` with a waiting user of its pool (those sharing the most tags in its language
-- first) or queues it. Returns {} when queued, or the reply of `paired` (prelude.lua; the
-- joiner has no early offer yet: an early offer belongs to a wait, and this one has only begun).
local user, ticket, now, open, client = ARGV[3], ARGV[4], tonumber(ARGV[5]), ARGV[6] == '1', ARGV[7]
local mode, lang = ARGV[8], ARGV[9]
local tags = {}
for i = 10, #ARGV do tags[#tags + 1] = ARGV[i] end

remove(user)
local ex = excluded_for(user, now)
local partner = find(mode, lang, tags, open, ex)
if partner then
  return paired(partner, remove(partner), tags, lang)
end

redis.call('HSET', P .. ':w:' .. user, 't', ticket, 'g', table.concat(tags, SEP), 's', now,
  'o', open and '1' or '0', 'c', client, 'm', mode, 'l', lang)
redis.call('SADD', all_key(mode), user)
redis.call('SADD', P .. ':iw:' .. instance_of(user), user)
for _, k in ipairs(subset_keys(mode, lang, tags, 0)) do redis.call('SADD', k, user) end
if meets_lang(lang, tags, open) then redis.call('SADD', lang_key(mode, lang), user) end
if open then redis.call('SADD', open_key(mode), user) end
return {}
