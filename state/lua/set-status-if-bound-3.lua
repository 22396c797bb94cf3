--[[
  Writes an instance's status for the agent of the node the instance is bound to, and announces it (on the channel, and in the changed-deployments set),
  only while the record still names that node and uid: a move to another node (or a recreate)
  between the agent's read and this write can never clobber the new node's status.
  Input:
    KEYS[1] instance:<id>           (JSON InstanceRecord)
    KEYS[2] instance-status:<id>
    KEYS[3] changed-deployments     (the set the reconciler's resync reads: ARGV[5] is added)
    ARGV[1] node name of the writing agent
    ARGV[2] uid the agent runs
    ARGV[3] InstanceStatus JSON
    ARGV[4] channel to publish on (channel:changes)
    ARGV[5] message ("<ns>/<deployment>")
  Output:
    1 written and published, 0 the instance is not (or no longer) this node's incarnation
]]
local raw = redis.call('GET', KEYS[1])
if not raw then return 0 end
local ok, rec = pcall(cjson.decode, raw)
if not ok or type(rec) ~= 'table' or rec.node ~= ARGV[1] or rec.uid ~= ARGV[2] then return 0 end
redis.call('SET', KEYS[2], ARGV[3])
redis.call('SADD', KEYS[3], ARGV[5])
redis.call('PUBLISH', ARGV[4], ARGV[5])
return 1
