"""Chat rooms: the asyncio layer that commits messages to the store, then broadcasts them.

It sits above :mod:`dashboard.hub` and :mod:`dashboard.store` (and imports both) and below
:mod:`dashboard.server`, which turns it into REST endpoints.
"""

from __future__ import annotations

from .service import (
    HISTORY_ON_JOIN,
    OPS,
    ROOM_CHANNEL_PREFIX,
    ChatService,
    RoomFeed,
    change_from_event,
    message_from_json,
    message_json,
    room_channel,
)

__all__ = [
    "HISTORY_ON_JOIN",
    "OPS",
    "ROOM_CHANNEL_PREFIX",
    "ChatService",
    "RoomFeed",
    "change_from_event",
    "message_from_json",
    "message_json",
    "room_channel",
]
