"""An in-process :class:`~dashboard.core.connection.EventStream` over a hub.

This is what a notebook or the served app hands to UI components when the hub runs in the same
process. It survives the slow-consumer policy: when its subscription overflows, it resubscribes
from its own cursor, so the consumer still sees every event exactly once, or a
:class:`~dashboard.core.cursor.Reset` where the history no longer reaches back that far. It
does the same when a Redis hub lost events it cannot replay, and waits (``reconnecting``)
while the hub's Redis is down.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Callable, Iterable

from ..core.connection import (
    ConnectionState,
    ConnectionStatus,
    ResetWatchers,
    StatusWatchers,
)
from ..core.cursor import Reset
from ..core.errors import BackendUnavailable
from ..core.events import Event
from .hub import Hub
from .status import OpenWaiter
from .subscription import OVERFLOW, RESYNC, Subscription


class HubStream(OpenWaiter):
    """Events of ``channels`` from ``hub``, as an async iterator with a connection status.

    Args:
        hub: the hub to subscribe to.
        channels: channel names.
        queue_size: bound of the underlying subscription's queue.
        last_event_id: a cursor to resume from (the hub's ``Last-Event-ID``); live when ``None``.
    """

    def __init__(
        self,
        hub: Hub,
        channels: Iterable[str],
        *,
        queue_size: int | None = None,
        last_event_id: str | None = None,
    ):
        self.hub = hub
        self.channels = tuple(channels)
        self.queue_size = queue_size
        self._status_watchers = StatusWatchers(ConnectionStatus(ConnectionState.CONNECTING))
        self._reset_watchers = ResetWatchers()
        self._subscription: Subscription | None = None
        self._last_event_id = last_event_id
        self._closed = False

    @property
    def last_event_id(self) -> str | None:
        """The cursor of the last event consumed: where a resubscription resumes."""
        if self._subscription is not None:
            return self._subscription.cursor_id()
        return self._last_event_id

    @property
    def resets(self) -> list[Reset]:
        """The latest resets, oldest first (at most 100)."""
        return self._reset_watchers.resets

    def watch_resets(self, callback: Callable[[Reset], None]) -> Callable[[], None]:
        """Call ``callback(reset)`` when a channel could not resume exactly, before the first
        event after the gap.

        Returns:
            A function that stops watching.
        """
        return self._reset_watchers.watch(callback)

    def _set_status(self, status: ConnectionStatus) -> None:
        self._status_watchers.update(status)

    async def __aiter__(self) -> AsyncIterator[Event]:
        last_event_id = self._last_event_id
        while not self._closed:
            try:
                subscription = await self.hub.subscribe(
                    self.channels, last_event_id=last_event_id, queue_size=self.queue_size
                )
            except BackendUnavailable as exc:
                # The hub's Redis is down: wait for it, then resume from the same cursor.
                self._set_status(
                    ConnectionStatus(
                        ConnectionState.RECONNECTING, self.status.retries + 1, str(exc)
                    )
                )
                await self.hub.backend.wait_available()
                await asyncio.sleep(random.uniform(0.05, 0.5))
                continue
            self._subscription = subscription
            self._set_status(ConnectionStatus(ConnectionState.OPEN, self.status.retries))
            for reset in subscription.resets:
                self._reset_watchers.report(reset)
            async for event in subscription:
                yield event
            if subscription.closed_reason not in (OVERFLOW, RESYNC):
                break
            # Resume exactly where the consumer is; history fills in what the queue dropped.
            last_event_id = subscription.cursor_id()
            self._set_status(
                ConnectionStatus(
                    ConnectionState.RECONNECTING,
                    self.status.retries + 1,
                    "consumer too slow"
                    if subscription.closed_reason == OVERFLOW
                    else "backend lost events",
                )
            )
        self._set_status(ConnectionStatus(ConnectionState.CLOSED, self.status.retries))

    async def aclose(self) -> None:
        self._closed = True
        if self._subscription is not None:
            self._subscription.close()
