--[[
  Replaces a string value only if it still equals what the caller read.
  Input:
    KEYS[1] the key
    ARGV[1] expected value ('' when the key should not exist yet)
    ARGV[2] new value
  Output:
    1 replaced, 0 the value changed (or is gone, or appeared)
]]
if (redis.call('GET', KEYS[1]) or '') ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2])
return 1
