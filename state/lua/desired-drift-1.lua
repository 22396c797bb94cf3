--[[
  The periodic resync's drift check of desired state (state/desired-store.ts): one page of the
  desired-checksums hash, each field compared with what Redis holds now, inside Redis, so that no
  value leaves it and nothing is parsed. The keys checked are named by the fields (keys.ts built
  them) rather than passed as KEYS: Gantry runs on one Redis, with no cluster slots to declare.
  Input:
    KEYS[1] the desired-checksums hash, whose fields are
              "v <key>"           a string value: ARGV value = its sha1 hex
              "h <key> <field>"   a hash field's value: its sha1 hex
              "e <key> <field>"   a hash field that must exist (immutable config versions)
              "s <key> <member>"  a set member
              "@<name>"           bookkeeping (token, count): not a check
    ARGV[1] HSCAN cursor ('0' to start)
    ARGV[2] HSCAN COUNT (a hint: about that many fields per call)
  Output:
    { next cursor ('0' once the hash is done), fields checked, each field that does not match... }
]]
local page = redis.call('HSCAN', KEYS[1], ARGV[1], 'COUNT', ARGV[2])
local out = { page[1], 0 }
local items = page[2]
for i = 1, #items, 2 do
  local field, want = items[i], items[i + 1]
  local kind = string.sub(field, 1, 1)
  if kind ~= '@' then
    out[2] = out[2] + 1
    local rest = string.sub(field, 3)
    local space = string.find(rest, ' ', 1, true)
    local key, part = rest, ''
    if space then
      key = string.sub(rest, 1, space - 1)
      part = string.sub(rest, space + 1)
    end
    local ok = false
    -- pcall: a key of another type (changed behind Gantry's back) is a mismatch, not an error.
    if kind == 'v' then
      local value = redis.pcall('GET', key)
      ok = type(value) == 'string' and redis.sha1hex(value) == want
    elseif kind == 'h' then
      local value = redis.pcall('HGET', key, part)
      ok = type(value) == 'string' and redis.sha1hex(value) == want
    elseif kind == 'e' then
      ok = redis.pcall('HEXISTS', key, part) == 1
    elseif kind == 's' then
      ok = redis.pcall('SISMEMBER', key, part) == 1
    end
    if not ok then out[#out + 1] = field end
  end
end
return out
