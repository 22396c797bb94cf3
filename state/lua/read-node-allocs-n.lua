--[[
  Reads many nodes' allocations in one call: the scheduler's node cache refreshes thousands at
  once, and a pipeline of HMGETs costs the client one command object and reply each.
  Input:
    KEYS[i] node-alloc:<node>   (hash: cpuMilli, memoryBytes, instances)
  Output:
    3 integers per key, in order: cpuMilli, memoryBytes, instances (0 when absent)
]]
local out = {}
for i = 1, #KEYS do
  local a = redis.call('HMGET', KEYS[i], 'cpuMilli', 'memoryBytes', 'instances')
  out[#out + 1] = tonumber(a[1]) or 0
  out[#out + 1] = tonumber(a[2]) or 0
  out[#out + 1] = tonumber(a[3]) or 0
end
return out
