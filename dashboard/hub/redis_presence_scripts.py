"""The Lua scripts of :mod:`dashboard.hub.redis_presence`, each one atomic in Redis.

Every script takes ``KEYS = [the channel's hash, the PUB/SUB channel of roster changes]``,
reads the time from Redis (``TIME``: the processes' clocks need not agree), and first sweeps
the channel's expired connections, publishing ``member_removed`` for members left without any.
"""

# Shared by every script: the time, the next sequence number, and the sweep of expired
# connections (publishing member_removed for members left without any).
PRELUDE = r"""
local key, events = KEYS[1], KEYS[2]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local now_us = tonumber(t[1]) * 1000000 + tonumber(t[2])
local function next_seq()
  local last = tonumber(redis.call('HGET', key, 'seq') or '0')
  local seq = math.max(last + 1, now_us)
  redis.call('HSET', key, 'seq', string.format('%.0f', seq))
  return string.format('%.0f', seq)
end
local function removed(channel, uid)
  local seq = next_seq()
  redis.call('PUBLISH', events, '{"ch":' .. cjson.encode(channel) .. ',"seq":' .. seq ..
    ',"u":' .. cjson.encode(uid) .. ',"a":0}')
end
-- readd: put back by a heartbeat after Redis lost it ("r":1), news only to who never knew.
local function added(channel, uid, info, conn, readd)
  local seq = next_seq()
  redis.call('PUBLISH', events, '{"ch":' .. cjson.encode(channel) .. ',"seq":' .. seq ..
    ',"u":' .. cjson.encode(uid) .. ',"i":' .. info .. ',"c":' .. cjson.encode(conn) ..
    ',"a":1' .. (readd and ',"r":1}' or '}'))
  return seq
end
-- Drops expired connections; returns the number of members left.
local function sweep(channel)
  local all = redis.call('HGETALL', key)
  local count = 0
  for n = 1, #all, 2 do
    local f = all[n]
    if string.sub(f, 1, 2) == 'm:' then
      local m = cjson.decode(all[n + 1])
      local alive, changed = false, false
      for conn, deadline in pairs(m.c) do
        if deadline < now then m.c[conn] = nil; changed = true else alive = true end
      end
      local uid = string.sub(f, 3)
      if not alive then
        redis.call('HDEL', key, f, 'i:' .. uid)
        removed(channel, uid)
      else
        count = count + 1
        if changed then redis.call('HSET', key, f, cjson.encode(m)) end
      end
    end
  end
  return count
end
local function roster()
  local all = redis.call('HGETALL', key)
  local list = {}
  for n = 1, #all, 2 do
    local f = all[n]
    if string.sub(f, 1, 2) == 'm:' then
      local uid = string.sub(f, 3)
      list[#list + 1] = {tonumber(cjson.decode(all[n + 1]).s), uid}
    end
  end
  table.sort(list, function(a, b) return a[1] < b[1] end)
  local out = {}
  for _, item in ipairs(list) do
    out[#out + 1] = item[2]
    out[#out + 1] = redis.call('HGET', key, 'i:' .. item[2])
  end
  return out
end
-- Adds or refreshes one connection; returns 'full', 'added' or 'present'.
local function put(channel, uid, conn, info, deadline, max_members, count, readd)
  local f = 'm:' .. uid
  local raw = redis.call('HGET', key, f)
  if raw then
    local m = cjson.decode(raw)
    m.c[conn] = deadline
    redis.call('HSET', key, f, cjson.encode(m))
    return 'present', count
  end
  if count >= max_members then return 'full', count end
  local seq = added(channel, uid, info, conn, readd)
  local c = {}
  c[conn] = deadline
  redis.call('HSET', key, f, cjson.encode({s = seq, c = c}), 'i:' .. uid, info)
  return 'added', count + 1
end
"""

# ARGV: channel, user, conn, info JSON, ttl ms, max members, key expiry ms
JOIN = (
    PRELUDE
    + r"""
local count = sweep(ARGV[1])
local outcome = put(ARGV[1], ARGV[2], ARGV[3], ARGV[4], now + tonumber(ARGV[5]),
  tonumber(ARGV[6]), count, false)
if outcome == 'full' then return {'full', tostring(count)} end
redis.call('PEXPIRE', key, ARGV[7])
return {outcome, redis.call('HGET', key, 'seq'), roster()}
"""
)

# ARGV: channel, user, conn
LEAVE = (
    PRELUDE
    + r"""
sweep(ARGV[1])
local f = 'm:' .. ARGV[2]
local raw = redis.call('HGET', key, f)
if not raw then return 0 end
local m = cjson.decode(raw)
m.c[ARGV[3]] = nil
if next(m.c) == nil then
  redis.call('HDEL', key, f, 'i:' .. ARGV[2])
  removed(ARGV[1], ARGV[2])
  return 1
end
redis.call('HSET', key, f, cjson.encode(m))
return 0
"""
)

# ARGV: channel, ttl ms, max members, key expiry ms, then (user, conn, info JSON) triples
HEARTBEAT = (
    PRELUDE
    + r"""
local count = sweep(ARGV[1])
local deadline = now + tonumber(ARGV[2])
for n = 5, #ARGV, 3 do
  local _
  _, count = put(ARGV[1], ARGV[n], ARGV[n + 1], ARGV[n + 2], deadline, tonumber(ARGV[3]),
    count, true)
end
if count > 0 then redis.call('PEXPIRE', key, ARGV[4]) end
return count
"""
)

# ARGV: channel
MEMBERS = (
    PRELUDE
    + r"""
sweep(ARGV[1])
return roster()
"""
)

# After this process missed PUB/SUB messages: the changes between the members it knows (ARGV
# from 2 on) and the roster now, each with a sequence number of its own (told to this process
# only, so not published). Returns (1 added / 0 removed, user, info JSON, seq) quadruples.
# ARGV: channel, known users...
RESYNC = (
    PRELUDE
    + r"""
sweep(ARGV[1])
local now_members, known = {}, {}
local flat = roster()
for n = 1, #flat, 2 do now_members[flat[n]] = flat[n + 1] end
for n = 2, #ARGV do known[ARGV[n]] = true end
local out = {}
for n = 1, #flat, 2 do
  if not known[flat[n]] then
    for _, item in ipairs({1, flat[n], flat[n + 1], next_seq()}) do out[#out + 1] = item end
  end
end
for n = 2, #ARGV do
  if not now_members[ARGV[n]] then
    for _, item in ipairs({0, ARGV[n], 'null', next_seq()}) do out[#out + 1] = item end
  end
end
return out
"""
)
