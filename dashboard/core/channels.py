"""Channel names and kinds, with the same rules as Pusher Channels.

A name is 1 to 164 characters of ``[A-Za-z0-9_\\-=@,.;]``; its prefix gives its kind.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable

from .errors import InvalidChannel

MAX_CHANNEL_LENGTH = 164
#: ``private-user-{user_id}``: one user's own channel (notifications, read state); the auth
#: endpoint signs it only for that user.
USER_CHANNEL_PREFIX = "private-user-"
#: Notifications for everyone; any identified user may listen.
BROADCAST_CHANNEL = "private-notifications"
#: The presence channel every dashboard session joins: "who is viewing the dashboard".
DASHBOARD_PRESENCE = "presence-dashboard"
#: ``presence-room-{room}``: who is in a chat room, and their typing events.
ROOM_PRESENCE_PREFIX = "presence-room-"
#: Where new chat rooms are announced, as ``room-created`` events ``{"name", "created"}``.
ROOM_LIST_CHANNEL = "rooms"
ROOM_CREATED_EVENT = "room-created"
_CHANNEL_RE = re.compile(r"[A-Za-z0-9_\-=@,.;]{1,164}")


class ChannelKind(enum.Enum):
    PUBLIC = "public"
    PRIVATE = "private"
    PRESENCE = "presence"


def validate_channel(name: object) -> str:
    """Return ``name`` if it is a valid channel name.

    Raises:
        InvalidChannel: with a message that says which rule was broken.
    """
    if not isinstance(name, str):
        raise InvalidChannel(f"channel must be a string, not {type(name).__name__}")
    if not name:
        raise InvalidChannel("channel must not be empty")
    if len(name) > MAX_CHANNEL_LENGTH:
        raise InvalidChannel(f"channel is {len(name)} characters long; the limit is 164")
    if not _CHANNEL_RE.fullmatch(name):
        raise InvalidChannel(f"channel {name!r} may only contain letters, digits and _ - = @ , . ;")
    return name


def validate_channels(names: Iterable[object]) -> tuple[str, ...]:
    """Validate several names; duplicates are dropped, first occurrence order kept.

    Raises:
        InvalidChannel: when any name is invalid or none is given.
    """
    unique = tuple(dict.fromkeys(validate_channel(name) for name in names))
    if not unique:
        raise InvalidChannel("at least one channel is required")
    return unique


def channel_kind(name: str) -> ChannelKind:
    """Classify a (valid) channel name by its prefix."""
    if name.startswith("presence-"):
        return ChannelKind.PRESENCE
    if name.startswith("private-"):
        return ChannelKind.PRIVATE
    return ChannelKind.PUBLIC


def server_only(channel: str) -> bool:
    """Whether only the server publishes on ``channel``: clients may listen, never send
    (a client event there could impersonate a notification to every listener)."""
    return channel.startswith(USER_CHANNEL_PREFIX) or channel == BROADCAST_CHANNEL


def room_name_problem(room: str) -> str | None:
    """Why ``room`` cannot name a chat room, or ``None`` when it can.

    A room's presence channel is ``presence-room-{room}``, so a room name follows the channel
    rules above with 150 characters at most.
    """
    try:
        validate_channel(ROOM_PRESENCE_PREFIX + room)
    except InvalidChannel:
        limit = MAX_CHANNEL_LENGTH - len(ROOM_PRESENCE_PREFIX)
        return f"a room name is 1 to {limit} letters, digits and _ - = @ , . ; (no spaces)"
    return None
