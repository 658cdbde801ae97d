"""The backend seam: where history lives and how events travel between hub processes.

A backend stores each channel's history and assigns offsets; the :class:`~dashboard.hub.Hub`
owns fan-out to its local subscribers, written once for every backend. The memory backend
delivers synchronously inside :meth:`Backend.append`; a networked backend (Redis, later)
delivers whatever any process appended, from its listener task.

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


class Backend(abc.ABC):
    """Seven methods; every backend passes the same shared test suite."""

    #: Identifies this backend instance (a process's hub); new channel histories usually
    #: start in it, so that stream ids stay short.
    epoch: str

    @abc.abstractmethod
    async def start(self, deliver: Deliver) -> None:
        """Call ``deliver(event)`` for every appended event, in offset order per channel."""

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
