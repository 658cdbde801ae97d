"""One token bucket per key (a user id), bounded in memory; sans I/O like the bucket itself."""

from __future__ import annotations

import time
from collections.abc import Callable

from .ratelimit import TokenBucket


class KeyedRateLimiter:
    """Allow each key ``rate`` actions per second on average, ``burst`` at once.

    Memory is bounded: beyond ``max_keys`` buckets, full ones are forgotten first (a fresh
    bucket is full, so forgetting one changes nothing), then the oldest.

    Args:
        rate: tokens per second per key.
        burst: a bucket's capacity.
        max_keys: most buckets kept.
        clock: a monotonic clock, in seconds.

    Raises:
        ValueError: a non-positive rate, a burst below 1, or ``max_keys`` below 1.
    """

    def __init__(
        self,
        rate: float,
        burst: int,
        *,
        max_keys: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        TokenBucket(rate, burst)  # validates rate and burst
        if max_keys < 1:
            raise ValueError(f"max_keys must be at least 1, not {max_keys!r}")
        self.rate = rate
        self.burst = burst
        self.max_keys = max_keys
        self._clock = clock
        self._buckets: dict[str, TokenBucket] = {}

    def __len__(self) -> int:
        return len(self._buckets)

    def acquire(self, key: str, now: float | None = None) -> float:
        """Take a token for ``key``.

        Returns:
            0.0 when allowed; otherwise the seconds until the next token (the action is
            refused and nothing is taken).
        """
        now = self._clock() if now is None else now
        bucket = self._buckets.get(key)
        if bucket is None:
            self._make_room(now)
            bucket = self._buckets[key] = TokenBucket(self.rate, self.burst, clock=self._clock)
            bucket.tokens(now)  # the bucket's clock starts at now, not at construction time
        if bucket.allow(now):
            return 0.0
        return max((1.0 - bucket.tokens(now)) / self.rate, 1e-3)

    def _make_room(self, now: float) -> None:
        if len(self._buckets) < self.max_keys:
            return
        for key in [k for k, b in self._buckets.items() if b.tokens(now) >= self.burst]:
            del self._buckets[key]
        while len(self._buckets) >= self.max_keys:
            del self._buckets[next(iter(self._buckets))]
