"""A per-key rate limit that holds across processes: GCRA in one Lua script in Redis.

The generic cell rate algorithm keeps one number per key, the *theoretical arrival time*
(TAT): when the bucket would be full again. A request at ``now`` is allowed when
``TAT - now <= (burst - 1) * interval``; it then moves TAT to ``max(TAT, now) + interval``.
That is the token bucket of :class:`~dashboard.core.ratelimit.TokenBucket` (``burst`` at once,
``rate`` per second after), decided atomically in Redis on Redis' clock, so N processes
together allow what one would, and a refused request takes nothing. The key expires when the
bucket is full again: an idle user costs no memory.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from ..core.user_limits import KeyedRateLimiter

log = logging.getLogger("dashboard.hub.limits")

#: Longest wait for Redis' answer before this request is limited locally.
REDIS_WAIT = 0.5
#: Seconds to limit locally, without asking Redis, after it failed to answer.
RETRY_AFTER = 5.0

# KEYS: the user's key. ARGV: interval µs, burst. Returns 0, or the µs until allowed.
_GCRA = r"""
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval, burst = tonumber(ARGV[1]), tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local wait = tat - now - (burst - 1) * interval
if wait > 0 then return math.ceil(wait) end
local new = tat + interval
redis.call('SET', KEYS[1], string.format('%.0f', new), 'PX', math.ceil((new - now) / 1000) + 1)
return 0
"""


class RedisRateLimiter:
    """Allow each key ``rate`` actions per second on average, ``burst`` at once, cluster-wide.

    The shared counterpart of :class:`~dashboard.core.user_limits.KeyedRateLimiter`, with the
    same ``rate``, ``burst`` and ``acquire`` (a coroutine here).

    Args:
        redis: a ``redis.asyncio.Redis`` client.
        name: names the limit in its keys (``P limit:<name>:<key>``).
        rate: actions per second per key.
        burst: actions allowed at once.
        prefix: the cluster's key prefix.

    While Redis cannot be reached, each process enforces the same limit on its own (a
    :class:`~dashboard.core.user_limits.KeyedRateLimiter`): N processes then allow up to N
    times as much, rather than refusing everyone or allowing anything.

    Raises:
        ValueError: a non-positive rate or a burst below 1.
    """

    def __init__(
        self, redis: Any, name: str, rate: float, burst: int, *, prefix: str = "dashboard:"
    ) -> None:
        # Validates rate and burst too, as every limiter does.
        self.fallback = KeyedRateLimiter(rate, burst)
        self.redis = redis
        self.name = name
        self.rate = rate
        self.burst = burst
        self.prefix = prefix
        self._interval_us = max(1, round(1_000_000 / rate))
        self._script = redis.register_script(_GCRA)
        self._failing = False
        self._retry_at = 0.0

    async def acquire(self, key: str) -> float:
        """Take one action for ``key``.

        Returns:
            0.0 when allowed; otherwise the seconds until it would be (nothing is taken).
        """
        if self._failing and time.monotonic() < self._retry_at:
            return self.fallback.acquire(key)
        try:
            wait_us = await asyncio.wait_for(
                self._script(
                    keys=[f"{self.prefix}limit:{self.name}:{key}"],
                    args=[self._interval_us, self.burst],
                ),
                REDIS_WAIT,
            )
        except Exception as exc:  # Redis down: this process limits on its own meanwhile
            if not self._failing:
                log.warning(
                    "rate limit %s: Redis unreachable (%r); limiting locally", self.name, exc
                )
            self._failing = True
            self._retry_at = time.monotonic() + RETRY_AFTER
            return self.fallback.acquire(key)
        if self._failing:
            log.info("rate limit %s: Redis is back; limiting cluster-wide again", self.name)
            self._failing = False
        return int(wait_us) / 1_000_000
