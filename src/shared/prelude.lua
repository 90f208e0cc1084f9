-- Shared by every script of the shared queue (src/shared/queue.rs). ARGV[1] is the key prefix
-- (with a hash tag, so every key lives in one slot). A user is named by "<instance>.<session>".
--
-- Users wait in one pool per mode ("video" or "text"); a user's language is its BCP 47
-- primary subtag, or "-" for none.
--
-- Keys:
--   P:w:<user>      hash of one waiting user: t = ticket, g = tags (sorted, \31-separated),
--                   s = since (ms), o = "1" when it meets anyone of its pool, c = client key
--                   or -, m = mode, l = language or -, x = its early offer (an SDP), if it
--                   sent one (only a video wait has one)
--   P:all:<mode>    set of every waiting user of a pool
--   P:open:<mode>   set of a pool's waiting users who meet anyone of it
--   P:lang:<mode>:<lang>  set of a pool's waiting users who meet anyone of their language
--   P:s:<mode>:<lang>:<tags>  set of a pool's waiting users of one language by each non-empty
--                   subset of their tags
--   P:iw:<inst>     set of the waiting users of one instance (to reap a dead instance's)
--   P:recent:<user> sorted set: partners in their cool-down, scored by when it ends (ms)
--   P:alive:<inst>  exists while the instance's heartbeat is fresh
--   P:instances     set of instances that have beaten
--   P:online        hash: instance -> its connected users
local P = ARGV[1]
local SEP = '\31'

local function split(s)
  local out = {}
  if not s or s == '' then return out end
  for part in string.gmatch(s, '[^\31]+') do out[#out + 1] = part end
  return out
end

local function instance_of(user)
  return string.match(user, '^([^.]+)')
end

local function alive(user)
  return redis.call('EXISTS', P .. ':alive:' .. instance_of(user)) == 1
end

local function all_key(mode) return P .. ':all:' .. mode end
local function open_key(mode) return P .. ':open:' .. mode end
local function lang_key(mode, lang) return P .. ':lang:' .. mode .. ':' .. lang end

-- Whether a waiting user meets anyone of its language: with a language, and with no tags or
-- once open.
local function meets_lang(lang, tags, open)
  return lang ~= '-' and (#tags == 0 or open)
end

-- The index keys of the subsets of `tags` with exactly `size` tags (every size when 0), in
-- the pool `mode` and language `lang`.
local function subset_keys(mode, lang, tags, size)
  local out = {}
  local prefix = P .. ':s:' .. mode .. ':' .. lang .. ':'
  local n = #tags
  for mask = 1, bit.lshift(1, n) - 1 do
    local picked = {}
    for i = 1, n do
      if bit.band(mask, bit.lshift(1, i - 1)) ~= 0 then picked[#picked + 1] = tags[i] end
    end
    if size == 0 or #picked == size then
      out[#out + 1] = prefix .. table.concat(picked, SEP)
    end
  end
  return out
end

-- Takes `user` out of the queue and every index; returns its record, or nil if not waiting.
local function remove(user)
  local rec = redis.call('HMGET', P .. ':w:' .. user, 't', 'g', 's', 'c', 'm', 'l', 'x')
  if not rec[1] then return nil end
  local tags = split(rec[2])
  local mode, lang = rec[5] or 'video', rec[6] or '-'
  for _, k in ipairs(subset_keys(mode, lang, tags, 0)) do redis.call('SREM', k, user) end
  redis.call('SREM', open_key(mode), user)
  if lang ~= '-' then redis.call('SREM', lang_key(mode, lang), user) end
  redis.call('SREM', all_key(mode), user)
  redis.call('SREM', P .. ':iw:' .. instance_of(user), user)
  redis.call('DEL', P .. ':w:' .. user)
  return {
    ticket = rec[1], tags = tags, since = tonumber(rec[3]), client = rec[4] or '-',
    mode = mode, lang = lang, offer = rec[7] or '',
  }
end

-- `user`'s partners still in their cool-down (and `user` itself): `set` of them, and `n`,
-- how many (kept up to date as `choose` passes over more).
local function excluded_for(user, now)
  local k = P .. ':recent:' .. user
  redis.call('ZREMRANGEBYSCORE', k, '-inf', now)
  local ex = { set = { [user] = true }, n = 1 }
  for _, other in ipairs(redis.call('ZRANGE', k, 0, -1)) do
    ex.set[other] = true
    ex.n = ex.n + 1
  end
  return ex
end

-- A pseudo-random stream seeded by the caller (scripts must not depend on Redis's own seed).
-- (Park-Miller: every product stays below 2^53, exact in Lua's doubles.)
local seed = (tonumber(ARGV[2]) or 1) % 2147483646 + 1
local function random01()
  seed = (seed * 16807) % 2147483647
  return (seed - 1) / 2147483646
end

-- A random waiting user from the disjoint sets `groups`, uniform over those not excluded
-- (`ex` from excluded_for). Users of instances that stopped beating are passed over (and
-- added to `ex`).
local function choose(groups, ex)
  local excluded = ex.set
  for _ = 1, 16 do
    local total, counts = 0, {}
    for i, k in ipairs(groups) do
      local n = redis.call('SCARD', k)
      if n > 0 then
        for other in pairs(excluded) do
          if redis.call('SISMEMBER', k, other) == 1 then n = n - 1 end
        end
      end
      counts[i] = n
      total = total + n
    end
    if total <= 0 then return nil end
    local x = math.floor(random01() * total)
    for i, k in ipairs(groups) do
      if x < counts[i] then
        -- Among nexcl + 1 distinct members at least one is eligible; pick among those.
        local eligible = {}
        for _, m in ipairs(redis.call('SRANDMEMBER', k, ex.n + 1)) do
          if not excluded[m] then eligible[#eligible + 1] = m end
        end
        local candidate = eligible[math.floor(random01() * #eligible) + 1]
        if alive(candidate) then return candidate end
        -- Its instance stopped beating: skip it now; the next heartbeat reaps it (and tells
        -- that instance, should it come back, to enter its waiters again).
        excluded[candidate] = true
        ex.n = ex.n + 1
        break
      end
      x = x - counts[i]
    end
  end
  return nil
end

local function common(a, b)
  local mine, out = {}, {}
  for _, t in ipairs(a) do mine[t] = true end
  for _, t in ipairs(b) do if mine[t] then out[#out + 1] = t end end
  return out
end

-- A partner for an open user of `mode` and `lang`: one of its language who meets anyone of
-- it, else anyone open in the pool.
local function find_open(mode, lang, ex)
  local partner
  if lang ~= '-' then partner = choose({ lang_key(mode, lang) }, ex) end
  return partner or choose({ open_key(mode) }, ex)
end

-- A partner for a joiner (open at once, or not): with tags, those sharing the most of them in
-- its language (its fallback comes later); without, as far along the order as it goes by now.
local function find(mode, lang, tags, open, ex)
  if #tags > 0 then
    for size = #tags, 1, -1 do
      -- A user sharing exactly `size` tags sits in exactly one of these sets.
      local partner = choose(subset_keys(mode, lang, tags, size), ex)
      if partner then return partner end
    end
    return nil
  end
  if open then return find_open(mode, lang, ex) end
  if meets_lang(lang, tags, false) then return choose({ lang_key(mode, lang) }, ex) end
  return nil
end

-- The reply for a pairing: {partner, partner's ticket, partner's client, "1" if both gave
-- the same language else "0", partner's early offer, the user's own early offer (each ''
-- for none), shared tags...}.
local function paired(partner, rec, tags, lang, own_offer)
  local same = (lang ~= '-' and rec.lang == lang) and '1' or '0'
  local reply = { partner, rec.ticket, rec.client, same, rec.offer, own_offer or '' }
  for _, t in ipairs(common(tags, rec.tags)) do reply[#reply + 1] = t end
  return reply
end
