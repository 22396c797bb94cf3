--[[
  Creates an instance record unless one with that id exists, and indexes it.
  Input:
    KEYS[1] instance:<id>
    KEYS[2] instances               (set)
    KEYS[3] deployment-instances:<ns>:<name> (set)
    KEYS[4] pending-instances       (set)
    ARGV[1] instance id
    ARGV[2] InstanceRecord JSON (unbound)
  Output:
    1 created, 0 already there (nothing changed)
]]
if redis.call('SET', KEYS[1], ARGV[2], 'NX') then
  redis.call('SADD', KEYS[2], ARGV[1])
  redis.call('SADD', KEYS[3], ARGV[1])
  redis.call('SADD', KEYS[4], ARGV[1])
  return 1
end
return 0
