"""Channels of a :class:`~dashboard.client.pusher.PusherClient`, their events and their errors.

The client side of the Pusher Channels protocol 7 frames lives here too, as pure functions
(:func:`parse_server_frame` and the ``*_frame`` builders): the server side of the same protocol
is :mod:`dashboard.core.pusher_frames`, whose ``ping()`` / ``pong()`` the client reuses since
those two frames are the same in both directions.

Events are delivered as :class:`PusherEvent` rather than :class:`dashboard.core.events.Event`:
a Pusher connection carries no offsets, epochs or publish times, and inventing them would make
a reconnecting client look like it resumed where it did not.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..core.channels import ChannelKind, channel_kind
from ..core.errors import DashboardError
from ..core.pusher_frames import CLIENT_EVENT_PREFIX, parse_channel_data
from ..core.pusher_signatures import sign_channel, sign_user

if TYPE_CHECKING:
    from .pusher import PusherClient

log = logging.getLogger("dashboard.client.pusher")

#: Events a channel keeps for its iterator, by default; the oldest are dropped beyond it.
DEFAULT_MAX_QUEUE = 1000

#: ``authorizer(socket_id, channel_name, channel_data) -> {"auth", "channel_data"?}``.
Authorizer = Callable[[str, str, Any], Awaitable[dict[str, Any]]]
#: ``user_authenticator(socket_id, user_data) -> {"auth", "user_data"?}``.
UserAuthenticator = Callable[[str, str], Awaitable[dict[str, Any]]]
EventCallback = Callable[["PusherEvent"], None]
MembersCallback = Callable[[dict[str, Any]], None]


class PusherError(DashboardError):
    """Base class of the Pusher client's errors."""


class PusherClosedError(PusherError):
    """The connection is closed for good: :meth:`PusherClient.aclose`, or a 4000-4099 close.

    Attributes:
        code: the close code that ended it, if the server sent one.
    """

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


class SubscriptionError(PusherError):
    """A subscription was refused (``pusher:subscription_error``) or could not be authorised.

    Attributes:
        channel: the channel name.
        status: the HTTP-like status the server gave (401 bad signature, 403 limit...), or
            ``None`` when the authorizer itself failed.
        error_type: the server's ``type`` (``"AuthError"``, ``"LimitReached"``...).
    """

    def __init__(
        self, channel: str, message: str, status: int | None = None, error_type: str | None = None
    ) -> None:
        super().__init__(f"{channel}: {message}")
        self.channel = channel
        self.status = status
        self.error_type = error_type


class SigninError(PusherError):
    """``pusher:signin`` was rejected or the user authenticator failed."""


@dataclass(frozen=True, slots=True)
class PusherEvent:
    """One event received on a channel.

    Attributes:
        channel: the channel name.
        event: the event name (``client-...`` for client events; ``pusher:member_added`` etc.
            for the presence notices passed to :meth:`Channel.bind` callbacks).
        data: the payload: the JSON-decoded ``data`` string when it parses, else the string
            itself, exactly as pusher-js decodes it.
        user_id: the sender of a client event on a presence channel, else ``None``.
    """

    channel: str
    event: str
    data: Any = None
    user_id: str | None = None


# --- frames, sans I/O ---------------------------------------------------------------------


def decode_data(data: Any) -> Any:
    """A server frame's ``data``: JSON-decoded when it is a string that parses, else as is."""
    if isinstance(data, str):
        with contextlib.suppress(ValueError, RecursionError):
            return json.loads(data)
    return data


def parse_server_frame(text: str) -> dict[str, Any]:
    """Parse one server frame into ``{"event", "channel", "data", "user_id"}``.

    ``data`` goes through :func:`decode_data` (the server double-encodes it).

    Raises:
        ValueError: when the text is not a JSON object with a string ``event``.
    """
    frame = json.loads(text)
    if not isinstance(frame, dict) or not isinstance(frame.get("event"), str):
        raise ValueError("a frame must be a JSON object with a string event")
    user_id = frame.get("user_id")
    return {
        "event": frame["event"],
        "channel": frame.get("channel") if isinstance(frame.get("channel"), str) else None,
        "data": decode_data(frame.get("data")),
        "user_id": None if user_id is None else str(user_id),
    }


def _encode(frame: dict[str, Any]) -> str:
    return json.dumps(frame, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def subscribe_frame(channel: str, auth: str | None = None, channel_data: str | None = None) -> str:
    """``pusher:subscribe``, with ``auth`` and ``channel_data`` when given."""
    data: dict[str, Any] = {"channel": channel}
    if auth is not None:
        data["auth"] = auth
    if channel_data is not None:
        data["channel_data"] = channel_data
    return _encode({"event": "pusher:subscribe", "data": data})


def unsubscribe_frame(channel: str) -> str:
    """``pusher:unsubscribe``."""
    return _encode({"event": "pusher:unsubscribe", "data": {"channel": channel}})


def client_event_frame(channel: str, event: str, data: Any) -> str:
    """A client event; ``data`` is sent as plain JSON, as pusher-js does."""
    return _encode({"event": event, "channel": channel, "data": data})


def signin_frame(auth: str, user_data: str) -> str:
    """``pusher:signin``."""
    return _encode({"event": "pusher:signin", "data": {"auth": auth, "user_data": user_data}})


# --- authorisation -------------------------------------------------------------------------


def _as_json_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def local_authorizer(
    key: str, secret: str, user_id: str | int | None = None, user_info: Any = None
) -> Authorizer:
    """An authorizer that signs subscriptions itself with the app secret.

    For tests and notebooks that hold the secret anyway; a browser-facing app asks its own
    server instead (an authorizer that POSTs to an auth endpoint).

    Args:
        key: the app key.
        secret: the app secret.
        user_id: the presence user id, used when :meth:`PusherClient.subscribe` gets no
            ``channel_data``.
        user_info: the presence user info sent with ``user_id``.

    Returns:
        ``async authorizer(socket_id, channel_name, channel_data)``.
    """

    async def authorize(socket_id: str, channel: str, channel_data: Any) -> dict[str, Any]:
        if channel_kind(channel) is not ChannelKind.PRESENCE:
            return {"auth": sign_channel(key, secret, socket_id, channel)}
        if channel_data is None:
            if user_id is None:
                raise ValueError(f"{channel} needs channel_data or the authorizer's user_id")
            member: dict[str, Any] = {"user_id": user_id}
            if user_info is not None:
                member["user_info"] = user_info
            channel_data = member
        text = _as_json_text(channel_data)
        return {"auth": sign_channel(key, secret, socket_id, channel, text), "channel_data": text}

    return authorize


def local_user_authenticator(key: str, secret: str) -> UserAuthenticator:
    """A user authenticator that signs ``pusher:signin`` itself with the app secret."""

    async def authenticate(socket_id: str, user_data: str) -> dict[str, Any]:
        return {"auth": sign_user(key, secret, socket_id, user_data), "user_data": user_data}

    return authenticate


# --- channels ------------------------------------------------------------------------------


class Channel:
    """One subscribed channel: iterate its events, or :meth:`bind` callbacks to them.

    ``async for event in channel`` yields :class:`PusherEvent` objects until the channel is
    unsubscribed or the client closes. The iterator reads from a queue of ``max_queue``
    events; when it is full the OLDEST event is dropped and counted in :attr:`dropped`, so a
    slow consumer (or one that only uses :meth:`bind`) sees the latest events and never blocks
    the connection. Callbacks run synchronously on receipt and never miss an event.

    The client resubscribes the channel after every reconnect; events sent while it was
    disconnected are lost, as with any Pusher client.
    """

    def __init__(self, client: PusherClient, name: str, channel_data: Any, max_queue: int):
        self.name = name
        #: Kind of channel, from its name.
        self.kind = channel_kind(name)
        #: Events dropped from the full iterator queue.
        self.dropped = 0
        #: Why the channel ended, if it did not end by :meth:`unsubscribe` or ``aclose``.
        self.error: PusherError | None = None
        self._client = client
        self._channel_data = channel_data
        self._queue: deque[PusherEvent] = deque(maxlen=max_queue)
        self._ready = asyncio.Event()
        self._ended = False
        self._subscribed = False
        self._waiters: list[asyncio.Future[None]] = []
        self._bindings: dict[str, list[EventCallback]] = {}

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} subscribed={self._subscribed}>"

    @property
    def subscribed(self) -> bool:
        """Whether the current connection's subscription succeeded."""
        return self._subscribed

    def bind(self, event_name: str, callback: EventCallback) -> Callable[[], None]:
        """Call ``callback(event)`` for every event named ``event_name`` on this channel.

        Presence channels also report ``pusher:subscription_succeeded``,
        ``pusher:member_added`` and ``pusher:member_removed`` this way, as pusher-js does.

        Returns:
            A function that unbinds the callback.
        """
        callbacks = self._bindings.setdefault(event_name, [])
        callbacks.append(callback)
        return lambda: callbacks.remove(callback) if callback in callbacks else None

    async def trigger(self, event_name: str, data: Any = None) -> None:
        """Send a client event to the channel's other subscribers (never back to us).

        Raises:
            ValueError: on a public channel, or when ``event_name`` lacks the ``client-``
                prefix.
            PusherError: while the channel is not subscribed (e.g. reconnecting).
        """
        if self.kind is ChannelKind.PUBLIC:
            raise ValueError(f"client events need a private or presence channel, not {self.name}")
        if not event_name.startswith(CLIENT_EVENT_PREFIX) or event_name == CLIENT_EVENT_PREFIX:
            raise ValueError(f"client event names start with {CLIENT_EVENT_PREFIX!r}")
        if not self._subscribed:
            raise PusherError(f"{self.name} is not subscribed")
        await self._client._send(client_event_frame(self.name, event_name, data))

    async def unsubscribe(self) -> None:
        """Leave the channel; its iteration ends once the queued events are consumed."""
        await self._client._unsubscribe(self)

    def __aiter__(self) -> AsyncIterator[PusherEvent]:
        return self

    async def __anext__(self) -> PusherEvent:
        while not self._queue:
            if self._ended:
                raise StopAsyncIteration
            self._ready.clear()
            await self._ready.wait()
        return self._queue.popleft()

    # -- driven by the client ------------------------------------------------------------

    async def _wait_subscribed(self) -> None:
        if self._subscribed:
            return
        if self._ended:
            raise self.error or PusherClosedError(f"{self.name} is closed")
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        finally:
            with contextlib.suppress(ValueError):
                self._waiters.remove(waiter)

    def _wake(self, error: BaseException | None = None) -> None:
        for waiter in self._waiters:
            if not waiter.done():
                if error is None:
                    waiter.set_result(None)
                else:
                    waiter.set_exception(error)

    def _emit(self, event: PusherEvent, queue: bool = True) -> None:
        for callback in list(self._bindings.get(event.event, ())):
            try:
                callback(event)
            except Exception:  # one broken callback must not kill the connection
                log.exception("callback for %s on %s failed", event.event, self.name)
        if queue and not self._ended:
            if len(self._queue) == self._queue.maxlen:
                self.dropped += 1
            self._queue.append(event)
            self._ready.set()

    def _on_succeeded(self, data: Any) -> None:
        self._subscribed = True
        self._emit(PusherEvent(self.name, "pusher:subscription_succeeded", data), queue=False)
        self._wake()

    def _on_internal(self, event: str, data: Any) -> None:
        """A ``pusher_internal:`` event other than subscription_succeeded."""

    def _on_disconnect(self) -> None:
        self._subscribed = False

    def _end(self, error: PusherError | None = None) -> None:
        if self._ended:
            return
        self._ended = True
        self._subscribed = False
        self.error = error
        self._ready.set()
        self._wake(error or PusherClosedError(f"{self.name} was closed before it subscribed"))


class PresenceChannel(Channel):
    """A ``presence-`` channel, which also knows who is on it.

    :attr:`members` is replaced by every ``subscription_succeeded`` (so after a reconnect it
    is re-synced from the server; until then it keeps the last known set) and updated by
    ``member_added`` / ``member_removed``.
    """

    def __init__(self, client: PusherClient, name: str, channel_data: Any, max_queue: int):
        super().__init__(client, name, channel_data, max_queue)
        #: ``user_id -> user_info`` of everyone on the channel, us included.
        self.members: dict[str, Any] = {}
        #: Our own user id, from the channel_data we subscribed with.
        self.me: str | None = None
        self._member_watchers: list[MembersCallback] = []

    def on_members_change(self, callback: MembersCallback) -> Callable[[], None]:
        """Call ``callback(members)`` (a copy) whenever the member set changes.

        Returns:
            A function that stops watching.
        """
        self._member_watchers.append(callback)
        watchers = self._member_watchers
        return lambda: watchers.remove(callback) if callback in watchers else None

    def _set_me(self, channel_data: str | None) -> None:
        with contextlib.suppress(DashboardError):
            self.me = parse_channel_data(channel_data)[0]

    def _members_changed(self) -> None:
        for callback in list(self._member_watchers):
            try:
                callback(dict(self.members))
            except Exception:
                log.exception("members callback on %s failed", self.name)

    def _on_succeeded(self, data: Any) -> None:
        presence = data.get("presence") if isinstance(data, dict) else None
        members: dict[str, Any] = {}
        if isinstance(presence, dict):
            raw_hash, raw_ids = presence.get("hash"), presence.get("ids")
            hash_: dict[str, Any] = raw_hash if isinstance(raw_hash, dict) else {}
            ids: list[Any] = raw_ids if isinstance(raw_ids, list) else list(hash_)
            members = {str(user_id): hash_.get(str(user_id)) for user_id in ids}
        changed = members != self.members
        self.members = members
        super()._on_succeeded(data)
        if changed:
            self._members_changed()

    def _on_internal(self, event: str, data: Any) -> None:
        if not isinstance(data, dict) or data.get("user_id") is None:
            return
        user_id = str(data["user_id"])
        if event == "pusher_internal:member_added":
            self.members[user_id] = data.get("user_info")
            name = "pusher:member_added"
        elif event == "pusher_internal:member_removed":
            self.members.pop(user_id, None)
            name = "pusher:member_removed"
        else:
            return
        self._emit(PusherEvent(self.name, name, data), queue=False)
        self._members_changed()
