--[[
  Binds a batch of pending instances, each to the node the scheduler chose for it, atomically with
  each node's resource accounting and the deployment's per-node count (its spread), so that
  schedulers racing for the same nodes can never over-commit one. Bindings are applied in order,
  each checked against the node as the bindings before it left it; one that fails changes nothing
  and does not stop the others (the scheduler retries it elsewhere).
  Records are compared and swapped as whole strings (never re-encoded here: cjson would turn
  empty arrays into objects).
  Input: numkeys = 1 + 5 per binding. Binding i (from 0) uses KEYS[2+5i .. 6+5i], ARGV[2+6i .. 7+6i]:
    KEYS[1]     pending-instances                 (set)
    KEYS[2+5i]  instance:<id>
    KEYS[3+5i]  node:<node>                       (JSON NodeRecord: cpuMilli, memoryBytes, cordoned, maxInstances)
    KEYS[4+5i]  node-alloc:<node>                 (hash: cpuMilli, memoryBytes, instances)
    KEYS[5+5i]  node-instances:<node>             (set)
    KEYS[6+5i]  deployment-nodes:<ns>:<name>      (hash: node -> instances of the deployment bound there)
    ARGV[1]     instances a node takes when its record has no maxInstances (DEFAULT_MAX_INSTANCES)
    ARGV[2+6i]  expected current record JSON
    ARGV[3+6i]  new record JSON (with node set)
    ARGV[4+6i]  instance id
    ARGV[5+6i]  cpuMilli requested
    ARGV[6+6i]  memoryBytes requested
    ARGV[7+6i]  node name
  Output: 4 integers per binding, in order: the outcome, then the node's allocated cpuMilli,
  memoryBytes and instances after it (the truth the scheduler's node cache takes; 0 0 0 when the
  node is gone). Outcomes:
    1 bound
    0 the record changed or is gone (re-read and retry)
   -1 node gone, -2 node cordoned, -3 insufficient cpu, -4 insufficient memory,
   -5 too many instances (maxInstances already bound)
]]
local out = {}
-- Decoded once per node and script run: a batch often binds several instances to one node.
local records = {}
local defaultMax = tonumber(ARGV[1])
for i = 0, (#KEYS - 1) / 5 - 1 do
  local k, a = 2 + 5 * i, 2 + 6 * i
  local node = records[KEYS[k + 1]]
  if node == nil then
    local raw = redis.call('GET', KEYS[k + 1])
    node = raw and cjson.decode(raw) or false
    records[KEYS[k + 1]] = node
  end
  local used = redis.call('HMGET', KEYS[k + 2], 'cpuMilli', 'memoryBytes', 'instances')
  local usedCpu, usedMem, usedInstances = tonumber(used[1]) or 0, tonumber(used[2]) or 0, tonumber(used[3]) or 0
  local code
  if redis.call('GET', KEYS[k]) ~= ARGV[a] then
    code = 0
  elseif not node then
    code = -1
  elseif node.cordoned == true then
    code = -2
  else
    local cpu, mem = tonumber(ARGV[a + 3]), tonumber(ARGV[a + 4])
    if usedInstances + 1 > (tonumber(node.maxInstances) or defaultMax) then
      code = -5
    elseif usedCpu + cpu > tonumber(node.cpuMilli) then
      code = -3
    elseif usedMem + mem > tonumber(node.memoryBytes) then
      code = -4
    else
      redis.call('SET', KEYS[k], ARGV[a + 1])
      -- The requested amounts as sent (strings), not Lua numbers: a large one would be formatted
      -- with an exponent.
      redis.call('HINCRBY', KEYS[k + 2], 'cpuMilli', ARGV[a + 3])
      redis.call('HINCRBY', KEYS[k + 2], 'memoryBytes', ARGV[a + 4])
      redis.call('HINCRBY', KEYS[k + 2], 'instances', 1)
      redis.call('SADD', KEYS[k + 3], ARGV[a + 2])
      redis.call('HINCRBY', KEYS[k + 4], ARGV[a + 5], 1)
      redis.call('SREM', KEYS[1], ARGV[a + 2])
      usedCpu, usedMem, usedInstances = usedCpu + cpu, usedMem + mem, usedInstances + 1
      code = 1
    end
  end
  if not node then usedCpu, usedMem, usedInstances = 0, 0, 0 end
  out[#out + 1] = code
  out[#out + 1] = usedCpu
  out[#out + 1] = usedMem
  out[#out + 1] = usedInstances
end
return out
