-- parted: ARGV = prefix, seed, a, b, until (ms), cool-down (ms)
-- a and b just parted: keep them apart until `until`.
local a, b, untl, cooldown = ARGV[3], ARGV[4], ARGV[5], ARGV[6]
for _, pair in ipairs({ { a, b }, { b, a } }) do
  local k = P .. ':recent:' .. pair[1]
  redis.call('ZADD', k, untl, pair[2])
  redis.call('PEXPIRE', k, cooldown)
end
return 1
