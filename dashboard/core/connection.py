"""Connection state shared by every subscription, so one status widget fits them all."""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Protocol

from .events import Event


class ConnectionState(enum.Enum):
    """Life cycle of a subscription's connection."""

    CONNECTING = "connecting"
    OPEN = "open"
    RECONNECTING = "reconnecting"
    CLOSED = "closed"


@dataclass(frozen=True)
class ConnectionStatus:
    """A snapshot of a subscription's connection.

    Attributes:
        state: where the connection is in its life cycle.
        retries: failed attempts since the last successful connection.
        last_error: a one-line description of the latest failure, if any.
    """

    state: ConnectionState = ConnectionState.CONNECTING
    retries: int = 0
    last_error: str | None = None

    @property
    def connected(self) -> bool:
        return self.state is ConnectionState.OPEN


class EventStream(Protocol):
    """What UI components consume: events of one or more channels, plus connection status.

    Implemented in-process by :class:`dashboard.hub.HubStream` and over the network by
    :class:`dashboard.client.HubEventStream`, so a component never knows (or owns) the transport.
    """

    @property
    def status(self) -> ConnectionStatus: ...

    def watch_status(self, callback: Callable[[ConnectionStatus], None]) -> Callable[[], None]:
        """Call ``callback(status)`` on every change; returns a function that stops watching."""
        ...

    def __aiter__(self) -> AsyncIterator[Event]: ...

    async def aclose(self) -> None: ...
