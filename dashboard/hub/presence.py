"""The presence seam: who is on each presence channel, in one process or across many.

A presence channel lists *users*, not sockets: ``member_added`` goes out when a user's first
connection joins *anywhere*, ``member_removed`` when their last one leaves (or the process
holding it stops heartbeating). A :class:`Presence` decides those transitions and reports each
one, once, as a :class:`RosterChange` to the ``notify`` callback of every process it runs in;
each process tells its own subscribers (the Pusher socket handler does, see
:mod:`dashboard.server.pusher_ws`).

Every change carries a sequence number, increasing per channel. A join answers with the roster
and the sequence number it reflects, so a subscriber that receives the roster skips the
changes already in it and misses none that came after, however the two race
(:class:`Joined`). Two implementations pass one conformance suite
(tests/hub/test_presence_conformance.py): :class:`MemoryPresence`, one process, and
:class:`~dashboard.hub.redis_presence.RedisPresence`, any number of them.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..core.errors import BackendUnavailable
from ..core.presence import MAX_PRESENCE_MEMBERS, PresenceRoster


@dataclass(frozen=True)
class RosterChange:
    """A user joined (their first connection anywhere) or left (their last one) a channel.

    Attributes:
        channel: the presence channel.
        seq: increases with every change of the channel's roster.
        user_id: the member.
        added: True for ``member_added``, False for ``member_removed``.
        user_info: the member's info (``None`` on removals).
        socket_id: the socket of *this* process whose join caused the change; it is told by
            its ``subscription_succeeded`` instead. ``None`` otherwise.
    """

    channel: str
    seq: int
    user_id: str
    added: bool
    user_info: Any = None
    socket_id: str | None = None


@dataclass(frozen=True)
class Joined:
    """What :meth:`Presence.join` answers.

    Attributes:
        added: whether this join made the user a member (their first connection anywhere).
        seq: the channel's sequence number that ``members`` reflects; changes with a higher
            one are news to the joining socket, the others are already in ``members``.
        members: ``{user_id: user_info}`` in join order, the joining user included.
    """

    added: bool
    seq: int
    members: dict[str, Any]

    def snapshot(self) -> dict[str, Any]:
        """The ``subscription_succeeded`` data: ``{"presence": {"ids", "hash", "count"}}``."""
        members = self.members
        return {"presence": {"ids": list(members), "hash": members, "count": len(members)}}


Notify = Callable[[RosterChange], None]


def unavailable(exc: Exception, what: str) -> Exception:
    """``exc`` as :class:`~dashboard.core.errors.BackendUnavailable` (a 503 with
    ``Retry-After``) when it says Redis cannot be reached now; else ``exc`` itself."""
    try:
        from redis.exceptions import RedisError
    except ImportError:  # pragma: no cover - only Redis-backed objects call this
        return exc
    if isinstance(exc, RedisError | OSError | TimeoutError):
        return BackendUnavailable(f"{what}: Redis is unreachable ({exc.__class__.__name__})", 2)
    return exc


class Presence(abc.ABC):
    """Presence rosters behind one interface; every implementation passes the same suite.

    ``leave`` and ``leave_all`` are synchronous, for a socket that closes: they take effect
    locally at once and, for a networked presence, remotely in the order they were made
    (after any earlier join of the same process). Their ``member_removed`` arrives through
    ``notify`` like every other change.
    """

    max_members: int = MAX_PRESENCE_MEMBERS

    @abc.abstractmethod
    async def start(self, notify: Notify) -> None:
        """Call ``notify(change)`` for every roster change of every channel from now on."""

    @abc.abstractmethod
    async def stop(self) -> None:
        """Stop heartbeating and notifying; idempotent. Members of this process are left to
        expire, as after a crash, unless their sockets left first."""

    @abc.abstractmethod
    async def join(
        self, channel: str, socket_id: str, user_id: str, user_info: Any = None
    ) -> Joined:
        """Add ``socket_id`` to ``channel`` as ``user_id``.

        Raises:
            PresenceChannelFull: the user is new and the channel has ``max_members``.
            PresenceError: the socket is already on the channel as another user.
        """

    @abc.abstractmethod
    def leave(self, channel: str, socket_id: str) -> None:
        """Remove ``socket_id`` from ``channel``; a no-op when it is not on it."""

    @abc.abstractmethod
    def leave_all(self, socket_id: str) -> None:
        """Remove a closed socket from every channel."""

    @abc.abstractmethod
    def user_id(self, channel: str, socket_id: str) -> str | None:
        """The user a socket of this process is on ``channel`` as, or None."""

    @abc.abstractmethod
    async def members(self, channel: str) -> dict[str, Any]:
        """``{user_id: user_info}`` of ``channel``, across every process, in join order."""

    async def user_count(self, channel: str) -> int:
        """Distinct users on ``channel`` across every process."""
        return len(await self.members(channel))

    def health(self) -> dict[str, Any]:
        """For ``/api/health``: the kind, and ``state`` (``"ok"`` or ``"down"``)."""
        return {"kind": "memory", "state": "ok"}


class MemoryPresence(Presence):
    """The rosters of one process (:class:`~dashboard.core.presence.PresenceRoster`)."""

    def __init__(self, max_members: int = MAX_PRESENCE_MEMBERS) -> None:
        self.roster = PresenceRoster(max_members)
        self._notify: Notify | None = None
        self._seq: dict[str, int] = {}

    async def start(self, notify: Notify) -> None:
        self._notify = notify

    async def stop(self) -> None:
        self._notify = None

    @property
    def max_members(self) -> int:
        return self.roster.max_members

    @max_members.setter
    def max_members(self, value: int) -> None:
        self.roster.max_members = value

    def _next(self, channel: str) -> int:
        seq = self._seq[channel] = self._seq.get(channel, 0) + 1
        return seq

    async def join(
        self, channel: str, socket_id: str, user_id: str, user_info: Any = None
    ) -> Joined:
        added = self.roster.join(channel, socket_id, user_id, user_info)
        if added:
            seq = self._next(channel)
            info = self.roster.members(channel)[user_id]
            self._tell(RosterChange(channel, seq, user_id, True, info, socket_id))
        return Joined(added, self._seq.get(channel, 0), self.roster.members(channel))

    def leave(self, channel: str, socket_id: str) -> None:
        user_id = self.roster.leave(channel, socket_id)
        if user_id is not None:
            self._removed(channel, user_id)

    def leave_all(self, socket_id: str) -> None:
        for channel, user_id in self.roster.leave_all(socket_id):
            self._removed(channel, user_id)

    def _removed(self, channel: str, user_id: str) -> None:
        seq = self._next(channel)
        if not self.roster.user_count(channel):
            del self._seq[channel]  # bounded: no counter outlives its channel's members
        self._tell(RosterChange(channel, seq, user_id, False))

    def _tell(self, change: RosterChange) -> None:
        if self._notify is not None:
            self._notify(change)

    def user_id(self, channel: str, socket_id: str) -> str | None:
        return self.roster.user_id(channel, socket_id)

    async def members(self, channel: str) -> dict[str, Any]:
        return self.roster.members(channel)

    async def user_count(self, channel: str) -> int:
        return self.roster.user_count(channel)
