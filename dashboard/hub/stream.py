"""An in-process :class:`~dashboard.core.connection.EventStream` over a hub.

This is what a notebook or the served app hands to UI components when the hub runs in the same
process. It survives the slow-consumer policy: when its subscription overflows, it resubscribes
from its own cursor, so the consumer still sees every event exactly once.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable

from ..core.connection import ConnectionState, ConnectionStatus, StatusReporter, StatusWatchers
from ..core.events import Event
from .hub import Hub
from .subscription import OVERFLOW, Subscription


class HubStream(StatusReporter):
    """Events of ``channels`` from ``hub``, as an async iterator with a connection status.

    Args:
        hub: the hub to subscribe to.
        channels: channel names.
        queue_size: bound of the underlying subscription's queue.
    """

    def __init__(self, hub: Hub, channels: Iterable[str], *, queue_size: int | None = None):
        self.hub = hub
        self.channels = tuple(channels)
        self.queue_size = queue_size
        self._status_watchers = StatusWatchers(ConnectionStatus(ConnectionState.CONNECTING))
        self._subscription: Subscription | None = None
        self._closed = False

    def _set_status(self, status: ConnectionStatus) -> None:
        self._status_watchers.update(status)

    async def __aiter__(self) -> AsyncIterator[Event]:
        last_event_id: str | None = None
        while not self._closed:
            subscription = await self.hub.subscribe(
                self.channels, last_event_id=last_event_id, queue_size=self.queue_size
            )
            self._subscription = subscription
            self._set_status(ConnectionStatus(ConnectionState.OPEN, self.status.retries))
            async for event in subscription:
                yield event
            if subscription.closed_reason != OVERFLOW:
                break
            # Resume exactly where the consumer is; history fills in what the queue dropped.
            last_event_id = subscription.cursor_id()
            self._set_status(
                ConnectionStatus(
                    ConnectionState.RECONNECTING, self.status.retries + 1, "consumer too slow"
                )
            )
        self._set_status(ConnectionStatus(ConnectionState.CLOSED, self.status.retries))

    async def aclose(self) -> None:
        self._closed = True
        if self._subscription is not None:
            self._subscription.close()
