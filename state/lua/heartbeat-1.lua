--[[
  Records a node's heartbeat on Redis's own clock (TIME), so that a node whose clock is off is
  judged by the same clock as every other.
  Input:
    KEYS[1] node-heartbeat:<node>
  Output:
    the heartbeat written, ms since the epoch
]]
local t = redis.call('TIME')
local ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('SET', KEYS[1], ms)
return ms
