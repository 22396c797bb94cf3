--[[
  Deletes an instance's status only if the given node wrote it: a copy that moved elsewhere keeps
  the new node's status.
  Input:
    KEYS[1] instance-status:<id>    (JSON InstanceStatus)
    ARGV[1] node name of the deleting agent
  Output:
    1 deleted, 0 absent or another node's
]]
local raw = redis.call('GET', KEYS[1])
if not raw then return 0 end
local ok, st = pcall(cjson.decode, raw)
if ok and type(st) == 'table' and st.node == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
