"""Commit a chat message to the store, then broadcast it as a row change on its room's channel.

Wire format, chosen so subscribers filter by room and by operation with plain channel and event
names (the role ``postgres_changes`` filters play in Supabase Realtime):

* channel: ``room-{room}``, one public channel per room (readable like the dashboard feed:
  ``/api/events?channel=room-lobby`` or a Pusher ``subscribe``). The prefix keeps rooms apart
  from dashboard channels and from ``private-``/``presence-`` names, and costs five of the 164
  characters a channel name may have, so room names are at most 159 characters here.
* event name: the operation, ``INSERT``, ``UPDATE`` or ``DELETE``;
* payload: ``{"op": <same>, "message": {id, room, user_id, user_name, text, created, edited,
  deleted}}``, the row after the change (for ``DELETE`` the tombstone, whose text is ``""``).

Ordering: writes go through one lock, so they are committed and published in the same order and
a room's channel carries its changes in message-id order. The store serialises writes on one
thread anyway, so the lock costs only the in-process publish.

New rooms: the first message of a room that did not exist also publishes ``room-created``
(``{"name", "created"}``) on the public channel ``rooms``, so room lists update for everyone.
With several server processes a room made on two at once may be announced twice: a listener
treats it as a set.

No gap on join: :meth:`ChatService.join` subscribes first, then reads the history, and drops
the ``INSERT`` events the history already holds (see :class:`RoomFeed`). A client of another
transport does the same by hand: subscribe to ``room-{room}``, then ``GET`` the messages,
then ignore ``INSERT`` events whose id is not above the newest id it was given.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable
from dataclasses import asdict, replace
from types import TracebackType
from typing import Any, Final, cast

from ..core.channels import ROOM_CREATED_EVENT, ROOM_LIST_CHANNEL
from ..core.errors import InvalidChannel, PayloadTooLarge
from ..core.events import Event
from ..hub import Hub, Subscription
from ..store import Change, Message, MessagePage, NotFound, Op, Room, Store
from ..store.base import DEFAULT_PAGE, MAX_ID, validate_room, validate_text, validate_user

log = logging.getLogger("dashboard.chat")

ROOM_CHANNEL_PREFIX: Final = "room-"
#: How many messages :meth:`ChatService.join` hands over before the live ones.
HISTORY_ON_JOIN: Final = 50
OPS: Final[frozenset[str]] = frozenset({"INSERT", "UPDATE", "DELETE"})
# Room for digits the provisional message in the size check may lack (id, float timestamps).
_SIZE_MARGIN = 64


def room_channel(room: str) -> str:
    """The hub channel that carries ``room``'s changes.

    Raises:
        InvalidChannel: for a room name that breaks the channel rules, or is longer than the
            159 characters that leave room for the ``room-`` prefix.
    """
    room = validate_room(room)
    limit = 164 - len(ROOM_CHANNEL_PREFIX)
    if len(room) > limit:
        raise InvalidChannel(f"room name is {len(room)} characters long; the limit is {limit}")
    return ROOM_CHANNEL_PREFIX + room


def message_json(message: Message) -> dict[str, Any]:
    """``message`` as the JSON object used by the REST API and the change events."""
    return asdict(message)


def message_from_json(data: dict[str, Any]) -> Message:
    """The inverse of :func:`message_json`."""
    return Message(**data)


def change_from_event(event: Event) -> Change:
    """Decode a change event published by :class:`ChatService`.

    Raises:
        ValueError: if ``event`` is not one (e.g. something else published on the channel).
    """
    data = event.data
    if event.name not in OPS or not isinstance(data, dict) or data.get("op") != event.name:
        raise ValueError(f"event {event.name!r} on {event.channel} is not a chat change")
    try:
        message = message_from_json(data["message"])
    except (KeyError, TypeError) as exc:
        raise ValueError(f"malformed chat change on {event.channel}: {exc}") from None
    return Change(cast(Op, event.name), message)


class RoomFeed:
    """A room's recent history plus its live changes, with no gap and no duplicate.

    Created by :meth:`ChatService.join`. Show :attr:`history` first, then iterate with
    ``async for change in feed`` to get each later :class:`~dashboard.store.Change`. Treat
    ``UPDATE`` and ``DELETE`` as "replace message ``id``": one may repeat a state the history
    already shows, which is harmless, whereas an ``INSERT`` is never delivered twice.

    The live side is a hub :class:`~dashboard.hub.Subscription`, so it has the same bounded
    queue: a consumer that falls ``queue_size`` events behind is closed with reason
    ``"overflow"`` (see :attr:`closed_reason`) and should join again.

    Attributes:
        room: the room.
        history: the newest messages at the time of joining, oldest first.
        subscription: the underlying hub subscription to ``room-{room}``.
    """

    def __init__(self, room: str, history: MessagePage, subscription: Subscription) -> None:
        self.room = room
        self.history = history
        self.subscription = subscription
        # INSERT events up to this id were committed before the history read, so the history
        # (or an older page of it) already holds them.
        self._seen_up_to = history.messages[-1].id if history.messages else 0

    @property
    def closed_reason(self) -> str | None:
        """Why the live side ended (``"closed"``, ``"overflow"``, ``"shutdown"``), or None."""
        return self.subscription.closed_reason

    def __aiter__(self) -> RoomFeed:
        return self

    async def __anext__(self) -> Change:
        async for event in self.subscription:
            try:
                change = change_from_event(event)
            except ValueError:
                # Anyone holding the publish token could put other events on the channel;
                # they are not row changes, so a chat consumer skips them.
                log.warning("ignoring a non-chat event %r on %s", event.name, event.channel)
                continue
            if change.op == "INSERT":
                if change.message.id <= self._seen_up_to:
                    continue
                self._seen_up_to = change.message.id
            return change
        raise StopAsyncIteration

    def close(self) -> None:
        """Stop receiving live changes. Idempotent."""
        self.subscription.close()

    async def __aenter__(self) -> RoomFeed:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class ChatService:
    """Rooms and messages: every write is committed to ``store``, then published on ``hub``.

    Args:
        store: an open :class:`~dashboard.store.Store` (the caller owns its lifecycle).
        hub: where change events are published, on ``room-{room}`` (see the module docstring).

    Every method raises the store's errors unchanged (``NotFound``, ``Forbidden``,
    ``MessageDeleted``, ``StoreUnavailable``, ``StoreCorrupt``, validation errors), so the
    server maps them to HTTP statuses in one place.

    Usage::

        chat = ChatService(store, hub)
        async with await chat.join("lobby") as feed:
            await chat.post("lobby", "ada", "Ada", "hello")
            async for change in feed: ...
    """

    def __init__(self, store: Store, hub: Hub) -> None:
        self.store = store
        self.hub = hub
        self._write_lock = asyncio.Lock()
        # Rooms known to exist, so that only a room's first message asks the store; None
        # until the first post reads them.
        self._known_rooms: set[str] | None = None

    async def rooms(self) -> list[Room]:
        """Every room, sorted by name."""
        return await self.store.list_rooms()

    async def history(
        self, room: str, *, before: int | None = None, limit: int = DEFAULT_PAGE
    ) -> MessagePage:
        """A page of ``room``'s messages with ``id < before``, oldest first.

        Raises:
            InvalidChannel: for a bad room name; InvalidPaging: for a bad ``before``/``limit``.
        """
        room_channel(room)
        return await self.store.messages(room, before=before, limit=limit)

    async def get(self, id: int, *, room: str | None = None) -> Message:
        """One message by id; with ``room``, a message of another room is not found.

        Raises:
            NotFound: no such message (in ``room``).
        """
        message = await self.store.get_message(id)
        if room is not None and message.room != room:
            # The same answer as an unknown id: a URL cannot probe other rooms' ids.
            raise NotFound(f"no message with id {id} in room {room!r}")
        return message

    async def post(self, room: str, user_id: str, user_name: str, text: str) -> Message:
        """Store a new message in ``room`` (created if needed), then publish its ``INSERT``.

        Returns:
            The committed message.

        Raises:
            PayloadTooLarge: the change event would exceed the hub's payload limit (checked
                before anything is written, so a stored message is always broadcast).
            BackendUnavailable: the hub's backend is known to be down (nothing is written).
        """
        channel = room_channel(room)
        # Validated here too so the size check below only ever sees well-formed fields.
        user_id, user_name = validate_user(user_id), validate_user(user_name, "user_name")
        text = validate_text(text)
        provisional = Message(MAX_ID, room, user_id, user_name, text, time.time(), None, False)
        self._check_size("INSERT", provisional)
        self.hub.check_available()
        new_room = await self._is_new_room(room)
        # Shielded: once the write is submitted it may commit even if our caller goes away, and
        # a committed message must still be published.
        message = await asyncio.shield(
            self._write(channel, "INSERT", self.store.add_message(room, user_id, user_name, text))
        )
        if new_room:
            await self._announce_room(room, message.created)
        return message

    async def edit(self, id: int, user_id: str, text: str, *, room: str | None = None) -> Message:
        """Replace the text of message ``id`` as its author, then publish its ``UPDATE``.

        Args:
            room: when given, a message of another room is not found.

        Raises:
            NotFound, Forbidden, MessageDeleted: as :meth:`Store.edit_message` does.
            PayloadTooLarge, BackendUnavailable: as for :meth:`post`.
        """
        text = validate_text(text)
        current = await self.get(id, room=room)
        # Otherwise the store refuses the edit with the proper error; no event to size.
        if current.user_id == user_id and not current.deleted:
            self._check_size("UPDATE", replace(current, text=text, edited=time.time()))
        channel = room_channel(current.room)
        self.hub.check_available()
        return await asyncio.shield(
            self._write(channel, "UPDATE", self.store.edit_message(id, user_id, text))
        )

    async def delete(self, id: int, user_id: str, *, room: str | None = None) -> Message:
        """Soft-delete message ``id`` as its author, then publish its ``DELETE`` (the tombstone).

        Raises:
            NotFound, Forbidden, MessageDeleted: as :meth:`Store.delete_message` does.
            BackendUnavailable: as for :meth:`post`.
        """
        current = await self.get(id, room=room)
        channel = room_channel(current.room)
        self.hub.check_available()
        return await asyncio.shield(
            self._write(channel, "DELETE", self.store.delete_message(id, user_id))
        )

    async def join(
        self, room: str, *, limit: int = HISTORY_ON_JOIN, queue_size: int | None = None
    ) -> RoomFeed:
        """The newest ``limit`` messages of ``room``, then its live changes, with no gap.

        Args:
            limit: how many messages of history, 1 to 200.
            queue_size: bound of the live queue; the hub's default when ``None``.

        Returns:
            A :class:`RoomFeed`; close it (or use ``async with``) when done.
        """
        channel = room_channel(room)
        # Subscribe before reading: a change committed after the read is then certainly
        # delivered live, and one committed before it is filtered out by the feed.
        subscription = await self.hub.subscribe([channel], queue_size=queue_size)
        try:
            page = await self.store.messages(room, limit=limit)
        except BaseException:
            subscription.close()
            raise
        return RoomFeed(room, page, subscription)

    async def has_room(self, room: str) -> bool:
        """Whether ``room`` exists (a post to a room that does not creates it)."""
        if self._known_rooms is None or room not in self._known_rooms:
            # Read again on a miss: another process may have made the room meanwhile.
            self._known_rooms = {known.name for known in await self.store.list_rooms()}
        return room in self._known_rooms

    async def _is_new_room(self, room: str) -> bool:
        new = not await self.has_room(room)
        assert self._known_rooms is not None  # read by has_room
        self._known_rooms.add(room)
        return new

    async def _announce_room(self, room: str, created: float) -> None:
        try:
            await self.hub.publish(
                ROOM_LIST_CHANNEL, ROOM_CREATED_EVENT, {"name": room, "created": created}
            )
        except Exception:
            # Like a change event (see _write): the room exists, and lists read later show it.
            log.exception("room %r was created; its announcement was not published", room)

    async def _write(self, channel: str, op: Op, write: Awaitable[Message]) -> Message:
        async with self._write_lock:
            message = await write
            payload = {"op": op, "message": message_json(message)}
            try:
                await self.hub.publish(channel, op, payload)
            except Exception:
                # The write is durable and the caller must hear that it succeeded: failing it
                # would invite a retry that stores the message twice. Late joiners and any
                # history read still see it; only live subscribers miss this one event.
                log.exception(
                    "message %d was stored; its %s event was not published", message.id, op
                )
            return message

    def _check_size(self, op: str, message: Message) -> None:
        data = json.dumps(
            {"op": op, "message": message_json(message)},
            separators=(",", ":"),
            ensure_ascii=False,
        )
        size = len(data.encode("utf-8", "surrogatepass")) + _SIZE_MARGIN
        if size > self.hub.max_payload_bytes:
            raise PayloadTooLarge(
                f"the message is too large to broadcast ({size} bytes as JSON; the limit is "
                f"{self.hub.max_payload_bytes}); send a shorter text"
            )
