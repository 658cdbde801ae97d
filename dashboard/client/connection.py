"""One user's live connection to a dashboard server: presence, chat rooms, notifications.

A :class:`UserConnection` is a :class:`~dashboard.client.PusherClient` for everything live
plus a :class:`~dashboard.client.api.DashboardAPI` for history and writes, both as the user
its token names. The served dashboard gives every browser session one (connected to its own
server over loopback), and a notebook makes one with a token from ``dashboard token``: both
run the same code, so the same components work in both places.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import aiohttp
from yarl import URL

from ..core.channels import (
    DASHBOARD_PRESENCE,
    ROOM_CREATED_EVENT,
    ROOM_LIST_CHANNEL,
    room_name_problem,
)
from ..core.errors import InvalidChannel
from ..core.user_tokens import UserIdentity
from .api import DashboardAPI, TokenSource
from .chat import RoomSession
from .inbox import Inbox
from .pusher import PusherClient
from .pusher_channels import PresenceChannel, PusherEvent


class UserConnection:
    """One user's connection to a dashboard server: presence, chat rooms, notifications.

    Args:
        url: the server's base URL, e.g. ``http://127.0.0.1:5006``.
        key: the Pusher app key (``dashboard serve`` prints it).
        token: the user token, or a function returning a fresh one.
        session: an aiohttp session to share; when ``None`` the parts make their own and
            close them in :meth:`aclose`.
        **pusher_options: passed on to :class:`~dashboard.client.PusherClient`
            (``reconnect_delay``, ``max_retries`` ...).

    Usage::

        async with UserConnection("http://127.0.0.1:5006", "dashboard-key", token) as me:
            room = await me.join_room("lobby")
            room.on_change(print)
            await room.post("hello")
            inbox = await me.inbox()
    """

    def __init__(
        self,
        url: str | URL,
        key: str,
        token: TokenSource,
        *,
        session: aiohttp.ClientSession | None = None,
        **pusher_options: Any,
    ) -> None:
        # Without a shared session each part creates its own when first used: building a
        # connection needs no running loop (a notebook cell, a page factory).
        self.api = DashboardAPI(url, token, session=session)
        # The socket's handshake carries the token too: a server with a login requires it.
        self.pusher = PusherClient(
            url,
            key,
            session=session,
            authorizer=self.api.authorizer(),
            headers=self.api.auth_headers,
            **pusher_options,
        )
        #: Who this connection speaks for; known after :meth:`connect`.
        self.user: UserIdentity | None = None
        self._rooms: dict[str, RoomSession] = {}
        self._inbox: Inbox | None = None
        self._closed = False
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None:
        """The event loop that owns this connection's sockets: the one :meth:`connect` first ran
        on (``None`` before). Work on the connection runs there; UI callbacks, which may run on
        another thread (a Jupyter kernel's), schedule it there (:mod:`dashboard.ui.tasks`)."""
        return self._loop

    async def __aenter__(self) -> UserConnection:
        await self.connect()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def connect(self) -> UserIdentity:
        """Ask the server who the token speaks for, and open the socket.

        Raises:
            APIError: the token is refused or the server cannot be reached.
        """
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        if self.user is None:
            self.user = await self.api.identity()
        await self.pusher.connect()
        return self.user

    async def join_presence(self, channel: str = DASHBOARD_PRESENCE) -> PresenceChannel:
        """Subscribe to a presence channel as this user (``presence-dashboard`` by default).

        Raises:
            ValueError: ``channel`` is not a ``presence-`` channel.
        """
        if not channel.startswith("presence-"):
            raise ValueError(f"{channel!r} is not a presence channel")
        subscribed = await self.pusher.subscribe(channel)
        assert isinstance(subscribed, PresenceChannel)  # the client picks it by the prefix
        return subscribed

    async def join_room(self, room: str, *, history: int = 50) -> RoomSession:
        """Enter ``room``: its last ``history`` messages, then live changes, with no gap.

        Joining a room one is already in returns the same :class:`RoomSession`.

        Raises:
            InvalidChannel: the room name has characters a channel name may not hold, or is
                longer than the 150 characters left after ``presence-room-``.
            APIError: the history cannot be read (e.g. a bad room name).
            PusherError: a subscription was refused.
        """
        if room in self._rooms:
            return self._rooms[room]
        problem = room_name_problem(room)
        if problem is not None:  # a clear error before any request
            raise InvalidChannel(f"invalid room name {room!r}: {problem}")
        await self.connect()
        session = RoomSession(self, room)
        await session._start(history)
        self._rooms[room] = session
        return session

    async def on_room_created(self, callback: Callable[[str], Any]) -> Callable[[], None]:
        """Call ``callback(room_name)`` whenever a room is created on the server (its first
        message; see :mod:`dashboard.chat.service`), from now on.

        Returns:
            A function that stops the calls.

        Raises:
            PusherError: the subscription was refused.
        """
        channel = await self.pusher.subscribe(ROOM_LIST_CHANNEL)

        def created(event: PusherEvent) -> None:
            name = event.data.get("name") if isinstance(event.data, dict) else None
            if isinstance(name, str):
                callback(name)

        return channel.bind(ROOM_CREATED_EVENT, created)

    async def inbox(self) -> Inbox:
        """This user's notifications, started (stored ones first, then live ones).

        Raises:
            APIError: the inbox cannot be read (e.g. the server keeps no store).
            PusherError: a subscription was refused.
        """
        if self._inbox is None:
            self._inbox = Inbox(self)
        await self._inbox.start()
        return self._inbox

    async def aclose(self) -> None:
        """Leave every room and channel and close the connection. Idempotent."""
        if self._closed:
            return
        self._closed = True
        for session in list(self._rooms.values()):
            session._stop()
        self._rooms.clear()
        await self.pusher.aclose()
        await self.api.aclose()

    def _forget(self, session: RoomSession) -> None:
        if self._rooms.get(session.room) is session:
            del self._rooms[session.room]
