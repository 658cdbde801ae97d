"""Which channels are occupied, and by how many subscriptions: in one process or a cluster.

The Pusher HTTP API (``GET /apps/{id}/channels``, ``.../channels/{name}``) reports occupancy.
:class:`LocalOccupancy` reads the hub of this process. :class:`RedisOccupancy` sums every live
process: each one mirrors its hub's counts into a hash of its own,
``P occupancy:<process>`` (``channel -> subscriptions``), written as they change, rewritten
whole at every heartbeat, and registered with a deadline in the sorted set ``P processes``. A
process that stops heartbeating (a crash) drops out of the sums within ``timeout`` seconds.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import logging
import secrets
from typing import Any

from .hub import Hub
from .presence import unavailable

log = logging.getLogger("dashboard.hub.occupancy")


class Occupancy(abc.ABC):
    """Subscriptions per channel, as the HTTP API reports them."""

    async def start(self) -> None:  # noqa: B027 - optional for implementations
        """Begin tracking."""

    async def stop(self) -> None:  # noqa: B027
        """Stop tracking; idempotent."""

    @abc.abstractmethod
    async def channels(self) -> dict[str, int]:
        """Every occupied channel with its number of open subscriptions."""

    @abc.abstractmethod
    async def count(self, channel: str) -> int:
        """Open subscriptions to ``channel`` (0 when unoccupied)."""


class LocalOccupancy(Occupancy):
    """The subscriptions of this process' hub: the whole truth when there is one process."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub

    async def channels(self) -> dict[str, int]:
        hub = self.hub
        return {name: hub.subscription_count(name) for name in hub.occupied_channels()}

    async def count(self, channel: str) -> int:
        return self.hub.subscription_count(channel)


# KEYS: the processes' sorted set. ARGV: prefix, this process, ttl ms, replace (0/1), then
# (channel, count) pairs; a count of 0 removes the channel.
_WRITE = r"""
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local key = ARGV[1] .. 'occupancy:' .. ARGV[2]
if ARGV[4] == '1' then redis.call('DEL', key) end
for n = 5, #ARGV, 2 do
  if ARGV[n + 1] == '0' then redis.call('HDEL', key, ARGV[n])
  else redis.call('HSET', key, ARGV[n], ARGV[n + 1]) end
end
redis.call('PEXPIRE', key, ARGV[3])
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[2])
return 1
"""

# KEYS: the processes' sorted set. ARGV: prefix, channel or '' for all.
# Returns the (channel, count) pairs of every live process.
_READ = r"""
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local out = {}
for _, process in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local key = ARGV[1] .. 'occupancy:' .. process
  if ARGV[2] ~= '' then
    local count = redis.call('HGET', key, ARGV[2])
    if count then out[#out + 1] = ARGV[2]; out[#out + 1] = count end
  else
    for _, item in ipairs(redis.call('HGETALL', key)) do out[#out + 1] = item end
  end
end
return out
"""


class RedisOccupancy(Occupancy):
    """Occupancy summed over every process on the same Redis and key prefix.

    Args:
        hub: this process' hub, whose counts are mirrored.
        redis: a ``redis.asyncio.Redis`` client.
        prefix: the cluster's key prefix.
        timeout: seconds after which a silent process no longer counts.
    """

    def __init__(self, hub: Hub, redis: Any, *, prefix: str = "dashboard:", timeout: float = 15.0):
        self.hub = hub
        self.redis = redis
        self.prefix = prefix
        self.timeout = timeout
        self.process_id = secrets.token_hex(6)
        self._processes = f"{prefix}processes"
        self._ttl_ms = int(timeout * 2000 / 3)
        self._dirty: set[str] = set()
        self._wake = asyncio.Event()
        self._failing = False  # the last update failed: an outage, already logged
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._write: Any = None
        self._read: Any = None
        hub.watch_occupancy(self._changed)

    def _changed(self, channel: str) -> None:
        self._dirty.add(channel)
        self._wake.set()

    async def start(self) -> None:
        if self._task is not None:
            return
        self._stopping = False
        self._write = self.redis.register_script(_WRITE)
        self._read = self.redis.register_script(_READ)
        try:
            await self._flush(replace=True)
        except Exception as exc:  # Redis down at start: the loop keeps trying
            log.warning("cannot write occupancy to Redis yet: %s", exc)
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            # Asked, not cancelled: a cancel that races the wake-up is lost inside
            # asyncio.wait_for on Python 3.11, and stop() would wait for a heartbeat.
            self._stopping = True
            self._wake.set()
            await asyncio.wait({task}, timeout=2)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            with contextlib.suppress(Exception):  # a clean stop leaves the sums at once
                await self.redis.zrem(self._processes, self.process_id)
                await self.redis.delete(f"{self.prefix}occupancy:{self.process_id}")

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        interval = self.timeout / 3
        next_beat = loop.time() + interval
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(0.0, next_beat - loop.time())):
                    await self._wake.wait()
            if self._stopping:
                return
            beat = loop.time() >= next_beat
            if beat:
                next_beat = loop.time() + interval
            try:
                await self._flush(replace=beat)
            except Exception as exc:
                # Said once an outage, not once a heartbeat.
                say = log.debug if self._failing else log.warning
                say("occupancy update failed (retried at the next heartbeat): %s", exc)
                self._failing = True
            else:
                if self._failing:
                    log.info("occupancy updates reach Redis again")
                self._failing = False

    async def _flush(self, *, replace: bool) -> None:
        self._wake.clear()
        hub = self.hub
        names = hub.occupied_channels() if replace else list(self._dirty)
        self._dirty.clear()
        args: list[Any] = [self.prefix, self.process_id, self._ttl_ms, "1" if replace else "0"]
        for name in names:
            args += [name, hub.subscription_count(name)]
        await self._write(keys=[self._processes], args=args)

    async def _read_pairs(self, channel: str) -> list[Any]:
        try:
            return list(await self._read(keys=[self._processes], args=[self.prefix, channel]))
        except Exception as exc:
            raise unavailable(exc, "occupancy") from None

    async def channels(self) -> dict[str, int]:
        flat = await self._read_pairs("")
        totals: dict[str, int] = {}
        for n in range(0, len(flat), 2):
            name = _text(flat[n])
            totals[name] = totals.get(name, 0) + int(flat[n + 1])
        return totals

    async def count(self, channel: str) -> int:
        flat = await self._read_pairs(channel)
        return sum(int(flat[n + 1]) for n in range(0, len(flat), 2))


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
