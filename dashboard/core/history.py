"""Bounded per-channel history: the memory a hub needs to replay missed events.

Pure bookkeeping; the caller passes the clock in, so expiry is testable without sleeping.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from .events import Event


@dataclass(frozen=True)
class HistoryLimits:
    """How much history a channel keeps.

    Attributes:
        max_events: events kept per channel; the oldest is evicted first.
        max_age: seconds an event stays replayable.
    """

    max_events: int = 1000
    max_age: float = 3600.0

    def __post_init__(self) -> None:
        if self.max_events < 1 or self.max_age <= 0:
            raise ValueError("history limits must be positive")


class ChannelHistory:
    """The most recent events of one channel, bounded by count and age.

    ``tip`` is the offset of the newest event ever appended (0 before the first); it survives
    eviction, which is what lets :meth:`after` tell "nothing missed" from "too old to replay".
    ``epoch`` names this history: offsets mean something only within it.
    """

    def __init__(self, limits: HistoryLimits | None = None, epoch: str = "") -> None:
        self.epoch = epoch
        self.limits = limits or HistoryLimits()
        self._events: deque[Event] = deque(maxlen=self.limits.max_events)
        self.tip = 0

    def __len__(self) -> int:
        return len(self._events)

    def append(self, event: Event) -> None:
        """Record ``event``; its offset must be exactly ``tip + 1``."""
        if event.offset != self.tip + 1:
            raise ValueError(f"offset {event.offset} does not follow tip {self.tip}")
        self._events.append(event)
        self.tip = event.offset

    def expire(self, now: float) -> None:
        """Drop events older than ``max_age`` seconds."""
        horizon = now - self.limits.max_age
        while self._events and self._events[0].published_at < horizon:
            self._events.popleft()

    def after(self, offset: int, now: float) -> list[Event] | None:
        """Events with an offset greater than ``offset``, oldest first.

        Returns:
            The missed events (possibly none), or ``None`` when some of them are no longer
            kept, or when ``offset`` lies beyond the tip (a position this history never issued).
        """
        self.expire(now)
        if offset > self.tip or offset < 0:
            return None
        if offset == self.tip:
            return []
        oldest = self._events[0].offset if self._events else self.tip + 1
        if offset < oldest - 1:
            return None
        skip = offset - oldest + 1
        return [self._events[i] for i in range(skip, len(self._events))]
