--[[
  Deletes an instance record and releases what it held on its node. Safe to repeat: resources and
  the deployment's per-node count are given back only if the instance was still in the node's set.
  Input:
    KEYS[1] instance:<id>
    KEYS[2] instances                  (set)
    KEYS[3] deployment-instances:<ns>:<name> (set)
    KEYS[4] pending-instances          (set)
    KEYS[5] node-alloc:<node>          (hash; when unbound, pass any key: it is not touched)
    KEYS[6] node-instances:<node>      (set; idem)
    KEYS[7] deployment-nodes:<ns>:<name> (hash: node -> instances of the deployment bound there)
    ARGV[1] expected current record JSON ('' to skip the check)
    ARGV[2] instance id
    ARGV[3] cpuMilli held
    ARGV[4] memoryBytes held
    ARGV[5] '1' when the record is bound to the node of KEYS[5..6]
    ARGV[6] that node's name ('' when unbound)
  Output:
    1 deleted, 0 the record changed (re-read and retry)
]]
local current = redis.call('GET', KEYS[1])
if ARGV[1] ~= '' and current and current ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
redis.call('SREM', KEYS[2], ARGV[2])
redis.call('SREM', KEYS[3], ARGV[2])
redis.call('SREM', KEYS[4], ARGV[2])
if ARGV[5] == '1' and redis.call('SREM', KEYS[6], ARGV[2]) == 1 then
  -- 0 - x, not -x: -0 would reach Redis as "-0", which HINCRBY rejects.
  redis.call('HINCRBY', KEYS[5], 'cpuMilli', 0 - tonumber(ARGV[3]))
  redis.call('HINCRBY', KEYS[5], 'memoryBytes', 0 - tonumber(ARGV[4]))
  redis.call('HINCRBY', KEYS[5], 'instances', -1)
  -- A node with none of the deployment's instances left leaves the hash (the last one takes the
  -- key with it); <= 0 also covers a count that data from before these counts never had.
  if redis.call('HINCRBY', KEYS[7], ARGV[6], -1) <= 0 then redis.call('HDEL', KEYS[7], ARGV[6]) end
end
return 1
