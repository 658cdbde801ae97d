"""The Lua the Redis backend runs: one script per publish, one to read a channel's position.

A script runs atomically (https://redis.io/docs/latest/develop/programmability/eval-intro/),
so every process that publishes to a channel agrees on its offsets, and the order in which
``PUBLISH`` hands events to subscribers is their offset order.

Keys of one channel (``P`` is the key prefix, ``dashboard:`` by default)::

    P{channel}:meta     hash  e = epoch, g = generation, n = epoch changes in it, o = newest offset
    P{channel}:stream   stream of events; entry id "<offset>-0", one field b = <body>
    P{channel}          pub/sub channel; message "<epoch>\\n<offset>\\n<body>"

``<body>`` is ``<header JSON>\\n<data JSON>``, built once by the publisher
(:func:`dashboard.hub.backends.redis.encode_body`).

**The epoch rule.** The history of a channel can no longer be trusted when its meta hash is
gone (expired, evicted, ``FLUSHDB``, a restart without persistence): then the channel starts
over in a new *generation*, the caller's ``candidate`` (never one that may have started this
channel before, see ``RedisBackend._run``), and any leftover stream is deleted. When the meta
survives but the stream is gone while the meta says events were published (the stream expired
or was evicted alone), the epoch becomes ``<generation>_<n in hex>``, ``n`` counting such
losses. Either way the offsets start over under an epoch the channel never had, so a cursor of
the old history gets a ``reset``.
"""

from __future__ import annotations

#: Epoch changes within one generation before the next loss starts a new generation, so
#: that an epoch stays within a generation's 17 characters + 1 + 5 (the cursor allows 24).
MAX_BUMPS = 0xFFFFF

_CURRENT = f"""
-- The channel's current epoch and newest offset, and 1 when this call started a generation.
local function current(meta, stream, candidate, ttl)
  local m = redis.call('HMGET', meta, 'e', 'g', 'n', 'o')
  local n = tonumber(m[3])
  if not m[1] or n >= {MAX_BUMPS} then
    redis.call('DEL', stream)
    redis.call('HSET', meta, 'e', candidate, 'g', candidate, 'n', 0, 'o', 0)
    redis.call('PEXPIRE', meta, ttl)
    return candidate, 0, 1
  end
  local offset = tonumber(m[4])
  if offset > 0 and redis.call('EXISTS', stream) == 0 then
    n = n + 1
    local epoch = m[2] .. '_' .. string.format('%x', n)
    redis.call('HSET', meta, 'e', epoch, 'n', n, 'o', 0)
    return epoch, 0, 0
  end
  return m[1], offset, 0
end
"""

#: KEYS: meta, stream. ARGV: candidate generation, max age in ms, max events, pub/sub
#: channel, body. Returns ``{epoch, offset, created}`` of the stored event, ``created`` 1 when
#: the candidate generation was taken.
PUBLISH = (
    _CURRENT
    + """
local meta, stream = KEYS[1], KEYS[2]
local ttl = ARGV[2]
local epoch, offset, created = current(meta, stream, ARGV[1], ttl)
offset = offset + 1
local id = string.format('%d-0', offset)
redis.call('XADD', stream, 'MAXLEN', ARGV[3], id, 'b', ARGV[5])
redis.call('HSET', meta, 'o', offset)
redis.call('PEXPIRE', stream, ttl)
redis.call('PEXPIRE', meta, ttl)
redis.call('PUBLISH', ARGV[4], epoch .. '\\n' .. string.format('%d', offset) .. '\\n' .. ARGV[5])
return {epoch, offset, created}
"""
)

#: KEYS: meta, stream. ARGV: candidate generation, max age in ms. Returns ``{epoch, offset,
#: created}``, creating an empty history (in the candidate generation) for a channel without
#: one.
POSITION = (
    _CURRENT
    + """
local epoch, offset, created = current(KEYS[1], KEYS[2], ARGV[1], ARGV[2])
return {epoch, offset, created}
"""
)

#: KEYS: a meta hash. ARGV: ttl in ms. Extends the key's expiry to at least the ttl, if the
#: key exists (a watched channel's; a published channel's longer expiry is left alone).
KEEP = """
local left = redis.call('PTTL', KEYS[1])
if left >= 0 and left < tonumber(ARGV[1]) then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
end
return left
"""
