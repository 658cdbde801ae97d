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
