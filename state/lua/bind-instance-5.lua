--[[
  Binds a pending instance to a node, atomically with the node's resource accounting, so that two
  schedulers racing for the same node can never over-commit it.
  The record is compared and swapped as a whole string (never re-encoded here: cjson would turn
  empty arrays into objects).
  Input:
    KEYS[1] instance:<id>
    KEYS[2] node:<node>               (JSON NodeRecord: cpuMilli, memoryBytes, cordoned, maxInstances)
    KEYS[3] node-alloc:<node>         (hash: cpuMilli, memoryBytes, instances)
    KEYS[4] node-instances:<node>     (set)
    KEYS[5] pending-instances         (set)
    ARGV[1] expected current record JSON
    ARGV[2] new record JSON (with node set)
    ARGV[3] instance id
    ARGV[4] cpuMilli requested
    ARGV[5] memoryBytes requested
    ARGV[6] instances a node takes when its record has no maxInstances (DEFAULT_MAX_INSTANCES)
  Output:
    1 bound
    0 the record changed or is gone (re-read and retry)
   -1 node gone, -2 node cordoned, -3 insufficient cpu, -4 insufficient memory,
   -5 too many instances (maxInstances already bound)
]]
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
local raw = redis.call('GET', KEYS[2])
if not raw then return -1 end
local node = cjson.decode(raw)
if node.cordoned == true then return -2 end
local cpu = tonumber(ARGV[4])
local mem = tonumber(ARGV[5])
local maxInstances = tonumber(node.maxInstances) or tonumber(ARGV[6])
local usedInstances = tonumber(redis.call('HGET', KEYS[3], 'instances') or '0')
if usedInstances + 1 > maxInstances then return -5 end
local usedCpu = tonumber(redis.call('HGET', KEYS[3], 'cpuMilli') or '0')
local usedMem = tonumber(redis.call('HGET', KEYS[3], 'memoryBytes') or '0')
if usedCpu + cpu > tonumber(node.cpuMilli) then return -3 end
if usedMem + mem > tonumber(node.memoryBytes) then return -4 end
redis.call('SET', KEYS[1], ARGV[2])
redis.call('HINCRBY', KEYS[3], 'cpuMilli', cpu)
redis.call('HINCRBY', KEYS[3], 'memoryBytes', mem)
redis.call('HINCRBY', KEYS[3], 'instances', 1)
redis.call('SADD', KEYS[4], ARGV[3])
redis.call('SREM', KEYS[5], ARGV[3])
return 1
