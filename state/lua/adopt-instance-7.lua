--[[
  Adopts an instance an agent still runs after Redis lost its data: creates its record already
  bound to that node with the uid the agent runs (unless a record with that id exists), indexes it
  and books the node's resources and the deployment's per-node count, as create-instance and
  bind-instances together would; then drops the node's claim. Capacity is not checked: the
  instance already runs there.
  Input:
    KEYS[1] instance:<id>
    KEYS[2] instances                        (set)
    KEYS[3] deployment-instances:<ns>:<name> (set)
    KEYS[4] node-instances:<node>            (set)
    KEYS[5] node-alloc:<node>                (hash: cpuMilli, memoryBytes, instances)
    KEYS[6] node-claims:<node>               (hash: id -> claimed InstanceRecord JSON)
    KEYS[7] deployment-nodes:<ns>:<name>     (hash: node -> instances of the deployment bound there)
    ARGV[1] instance id
    ARGV[2] InstanceRecord JSON (node and the claimed uid set)
    ARGV[3] cpuMilli requested
    ARGV[4] memoryBytes requested
    ARGV[5] node name
  Output:
    1 adopted, 0 a record with that id exists (nothing changed but the claim dropped)
]]
local adopted = 0
if redis.call('SET', KEYS[1], ARGV[2], 'NX') then
  redis.call('SADD', KEYS[2], ARGV[1])
  redis.call('SADD', KEYS[3], ARGV[1])
  redis.call('SADD', KEYS[4], ARGV[1])
  redis.call('HINCRBY', KEYS[5], 'cpuMilli', tonumber(ARGV[3]))
  redis.call('HINCRBY', KEYS[5], 'memoryBytes', tonumber(ARGV[4]))
  redis.call('HINCRBY', KEYS[5], 'instances', 1)
  redis.call('HINCRBY', KEYS[7], ARGV[5], 1)
  adopted = 1
end
redis.call('HDEL', KEYS[6], ARGV[1])
return adopted
