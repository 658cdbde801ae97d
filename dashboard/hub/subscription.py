"""One subscriber's view of the hub: a bounded queue of events, replay first, then live.

Slow-consumer policy: the queue holds at most ``maxsize`` events. When a publish finds it full,
the subscription is closed with reason ``"overflow"`` and its queue freed at once, so a stalled
client never grows server memory. Nothing is lost: its cursor still names the last event it
consumed, and resuming from that cursor replays the rest from history (or says "reset" if the
history window has moved on).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable

from ..core.cursor import Position, Reset, encode_cursor
from ..core.events import Event

#: The position of a channel before the hub has told the subscription where it starts.
_START = Position("", 0)


def _at(event: Event) -> Position:
    return Position(event.epoch, event.offset)


def _seen(event: Event, last: Position) -> bool:
    """Whether ``event`` is at or before ``last``. An event of another epoch is news: its
    channel's history started over (e.g. it was evicted), so its offsets start over too."""
    return event.epoch == last.epoch and event.offset <= last.offset


#: Why a subscription ended.
CLOSED = "closed"
OVERFLOW = "overflow"
SHUTDOWN = "shutdown"
#: The backend lost live events of a channel that its history can no longer fill (Redis came
#: back without them): the consumer resumes from its cursor and gets a ``reset``.
RESYNC = "resync"


class Subscription:
    """Events of ``channels`` in offset order per channel, each exactly once.

    Created by :meth:`Hub.subscribe`. Iterate with ``async for``, or take batches with
    :meth:`next_batch`; iteration ends when the subscription closes. ``closed_reason`` tells why.
    """

    def __init__(
        self,
        channels: tuple[str, ...],
        maxsize: int,
        on_close: Callable[[Subscription], None],
    ) -> None:
        if maxsize < 1:
            raise ValueError("maxsize must be at least 1")
        self.channels = channels
        self.maxsize = maxsize
        #: Whether it counts in its channels' occupancy (``Hub.subscribe(counted=...)``).
        self.counted = True
        self.resets: tuple[Reset, ...] = ()
        self.closed_reason: str | None = None
        # Positions of the last event handed out / queued, per channel.
        self._positions: dict[str, Position] = dict.fromkeys(channels, _START)
        self._queued: dict[str, Position] = dict(self._positions)
        self._capacity = maxsize
        self._queue: deque[Event] = deque()
        # While the hub replays history, live events wait here so they can follow the replay.
        self._pending: list[Event] | None = []
        self._waiter: asyncio.Future[None] | None = None
        self._on_close = on_close
        self._direct: Callable[[Event], bool] | None = None
        self._on_backlog: Callable[[], None] | None = None
        self._close_callbacks: list[Callable[[Subscription], None]] = []

    # -- called by the hub -------------------------------------------------------------

    def _push(self, event: Event) -> None:
        if self.closed_reason is not None:
            return
        if self._pending is not None:
            self._pending.append(event)
            return
        transient = event.transient  # relayed, not stored: no position to check or advance
        if not transient and _seen(event, self._queued[event.channel]):
            return  # already replayed or seen: never deliver twice
        if self._direct is not None and not self._queue and self._direct(event):
            # Handed straight to an idle consumer: no queue, no task wake-up.
            if not transient:
                self._positions[event.channel] = self._queued[event.channel] = _at(event)
            return
        if len(self._queue) >= self._capacity:
            self.close(OVERFLOW)
            return
        self._queue.append(event)
        if not transient:
            self._queued[event.channel] = _at(event)
        self._wake()

    def _go_live(self, replay: list[Event], positions: dict[str, Position]) -> None:
        """Queue the replayed events, then the live ones that arrived meanwhile."""
        self._positions.update(positions)
        self._queued = dict(self._positions)
        pending, self._pending = self._pending or [], None
        # A replay comes from history, which is bounded; it may exceed maxsize without counting
        # as overflow. The extra allowance shrinks as the consumer catches up.
        self._capacity = self.maxsize + len(replay)
        for event in replay:
            self._queue.append(event)
            self._queued[event.channel] = _at(event)
        for event in pending:
            self._push(event)
        self._wake()

    def _add_channel(self, channel: str, tip: Position) -> None:
        """Start ``channel`` live after position ``tip`` (see :meth:`Hub.add_channel`)."""
        self.channels = (*self.channels, channel)
        self._positions[channel] = self._queued[channel] = tip

    def _remove_channel(self, channel: str) -> None:
        """Forget ``channel``, dropping its queued events (see :meth:`Hub.remove_channel`)."""
        self.channels = tuple(name for name in self.channels if name != channel)
        self._positions.pop(channel, None)
        self._queued.pop(channel, None)
        if any(event.channel == channel for event in self._queue):
            self._queue = deque(event for event in self._queue if event.channel != channel)

    # -- consumer side -----------------------------------------------------------------

    @property
    def positions(self) -> dict[str, Position]:
        """Position after the last event handed to the consumer, per channel (a copy)."""
        return dict(self._positions)

    def cursor_id(self) -> str:
        """:attr:`positions` encoded as an SSE id of this subscription's channel list."""
        return encode_cursor(self.channels, self._positions)

    def set_direct_consumer(self, consume: Callable[[Event], bool] | None) -> None:
        """Let the publisher hand events to ``consume`` synchronously while the queue is empty.

        ``consume(event)`` returns True when it took the event (e.g. wrote it to an idle
        socket) and False when it is busy, in which case the event is queued as usual. Order is
        kept because a direct hand-off only happens when nothing is queued ahead of it, and the
        queue bound still applies because a busy consumer declines.
        """
        self._direct = consume

    def set_backlog_callback(self, callback: Callable[[], None] | None) -> None:
        """Call ``callback()`` when events queue up while no task waits in :meth:`next_batch`.

        With a direct consumer, most connections never queue anything; this lets them start
        a draining task only when there is a backlog, instead of keeping one parked (about
        1 KB per idle connection). The drainer takes batches with :meth:`next_nowait` and may
        end once the queue is empty: the next backlog calls ``callback`` again.
        """
        self._on_backlog = callback

    def qsize(self) -> int:
        return len(self._queue)

    def next_nowait(self, limit: int = 1024) -> list[Event]:
        """Take up to ``limit`` queued events without waiting (possibly none)."""
        batch: list[Event] = []
        queue = self._queue
        while queue and len(batch) < limit:
            event = queue.popleft()
            if not event.transient:
                self._positions[event.channel] = _at(event)
            batch.append(event)
        if self._capacity > self.maxsize:
            self._capacity = max(self.maxsize, self._capacity - len(batch))
        return batch

    async def next_batch(self, limit: int = 1024) -> list[Event]:
        """Wait for at least one event and take up to ``limit``; ``[]`` once closed."""
        while not self._queue:
            if self.closed_reason is not None:
                return []
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self.next_nowait(limit)

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Event:
        batch = await self.next_batch(1)
        if not batch:
            raise StopAsyncIteration
        return batch[0]

    def add_close_callback(self, callback: Callable[[Subscription], None]) -> None:
        """Call ``callback(self)`` when the subscription closes (at once if it already has)."""
        if self.closed_reason is not None:
            callback(self)
        else:
            self._close_callbacks.append(callback)

    def close(self, reason: str = CLOSED) -> None:
        """Stop receiving; queued events are dropped. Idempotent."""
        if self.closed_reason is not None:
            return
        self.closed_reason = reason
        self._direct = None
        self._queue.clear()
        self._pending = None
        self._on_close(self)
        self._wake()
        for callback in self._close_callbacks:
            callback(self)
        self._close_callbacks.clear()

    async def __aenter__(self) -> Subscription:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.close()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        elif self._queue and self._on_backlog is not None and self.closed_reason is None:
            self._on_backlog()
