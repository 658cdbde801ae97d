"""Connection state shared by every subscription, so one status widget fits them all."""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Protocol

from .cursor import Reset
from .events import Event

#: Resets a stream keeps in its ``resets``; older ones are dropped first.
MAX_RESETS = 100


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

    async def wait_open(self) -> None:
        """Return once the connection is open (see
        :meth:`dashboard.hub.status.OpenWaiter.wait_open`)."""
        ...

    def watch_resets(self, callback: Callable[[Reset], None]) -> Callable[[], None]:
        """Call ``callback(reset)`` for every channel whose resume was not exact (a gap), in
        order with the events: after the last event before the gap is yielded, before the
        first one after it. Returns a function that stops watching."""
        ...

    def __aiter__(self) -> AsyncIterator[Event]: ...

    async def aclose(self) -> None: ...


class StatusWatchers:
    """A connection's current :class:`ConnectionStatus` and the callbacks told of each change.

    Every client keeps one of these instead of its own list of callbacks.

    Args:
        initial: the status before anything happened.
        closed_is_final: ignore updates once the status is CLOSED, so that a connect that
            completes after ``aclose()`` cannot reopen a closed client.
    """

    def __init__(
        self, initial: ConnectionStatus | None = None, *, closed_is_final: bool = True
    ) -> None:
        self.status = initial or ConnectionStatus()
        self.closed_is_final = closed_is_final
        self._callbacks: list[Callable[[ConnectionStatus], None]] = []

    def watch(self, callback: Callable[[ConnectionStatus], None]) -> Callable[[], None]:
        """Call ``callback(status)`` on every change; returns a function that stops it."""
        self._callbacks.append(callback)

        def unwatch() -> None:
            if callback in self._callbacks:
                self._callbacks.remove(callback)

        return unwatch

    def update(self, status: ConnectionStatus) -> None:
        """Make ``status`` current and tell the watchers, unless nothing changed."""
        if status == self.status:
            return
        if self.closed_is_final and self.status.state is ConnectionState.CLOSED:
            return
        self.status = status
        for callback in list(self._callbacks):
            callback(status)


class StatusReporter:
    """``status`` and ``watch_status`` of the :class:`EventStream` protocol, kept by one
    :class:`StatusWatchers` that the subclass creates as ``self._status_watchers``."""

    _status_watchers: StatusWatchers

    @property
    def status(self) -> ConnectionStatus:
        return self._status_watchers.status

    def watch_status(self, callback: Callable[[ConnectionStatus], None]) -> Callable[[], None]:
        """Call ``callback(status)`` on every change.

        Returns:
            A function that stops watching.
        """
        return self._status_watchers.watch(callback)


class ResetWatchers:
    """The latest resets a stream reported (at most :data:`MAX_RESETS`) and the callbacks told
    of each, so that every stream says "this channel has a gap" the same way."""

    def __init__(self) -> None:
        self.resets: list[Reset] = []
        self._callbacks: list[Callable[[Reset], None]] = []

    def watch(self, callback: Callable[[Reset], None]) -> Callable[[], None]:
        """Call ``callback(reset)`` for every reset from now on.

        Returns:
            A function that stops it.
        """
        self._callbacks.append(callback)

        def unwatch() -> None:
            if callback in self._callbacks:
                self._callbacks.remove(callback)

        return unwatch

    def report(self, reset: Reset) -> None:
        """Keep ``reset`` and tell the watchers."""
        self.resets.append(reset)
        del self.resets[:-MAX_RESETS]
        for callback in list(self._callbacks):
            callback(reset)
