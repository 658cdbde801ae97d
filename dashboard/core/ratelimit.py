"""A token bucket, sans I/O: the clock is injected, so tests step time by hand.

Pusher allows a connection at most 10 client events per second and rejects the excess with a
``pusher:error`` 4301, keeping the connection open; ``TokenBucket(rate=10, burst=10)`` is that
rule. A bucket allows short bursts up to ``burst`` and a sustained ``rate`` per second, and
costs O(1) memory per connection whatever the traffic.
"""

from __future__ import annotations

import time
from collections.abc import Callable

_EPSILON = 1e-9


class TokenBucket:
    """Allow on average ``rate`` actions per second, at most ``burst`` at once.

    Args:
        rate: tokens added per second.
        burst: the bucket's capacity, and its initial content: a fresh connection may
            send ``burst`` events at once.
        clock: returns the time in seconds; a monotonic clock, so wall-clock jumps neither
            lock a connection out nor hand it a burst.

    Raises:
        ValueError: when ``rate`` is not positive or ``burst`` is less than 1.
    """

    def __init__(
        self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if not rate > 0:
            raise ValueError(f"rate must be positive, not {rate!r}")
        if burst < 1:
            raise ValueError(f"burst must be at least 1, not {burst!r}")
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._tokens = float(burst)
        self._updated = clock()

    def _refill(self, now: float | None) -> None:
        now = self._clock() if now is None else now
        # max(): a clock that steps back (an injected one, say) must not drain the bucket.
        elapsed = max(0.0, now - self._updated)
        self._tokens = min(float(self.burst), self._tokens + elapsed * self.rate)
        self._updated = max(self._updated, now)

    def allow(self, now: float | None = None) -> bool:
        """Take one token if there is one.

        Args:
            now: the current time, in the clock's units; the clock is read when omitted.

        Returns:
            True when the action is allowed; False when it must be rejected (the token is
            not taken, so rejected attempts do not prolong the wait).
        """
        self._refill(now)
        # The tolerance keeps float rounding (1000.05 - 1000.0 < 0.05) from refusing an event
        # that arrives exactly on time; max() keeps the bucket from going into debt.
        if self._tokens >= 1.0 - _EPSILON:
            self._tokens = max(0.0, self._tokens - 1.0)
            return True
        return False

    def tokens(self, now: float | None = None) -> float:
        """How many actions would be allowed right now."""
        self._refill(now)
        return self._tokens
