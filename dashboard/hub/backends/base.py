"""The backend seam: where history lives and how events travel between hub processes.

A backend stores each channel's history and assigns offsets; the :class:`~dashboard.hub.Hub`
owns fan-out to its local subscribers, written once for every backend. The memory backend
delivers synchronously inside :meth:`Backend.append`; a networked backend (Redis) delivers
whatever any process appended, from its listener task, for the channels the hub
:meth:`~Backend.watch` (those with local subscribers).

**The promise every backend keeps: a resume is exact, or it says so.** Each channel's history
has an *epoch*, which names one unbroken history of that channel; offsets are comparable only
within it. Whenever a channel's history can no longer be trusted to hold every event since
some position (it was evicted, its storage expired or restarted empty, the process
restarted), the channel continues under a **new epoch**, never under the old one with
offsets that start over. So :meth:`Backend.after` for a position of a lost history answers
``None`` (the hub then sends a ``reset``), never a silent gap. The shared conformance suite
(tests/hub/test_backend_conformance.py) checks this for every backend.
"""

from __future__ import annotations

import abc
from collections.abc import Callable

from ...core.cursor import Position
from ...core.events import Event

Deliver = Callable[[Event], None]
#: Called with a channel whose live delivery has a gap that history cannot fill (a networked
#: backend reconnected after the channel's history was lost): its subscribers must resume.
Lost = Callable[[str], None]


class Backend(abc.ABC):
    """Seven abstract methods and a few hooks with defaults; every backend passes the same
    shared test suite."""

    #: Identifies this backend instance (a process's hub); new channel histories usually
    #: start in it, so that stream ids stay short.
    epoch: str

    @abc.abstractmethod
    async def start(self, deliver: Deliver, lost: Lost | None = None) -> None:
        """Call ``deliver(event)`` for every appended event, in offset order per channel.

        ``lost(channel)`` is called when delivery of a watched channel had a gap that its
        history can no longer fill (see :data:`Lost`); a backend that never loses live
        events never calls it.

        Raises:
            BackendUnavailable: the backend's storage cannot be reached.
        """

    @abc.abstractmethod
    async def stop(self) -> None:
        """Stop delivering and release connections. Idempotent."""

    @abc.abstractmethod
    async def append(
        self,
        channel: str,
        name: str,
        data_json: str,
        *,
        socket_id: str | None = None,
        user_id: str | None = None,
    ) -> Event:
        """Assign the channel's next offset, store the event in history and deliver it.

        The event carries the channel's epoch. ``socket_id`` and ``user_id`` are carried on
        the event unchanged (see :class:`Event`).
        """

    @abc.abstractmethod
    async def relay(self, event: Event) -> None:
        """Deliver a transient ``event`` (offset 0) to every process's subscribers, without
        storing it: client events are relayed, never kept (nothing replays them, and a
        sender could otherwise fill the history)."""

    @abc.abstractmethod
    async def after(self, channel: str, position: Position) -> list[Event] | None:
        """Events after ``position``, oldest first.

        Returns:
            The events (possibly none); ``None`` when ``position`` is of another epoch than
            the channel's history (that history was lost) or some events after it are no
            longer kept.
        """

    @abc.abstractmethod
    async def position(self, channel: str) -> Position:
        """The channel's epoch and newest offset (0 when it has none).

        A channel without history gets one (empty, in a fresh epoch), so that a subscriber's
        position names a history whose later loss is noticed.
        """

    @abc.abstractmethod
    async def channels(self) -> list[str]:
        """Names of the channels that currently hold history."""

    # -- hooks with defaults: a backend in one process needs none of them -----------------

    async def watch(self, channel: str) -> None:
        """Deliver ``channel``'s events to this process from now on (idempotent).

        The hub calls it before it reads a new subscriber's position, so that no event
        falls between the two. A networked backend subscribes to the channel's messages and
        returns once its server confirmed; the memory backend delivers everything anyway.

        Raises:
            BackendUnavailable: the backend's storage cannot be reached.
        """
        return None

    def unwatch(self, channel: str) -> None:
        """``channel`` has no local subscribers any more: stop delivering it (may take
        effect later; a later :meth:`watch` wins)."""
        return None

    def health(self) -> dict[str, object]:
        """What ``/api/health`` reports under ``backend``: at least ``kind`` and ``state``
        (``"ok"``, or ``"down"`` while the backend's storage cannot be reached)."""
        return {"kind": type(self).__name__, "state": "ok"}

    async def wait_available(self) -> None:
        """Return once the backend can be used (at once for one that is never down)."""
        return None

    def check_available(self) -> None:
        """Refuse at once while the backend is known to be down, without a round trip.

        A service that commits to a store, then publishes (chat, notifications) calls it
        before the write, so that an outage it already knows of answers 503 with nothing
        written, rather than a committed write whose live event is lost.

        Raises:
            BackendUnavailable: the backend is down now.
        """
        return None
