"""The backend seam: where history lives and how events travel between hub processes.

A backend stores each channel's history and assigns offsets; the :class:`~dashboard.hub.Hub`
owns fan-out to its local subscribers, written once for every backend. The memory backend
delivers synchronously inside :meth:`Backend.append`; a networked backend (Redis, later)
delivers whatever any process appended, from its listener task.
"""

from __future__ import annotations

import abc
from collections.abc import Callable

from ...core.events import Event

Deliver = Callable[[Event], None]


class Backend(abc.ABC):
    """Seven methods; every backend passes the same shared test suite."""

    #: Identifies this backend's history. Offsets from another epoch are meaningless here.
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

        ``socket_id`` and ``user_id`` are carried on the event unchanged (see :class:`Event`).
        """

    @abc.abstractmethod
    async def relay(self, event: Event) -> None:
        """Deliver a transient ``event`` (offset 0) to every process's subscribers, without
        storing it: client events are relayed, never kept (nothing replays them, and a
        sender could otherwise fill the history)."""

    @abc.abstractmethod
    async def after(self, channel: str, offset: int) -> list[Event] | None:
        """Events after ``offset``, oldest first; ``None`` when some are no longer kept."""

    @abc.abstractmethod
    async def tip(self, channel: str) -> int:
        """The channel's newest offset (0 when it has none)."""

    @abc.abstractmethod
    async def channels(self) -> list[str]:
        """Names of the channels that currently hold history."""
