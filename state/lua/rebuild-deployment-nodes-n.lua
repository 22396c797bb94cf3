--[[
  Builds a deployment's per-node counts (deployment-nodes) from its instance records, for data
  written before the bind, adopt and delete scripts kept them. Atomic, so binds and deletes racing
  it are counted once: they run wholly before (and are in the records read here) or after (and
  adjust the counts built here).
  Input: numkeys = 2 + the deployment's instances, as the caller read its set:
    KEYS[1]    deployment-instances:<ns>:<name> (set)
    KEYS[2]    deployment-nodes:<ns>:<name>     (hash, replaced)
    KEYS[2+i]  instance:<id> of the i-th id
    ARGV[i]    the i-th id of the set
  Output:
    1 built, 0 the set changed since the caller read it (nothing written: read it again)
]]
if redis.call('SCARD', KEYS[1]) ~= #ARGV then return 0 end
for i = 1, #ARGV do
  if redis.call('SISMEMBER', KEYS[1], ARGV[i]) == 0 then return 0 end
end
local counts = {}
for i = 3, #KEYS do
  local raw = redis.call('GET', KEYS[i])
  if raw then
    local ok, rec = pcall(cjson.decode, raw)
    if ok and type(rec) == 'table' and type(rec.node) == 'string' then counts[rec.node] = (counts[rec.node] or 0) + 1 end
  end
end
redis.call('DEL', KEYS[2])
for node, n in pairs(counts) do redis.call('HSET', KEYS[2], node, n) end
return 1
