"""A joined chat room as seen by one user: recent history, live changes, members, typing.

:class:`RoomSession` objects come from :meth:`dashboard.client.UserConnection.join_room`.
Channels a room uses (see :mod:`dashboard.chat.service` for the change events):

* ``room-{room}``: ``INSERT`` / ``UPDATE`` / ``DELETE`` row changes, published by the server
  after each commit;
* ``presence-room-{room}``: who is in the room, and the ``client-typing`` client event
  ``{"typing": true|false}``. The typist's name is taken from the presence roster, which the
  server signed, never from the event.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

from ..core.channels import ROOM_PRESENCE_PREFIX
from ..store.base import Change, Message
from .listeners import Listeners
from .pusher_channels import Channel, PresenceChannel, PusherError, PusherEvent

if TYPE_CHECKING:
    from .connection import UserConnection

log = logging.getLogger("dashboard.client.chat")

TYPING_EVENT: Final = "client-typing"
#: Messages a room keeps in memory (and shows); older ones stay in the store.
MAX_MESSAGES: Final = 200
#: Least seconds between two ``typing: true`` signals while someone keeps typing. Well under
#: the receivers' 3 s timeout, and far below the server's 10 client events per second.
TYPING_SIGNAL_INTERVAL: Final = 1.0

ChangeListener = Callable[[Change], None]
#: ``listener(kind, user_id, name)`` with kind ``"typing"``, ``"stopped"``, ``"joined"`` or
#: ``"left"``.
ActivityListener = Callable[[str, str, str], None]


class RoomSession:
    """A joined room: its recent messages, live changes, members and who is typing.

    Created by :meth:`UserConnection.join_room`. :attr:`messages` holds the newest
    :data:`MAX_MESSAGES` messages by id, updated in place by every change; listeners hear of
    each change (:meth:`on_change`) and of members joining, leaving and typing
    (:meth:`on_activity`). After a reconnect the recent history is fetched again, so changes
    made while the socket was down are not lost.
    """

    def __init__(self, connection: UserConnection, room: str) -> None:
        self.connection = connection
        self.room = room
        #: id -> message, oldest first.
        self.messages: dict[int, Message] = {}
        self.presence: PresenceChannel | None = None
        self._changes: Channel | None = None
        self._change_listeners: Listeners[ChangeListener] = Listeners()
        self._activity_listeners: Listeners[ActivityListener] = Listeners()
        self._buffer: list[Change] | None = []  # changes that arrive before the history
        self._unbind: list[Callable[[], None]] = []
        self._last_typing_signal = -float("inf")
        # Display names of the room's members; kept past member_removed, which names nobody.
        self._names: dict[str, str] = {}
        self._resync: asyncio.Task[None] | None = None
        self._left = False

    # -- listening -----------------------------------------------------------------------

    def on_change(self, listener: ChangeListener) -> Callable[[], None]:
        """Call ``listener(change)`` after each change is applied to :attr:`messages`."""
        return self._change_listeners.add(listener)

    def on_activity(self, listener: ActivityListener) -> Callable[[], None]:
        """Call ``listener(kind, user_id, name)`` for ``joined``, ``left``, ``typing`` and
        ``stopped`` (typing ended by a send or an explicit stop)."""
        return self._activity_listeners.add(listener)

    @property
    def members(self) -> dict[str, Any]:
        """``user_id -> user_info`` of everyone in the room now, us included."""
        return dict(self.presence.members) if self.presence is not None else {}

    def member_name(self, user_id: str) -> str:
        """The display name the server signed for ``user_id``, else the id itself."""
        return self._names.get(user_id, user_id)

    # -- acting --------------------------------------------------------------------------

    async def post(self, text: str) -> Message:
        """Send a message; it is stored before anyone receives it.

        Raises:
            APIError: refused (empty or too long text, storage failure ...).
        """
        message = await self.connection.api.post(self.room, text)
        await self.typing(False)
        return message

    async def edit(self, id: int, text: str) -> Message:
        """Change the text of one of our messages."""
        return await self.connection.api.edit(self.room, id, text)

    async def delete(self, id: int) -> Message:
        """Delete one of our messages."""
        return await self.connection.api.delete(self.room, id)

    async def typing(self, active: bool = True) -> None:
        """Tell the room we are typing (throttled) or have stopped. Never raises: typing
        signals are best effort, and a dropped one only expires a little early."""
        presence = self.presence
        if presence is None or not presence.subscribed:
            return
        now = time.monotonic()
        if active:
            if now - self._last_typing_signal < TYPING_SIGNAL_INTERVAL:
                return
            self._last_typing_signal = now
        elif self._last_typing_signal == -float("inf"):
            return  # never said we were typing
        else:
            self._last_typing_signal = -float("inf")
        with contextlib.suppress(PusherError):
            await presence.trigger(TYPING_EVENT, {"typing": active})

    async def leave(self) -> None:
        """Stop following the room and leave its presence channel."""
        channels = [self._changes, self.presence]
        self._stop()
        self.connection._forget(self)
        for channel in channels:
            if channel is not None:
                with contextlib.suppress(PusherError):
                    await channel.unsubscribe()

    # -- internals -----------------------------------------------------------------------

    async def _start(self, history: int) -> None:
        pusher = self.connection.pusher
        # Subscribe before reading the history: a change committed after the read then
        # certainly arrives live, and one committed before it is dropped by _apply.
        self._changes = await pusher.subscribe(f"room-{self.room}")
        for op in ("INSERT", "UPDATE", "DELETE"):
            self._unbind.append(self._changes.bind(op, self._on_change_event))
        self._unbind.append(
            self._changes.bind("pusher:subscription_succeeded", self._on_resubscribed)
        )
        try:
            presence = await pusher.subscribe(ROOM_PRESENCE_PREFIX + self.room)
        except BaseException:
            self._stop()
            await self._changes.unsubscribe()
            raise
        assert isinstance(presence, PresenceChannel)
        self.presence = presence
        self._remember_names(presence.members)
        self._unbind += [
            presence.on_members_change(self._remember_names),
            presence.bind(TYPING_EVENT, self._on_typing_event),
            presence.bind("pusher:member_added", self._on_member("joined")),
            presence.bind("pusher:member_removed", self._on_member("left")),
        ]
        self._history_limit = history
        await self._load_history()

    async def _load_history(self) -> None:
        page = await self.connection.api.messages(self.room, limit=self._history_limit)
        for message in page.messages:
            self.messages[message.id] = message
        self._trim()
        buffered, self._buffer = self._buffer or [], None
        for change in buffered:
            self._apply(change)

    def _on_change_event(self, event: PusherEvent) -> None:
        data = event.data
        try:
            change = Change(event.event, Message(**data["message"]))  # type: ignore[arg-type]
        except (KeyError, TypeError):
            log.warning("ignoring a malformed %s event on room-%s", event.event, self.room)
            return
        if self._buffer is not None:
            self._buffer.append(change)
        else:
            self._apply(change)

    def _apply(self, change: Change) -> None:
        message = change.message
        newest = max(self.messages, default=0)
        if change.op == "INSERT" and message.id <= newest and message.id in self.messages:
            return  # the history already had it
        if change.op != "INSERT" and message.id not in self.messages and message.id < newest:
            return  # a change to a message too old to be shown
        self.messages[message.id] = message
        if change.op == "INSERT" and message.id < newest:
            self.messages = dict(sorted(self.messages.items()))
        self._trim()
        if change.op == "INSERT" and not self._is_me(message.user_id):
            self._emit_activity("stopped", message.user_id, message.user_name)
        self._change_listeners.emit(change)

    def _trim(self) -> None:
        while len(self.messages) > MAX_MESSAGES:
            del self.messages[next(iter(self.messages))]

    def _on_resubscribed(self, _event: PusherEvent) -> None:
        # The first subscription is covered by _start; a later one follows a reconnect,
        # during which changes may have been missed: read the recent history again.
        if self._buffer is not None or self._left:
            return
        if self._resync is None or self._resync.done():
            self._resync = asyncio.get_running_loop().create_task(self._refresh())

    async def _refresh(self) -> None:
        try:
            page = await self.connection.api.messages(self.room, limit=self._history_limit)
        except Exception as exc:
            log.warning("could not refresh room %s after a reconnect: %s", self.room, exc)
            return
        for message in page.messages:
            known = self.messages.get(message.id)
            if known != message:
                self._apply(Change("INSERT" if known is None else "UPDATE", message))

    def _on_typing_event(self, event: PusherEvent) -> None:
        # The server never echoes our own events, but our other tabs are another socket.
        if event.user_id is None or self._is_me(event.user_id):
            return
        typing = not (isinstance(event.data, dict) and event.data.get("typing") is False)
        kind = "typing" if typing else "stopped"
        self._emit_activity(kind, event.user_id, self.member_name(event.user_id))

    def _remember_names(self, members: dict[str, Any]) -> None:
        for user_id, info in members.items():
            name = info.get("name") if isinstance(info, dict) else None
            self._names[user_id] = name if isinstance(name, str) else user_id

    def _on_member(self, kind: str) -> Callable[[PusherEvent], None]:
        def notify(event: PusherEvent) -> None:
            data = event.data if isinstance(event.data, dict) else {}
            user_id = str(data.get("user_id", ""))
            if kind == "joined":
                self._remember_names({user_id: data.get("user_info")})
                name = self.member_name(user_id)
            else:
                name = self._names.pop(user_id, user_id)
            self._emit_activity(kind, user_id, name)

        return notify

    def _is_me(self, user_id: str) -> bool:
        me = self.connection.user
        return me is not None and user_id == me.user_id

    def _emit_activity(self, kind: str, user_id: str, name: str) -> None:
        self._activity_listeners.emit(kind, user_id, name)

    def _stop(self) -> None:
        self._left = True
        for unbind in self._unbind:
            unbind()
        self._unbind.clear()
        if self._resync is not None:
            self._resync.cancel()
