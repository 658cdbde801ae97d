"""Who is on each presence channel, per user and per socket, sans I/O.

A presence channel lists *users*, not sockets: a user with three tabs open is one member. So
``pusher_internal:member_added`` goes out only when a user's first socket joins and
``pusher_internal:member_removed`` only when their last socket leaves; :class:`PresenceRoster`
tells the caller when, and the caller broadcasts.

Limits follow Pusher: 100 members per channel (a further distinct user is refused; another
socket of a present user is not), user ids of at most 128 characters and ``user_info`` of at
most 1 KB, the last two checked by :func:`dashboard.core.pusher_frames.parse_channel_data`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .errors import DashboardError

MAX_PRESENCE_MEMBERS = 100


class PresenceError(DashboardError):
    """A presence subscription the roster refuses.

    Attributes:
        code: a short machine-readable reason.
    """

    code = "presence_error"


class PresenceChannelFull(PresenceError):
    """A new user on a presence channel that already has the maximum number of members."""

    code = "presence_channel_full"


@dataclass
class _Member:
    user_info: Any
    sockets: set[str] = field(default_factory=set)


class PresenceRoster:
    """Members of every presence channel, with the sockets each member is connected by.

    Args:
        max_members: distinct users allowed per channel.
    """

    def __init__(self, max_members: int = MAX_PRESENCE_MEMBERS) -> None:
        self.max_members = max_members
        # channel -> user_id -> member; dicts keep join order, so ids list oldest first.
        self._channels: dict[str, dict[str, _Member]] = {}
        # socket_id -> channel -> user_id, so a disconnect needs no scan of every channel.
        self._sockets: dict[str, dict[str, str]] = {}

    def join(self, channel: str, socket_id: str, user_id: str, user_info: Any = None) -> bool:
        """Add ``socket_id`` to ``channel`` as ``user_id``.

        Args:
            channel: the presence channel.
            socket_id: the subscribing socket.
            user_id: the user, from the verified ``channel_data``.
            user_info: shown to other members; a second socket's ``user_info`` is ignored,
                since members were told about the first.

        Returns:
            True when the user is new to the channel: broadcast ``member_added``.

        Raises:
            PresenceChannelFull: when the user is new and the channel is full.
            PresenceError: when the socket is already on the channel as another user.
        """
        members = self._channels.get(channel, {})
        joined_as = self._sockets.get(socket_id, {}).get(channel)
        if joined_as is not None:
            if joined_as != user_id:
                raise PresenceError(f"socket {socket_id} is already on {channel} as {joined_as!r}")
            return False
        member = members.get(user_id)
        if member is None and len(members) >= self.max_members:
            raise PresenceChannelFull(
                f"{channel} already has {len(members)} members; the limit is {self.max_members}"
            )
        self._sockets.setdefault(socket_id, {})[channel] = user_id
        if member is not None:
            member.sockets.add(socket_id)
            return False
        self._channels.setdefault(channel, members)[user_id] = _Member(user_info, {socket_id})
        return True

    def leave(self, channel: str, socket_id: str) -> str | None:
        """Remove ``socket_id`` from ``channel``.

        Returns:
            The user id when that was the user's last socket on the channel (broadcast
            ``member_removed``), else None, also when the socket was not on the channel.
        """
        user_id = self._sockets.get(socket_id, {}).pop(channel, None)
        if user_id is None:
            return None
        if not self._sockets[socket_id]:
            del self._sockets[socket_id]
        members = self._channels[channel]
        member = members[user_id]
        member.sockets.discard(socket_id)
        if member.sockets:
            return None
        del members[user_id]
        if not members:
            del self._channels[channel]
        return user_id

    def leave_all(self, socket_id: str) -> list[tuple[str, str]]:
        """Remove a disconnected socket from every channel.

        Returns:
            ``(channel, user_id)`` for each channel the user is now gone from.
        """
        removed = []
        for channel in list(self._sockets.get(socket_id, {})):
            user_id = self.leave(channel, socket_id)
            if user_id is not None:
                removed.append((channel, user_id))
        return removed

    def user_id(self, channel: str, socket_id: str) -> str | None:
        """The user ``socket_id`` is on ``channel`` as (for relayed client events), or None."""
        return self._sockets.get(socket_id, {}).get(channel)

    def members(self, channel: str) -> dict[str, Any]:
        """A copy of ``{user_id: user_info}`` for ``channel``, in join order."""
        return {uid: m.user_info for uid, m in self._channels.get(channel, {}).items()}

    def sockets(self, channel: str, user_id: str) -> frozenset[str]:
        """The sockets ``user_id`` is connected to ``channel`` by; empty when not a member."""
        member = self._channels.get(channel, {}).get(user_id)
        return frozenset(member.sockets) if member else frozenset()

    def user_count(self, channel: str) -> int:
        """Distinct users on ``channel`` (the HTTP API's ``user_count``)."""
        return len(self._channels.get(channel, ()))

    def channels(self) -> list[str]:
        """Presence channels with at least one member."""
        return list(self._channels)

    def snapshot(self, channel: str) -> dict[str, Any]:
        """The ``subscription_succeeded`` data: ``{"presence": {"ids", "hash", "count"}}``."""
        members = self.members(channel)
        return {"presence": {"ids": list(members), "hash": members, "count": len(members)}}
