"""``/app/{key}``: Pusher Channels protocol 7 over a WebSocket, so pusher-js clients connect.

The handler only moves frames: parsing and building them is :mod:`dashboard.core.pusher_frames`,
signatures :mod:`dashboard.core.pusher_signatures`, presence :mod:`dashboard.hub.presence` (this
process' rosters, or a cluster's in Redis), fan-out the hub. A connection holds ONE hub
subscription whose channels follow the client's ``pusher:subscribe`` / ``pusher:unsubscribe``
(:meth:`Hub.add_channel`); client events go through the hub too, tagged with the sender's socket
id so that the sender is skipped.

Bounds, and what happens when they are hit:

* hub events wait in the subscription's bounded queue while a write is pending; when it is full
  the connection is closed with 4100 (over capacity: pusher-js reconnects after a back-off);
* other frames (pongs, errors, presence notices) are written at once; more than
  ``PusherApp.max_pending_writes`` unfinished writes also close it with 4100;
* a frame over ``max_message_bytes`` gets a ``pusher:error`` 4301 and the connection stays;
  over four times that Tornado closes it (1009) without reading it all;
* client events: ``client_event_rate`` per second, the excess answered with 4301;
* a client silent for ``activity_timeout`` is pinged and closed with 4201 if it stays silent
  for ``pong_timeout``;
* at most :attr:`~.limits.Limits.max_channels` channels per connection; a subscription beyond
  that gets a ``pusher:subscription_error`` (``LimitReached``, 400) that says the cap;
* an unmasked frame closes the connection with 1002, a text frame that is not UTF-8 with
  1007 (RFC 6455, :mod:`.websocket_protocol`).

With a login configured (:mod:`.access`) the handshake itself needs a logged-in user (Panel's
cookie) or a bearer user token, else it is refused with a 401 before the upgrade.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import secrets
import time
from typing import Any

import tornado.iostream
import tornado.websocket
from tornado.websocket import _WebSocketParams

from ..core.channels import ChannelKind, channel_kind, server_only
from ..core.errors import (
    BackendUnavailable,
    DashboardError,
    InvalidChannelData,
    ValidationError,
)
from ..core.events import Event
from ..core.origins import matches_allowlist
from ..core.pusher_frames import (
    ProtocolError,
    PusherErrorCode,
    PusherFrame,
    connection_established,
    error,
    hub_event_ws_frame,
    is_client_event,
    parse_channel_data,
    parse_client_frame,
    ping,
    pong,
    server_to_user_id,
    signin_success,
    subscription_error,
    subscription_succeeded,
)
from ..core.pusher_signatures import verify_channel_auth, verify_user_auth
from ..core.ratelimit import TokenBucket
from ..hub import Subscription
from ..hub.subscription import OVERFLOW, RESYNC, SHUTDOWN
from .access import Access
from .base import (
    MalformedOriginIsForeign,
    ServerContext,
    TornadoRequestView,
    check_host,
    log,
    write_json_error,
)
from .pusher_presence import PresenceMember
from .websocket_protocol import StrictWebSocketProtocol

#: Protocol versions this server speaks (the ``protocol`` query parameter).
SUPPORTED_PROTOCOLS = frozenset({7})
#: Hub events written per chunk at most, once a connection has fallen behind.
BATCH_LIMIT = 256

# The sequence makes ids unique in this process; the random part makes them unguessable.
_SEQUENCE = itertools.count(1)


def new_socket_id() -> str:
    """A fresh ``"<int>.<int>"`` socket id."""
    return f"{next(_SEQUENCE)}.{secrets.randbelow(10**12)}"


class PusherSocketHandler(
    PresenceMember, MalformedOriginIsForeign, tornado.websocket.WebSocketHandler
):
    """One Pusher client connection."""

    ctx: ServerContext
    socket_id = ""
    subscription: Subscription | None = None
    _closed = False
    _timer: asyncio.TimerHandle | None = None
    _drainer: asyncio.Task[None] | None = None
    _pending_writes = 0
    _last_write: asyncio.Future[None] | None = None

    def initialize(self, ctx: ServerContext) -> None:
        self.ctx = ctx
        self.channels: set[str] = set()
        self.user_id: str | None = None
        self.init_presence()

    def check_origin(self, origin: str) -> bool:
        # Tornado calls this only for a browser's cross-origin handshake (no Origin header, or
        # one naming the Host, never gets here) and answers 403 when it returns False.
        if matches_allowlist(origin, self.ctx.allowed_origins):
            return True
        log.warning("refusing pusher socket from origin %r (not in the allowlist)", origin)
        return False

    def prepare(self) -> None:
        # Before the upgrade, so a refusal is a plain 401 with a JSON body.
        check_host(self, self.ctx)
        policy = self.ctx.policy
        if policy.login:
            view = TornadoRequestView(self, self.ctx)
            policy.admit(policy.authenticate(view), Access.OPEN)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        write_json_error(self, status_code, **kwargs)

    @property
    def max_message_size(self) -> int:
        return 4 * self.ctx.app.max_message_bytes

    def get_websocket_protocol(self) -> StrictWebSocketProtocol | None:
        # Tornado's own method (6.6), with the strict protocol in place of WebSocketProtocol13.
        if self.request.headers.get("Sec-WebSocket-Version") != "13":
            return None
        params = _WebSocketParams(
            ping_interval=self.ping_interval,
            ping_timeout=self.ping_timeout,
            max_message_size=self.max_message_size,
            compression_options=self.get_compression_options(),
        )
        return StrictWebSocketProtocol(self, False, params)

    # -- connection lifecycle ----------------------------------------------------------

    def open(self, *args: str, **kwargs: str) -> None:
        app = self.ctx.app
        refusal = self._refusal(args[0] if args else "")
        if refusal is not None:
            code, message = refusal
            self._send(error(message, code))
            self.close(code, message)
            self._closed = True
            return
        socket_id = new_socket_id()
        while socket_id in self.ctx.pusher_sockets:  # paranoia: ids must never be shared
            socket_id = new_socket_id()
        self.socket_id = socket_id
        self.ctx.pusher_sockets[socket_id] = self
        burst = max(1, int(app.client_event_rate))
        self.bucket = TokenBucket(app.client_event_rate, burst)
        self._last_seen = time.monotonic()
        self._ping_sent_at: float | None = None
        self.set_nodelay(True)
        self._send(connection_established(socket_id, app.advertised_activity_timeout))
        self._schedule_check(app.activity_timeout)

    def _refusal(self, key: str) -> tuple[int, str] | None:
        if key != self.ctx.app.key:
            return PusherErrorCode.APP_DOES_NOT_EXIST, f"no app with key {key!r}"
        protocol = self.get_query_argument("protocol", None)
        if not protocol:
            return PusherErrorCode.NO_PROTOCOL_VERSION, "no protocol version given"
        if not protocol.isascii() or not protocol.isdigit():
            return PusherErrorCode.INVALID_VERSION_FORMAT, f"invalid protocol {protocol[:20]!r}"
        # len() first: int() refuses (and slowly converts) thousands of digits.
        if len(protocol) > 3 or int(protocol) not in SUPPORTED_PROTOCOLS:
            return PusherErrorCode.UNSUPPORTED_PROTOCOL_VERSION, (
                f"unsupported protocol version {protocol[:20]}; this server speaks 7"
            )
        return None

    def on_close(self) -> None:
        self._cleanup()

    def drop(self, code: int, reason: str) -> None:
        """Leave every channel now, then close with ``code`` (the peer may never answer)."""
        self._cleanup()
        self.close(code, reason)

    def _cleanup(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
        if self.subscription is not None:
            self.subscription.close()
        self.ctx.pusher_sockets.pop(self.socket_id, None)
        for channel in self.channels:
            self._unregister(channel)
        self.channels.clear()
        self.leave_rosters()

    # -- activity ----------------------------------------------------------------------

    def _schedule_check(self, delay: float) -> None:
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(max(delay, 0.001), self._check_activity)

    def _check_activity(self) -> None:
        if self._closed:
            return
        app, now = self.ctx.app, time.monotonic()
        if self._ping_sent_at is not None:
            waited = now - self._ping_sent_at
            if waited >= app.pong_timeout:
                log.info("pusher socket %s did not answer a ping", self.socket_id)
                self.drop(PusherErrorCode.PONG_NOT_RECEIVED, "pong not received")
                return
            self._schedule_check(app.pong_timeout - waited)
            return
        idle = now - self._last_seen
        if idle >= app.activity_timeout:
            self._send(ping())
            self._ping_sent_at = now
            self._schedule_check(app.pong_timeout)
        else:
            self._schedule_check(app.activity_timeout - idle)

    def _seen(self) -> None:
        self._last_seen = time.monotonic()
        self._ping_sent_at = None

    def on_pong(self, data: bytes) -> None:
        self._seen()  # a WebSocket-level pong is a sign of life too

    # -- frames from the client --------------------------------------------------------

    async def on_message(self, message: str | bytes) -> None:
        if self._closed:
            return
        self._seen()
        if isinstance(message, bytes):
            self._send(error("binary frames are not supported"))
            return
        try:
            frame = parse_client_frame(message, self.ctx.app.max_message_bytes)
        except ProtocolError as exc:
            self._send(error(exc.message, exc.code))
            return
        event = frame.event
        if event == "pusher:ping":
            self._send(pong())
        elif event == "pusher:pong":
            pass
        elif event == "pusher:subscribe":
            await self._subscribe(frame)
        elif event == "pusher:unsubscribe":
            self._unsubscribe(frame.channel or "")
        elif event == "pusher:signin":
            self._signin(frame)
        elif is_client_event(event):
            await self._client_event(frame)
        else:
            self._send(error(f"unknown event {event!r}"))

    async def _subscribe(self, frame: PusherFrame) -> None:
        app = self.ctx.app
        channel, data = frame.channel or "", frame.data
        cap = self.ctx.limits.max_channels
        if channel not in self.channels and len(self.channels) >= cap:
            self._send(
                subscription_error(
                    channel, 400, f"at most {cap} channels per connection", "LimitReached"
                )
            )
            return
        owner = server_to_user_id(channel)
        if owner is not None:
            self._subscribe_server_to_user(channel, owner)
            return
        kind = channel_kind(channel)
        user: tuple[str, Any] | None = None
        if kind is not ChannelKind.PUBLIC:
            channel_data = data.get("channel_data") if kind is ChannelKind.PRESENCE else None
            if not verify_channel_auth(
                app.key, app.secret, self.socket_id, channel, data.get("auth"), channel_data
            ):
                self._send(subscription_error(channel, 401, f"invalid signature for {channel}"))
                return
            if kind is ChannelKind.PRESENCE:
                try:
                    user = parse_channel_data(channel_data)
                except InvalidChannelData as exc:
                    self._send(subscription_error(channel, 400, str(exc)))
                    return
        try:
            await self._hub_add(channel)
        except BackendUnavailable:
            # Redis is down. A subscription_error would be final for the channel (pusher-js
            # never retries it); a 41xx close has the client back after a back-off, and it
            # subscribes again then.
            self.drop(PusherErrorCode.OVER_CAPACITY, "the hub's backend is down; reconnect later")
            return
        except (DashboardError, RuntimeError) as exc:  # a hub shutting down, a bad name
            self._send(subscription_error(channel, 500, str(exc), "ServerError"))
            return
        if self._closed:
            return  # the client left while the hub was adding the channel
        if user is None:
            self.channels.add(channel)
            self.ctx.pusher_channels.setdefault(channel, set()).add(self)
            self._send(subscription_succeeded(channel))
            return
        await self._join(channel, *user)

    def _subscribe_server_to_user(self, channel: str, owner: str) -> None:
        # pusher-js subscribes to its user's channel after pusher:signin_success, as Pusher
        # expects; only that signed-in user may. Nothing publishes to it here (the HTTP API
        # has no send_to_user), so it stays out of the hub and self.channels.
        if self.user_id != owner:
            self._send(
                subscription_error(channel, 403, f"{channel} needs pusher:signin as {owner}")
            )
            return
        self._send(subscription_succeeded(channel))

    async def _hub_add(self, channel: str) -> None:
        if self.subscription is None:
            hub = self.ctx.hub
            subscription = await hub.subscribe([channel])
            if self._closed:
                subscription.close()
                return
            self.subscription = subscription
            subscription.set_direct_consumer(self._write_now)
            subscription.add_close_callback(self._on_subscription_closed)
            subscription.set_backlog_callback(self._start_draining)
        else:
            await self.ctx.hub.add_channel(self.subscription, channel)

    def _unsubscribe(self, channel: str) -> None:
        if channel not in self.channels:
            return  # as Pusher: unsubscribing from a channel one is not on is not an error
        self.channels.discard(channel)
        self._unregister(channel)
        if self.subscription is not None:
            self.ctx.hub.remove_channel(self.subscription, channel)
        self._unlisten_roster(channel)
        self.ctx.presence.leave(channel, self.socket_id)

    def _signin(self, frame: PusherFrame) -> None:
        app = self.ctx.app
        user_data, auth = frame.data["user_data"], frame.data["auth"]
        if not verify_user_auth(app.key, app.secret, self.socket_id, user_data, auth):
            self._send(error("invalid signin signature", PusherErrorCode.UNAUTHORIZED))
            return
        try:
            user = json.loads(user_data)
        except ValueError:
            user = None
        user_id = user.get("id") if isinstance(user, dict) else None
        if not isinstance(user_id, str | int) or isinstance(user_id, bool) or user_id == "":
            self._send(error("signin user_data needs an id", PusherErrorCode.UNAUTHORIZED))
            return
        self.user_id = str(user_id)
        self._send(signin_success(user_data))

    async def _client_event(self, frame: PusherFrame) -> None:
        channel = frame.channel or ""
        kind = channel_kind(channel)
        if kind is ChannelKind.PUBLIC:
            self._send(error(f"client events are not allowed on public channel {channel}"))
            return
        if channel not in self.channels:
            self._send(error(f"client event on {channel}, which this socket is not on"))
            return
        if server_only(channel):
            self._send(error(f"only the server publishes on {channel}; client events are refused"))
            return
        if not self.bucket.allow():
            self._send(
                error("client event rate limit reached", PusherErrorCode.CLIENT_EVENT_REJECTED)
            )
            return
        # Stored as JSON whose pusher data string is exactly what the sender sent.
        if isinstance(frame.data, str):
            data_json = json.dumps(frame.data, ensure_ascii=False)
        else:
            data_json = frame.raw_data if frame.raw_data is not None else "null"
        user_id = self.ctx.presence.user_id(channel, self.socket_id)
        try:
            await self.ctx.hub.relay_json(
                channel, frame.event, data_json, socket_id=self.socket_id, user_id=user_id
            )
        except ValidationError as exc:
            self._send(error(str(exc), PusherErrorCode.CLIENT_EVENT_REJECTED))
        except BackendUnavailable as exc:
            self._send(error(str(exc), PusherErrorCode.CLIENT_EVENT_REJECTED))

    # -- frames to the client ----------------------------------------------------------

    def _unregister(self, channel: str) -> None:
        connections = self.ctx.pusher_channels.get(channel)
        if connections is not None:
            connections.discard(self)
            if not connections:
                del self.ctx.pusher_channels[channel]

    def get_compression_options(self) -> dict[str, Any] | None:
        # Never negotiate permessage-deflate: _send_event writes pre-built plain frames.
        return None

    def _send(self, message: str | bytes) -> None:
        """Write one text frame; a client that stops reading is dropped (see the module doc)."""
        if self.ws_connection is None or self.ws_connection.is_closing():
            return
        try:
            future = self.write_message(message)  # bytes are sent as a text frame too
        except tornado.websocket.WebSocketClosedError:
            return
        self._track(future)

    def _send_event(self, event: Event) -> None:
        """Write a hub event as its cached WebSocket frame, the same bytes for every socket.

        Straight to the IOStream: ``write_message`` would frame the message again for each of
        N sockets and wrap each write in a task. That is valid because this handler never
        negotiates compression (``get_compression_options`` returns None) and server frames
        are unmasked, so the frame does not depend on the connection.
        """
        if event.socket_id == self.socket_id:
            return  # a client's own event is never echoed back to it
        connection = self.ws_connection
        stream = getattr(connection, "stream", None)
        if connection is None or stream is None or connection.is_closing():
            return
        try:
            future = stream.write(hub_event_ws_frame(event))
        except tornado.iostream.StreamClosedError:
            return
        self._track(future)

    def _track(self, future: asyncio.Future[None]) -> None:
        """Count a write as pending while its bytes wait in the buffer; drop a stalled client."""
        if future.done():
            _consume(future)
            return
        if not self._socket_busy():
            # Tornado wraps each write_message in a task that finishes a loop turn later even
            # when the socket took all the bytes at once. Only bytes left in the write buffer
            # mean the client lags, so only those count (and keep the direct path open).
            future.add_done_callback(_consume)
            return
        self._pending_writes += 1
        self._last_write = future
        future.add_done_callback(self._written)
        if self._pending_writes > self.ctx.app.max_pending_writes:
            log.warning("dropping slow pusher socket %s", self.socket_id)
            self.drop(PusherErrorCode.OVER_CAPACITY, "over capacity")

    def _socket_busy(self) -> bool:
        """Whether earlier frames still wait in Tornado's write buffer."""
        stream = getattr(self.ws_connection, "stream", None)
        return stream is not None and bool(stream.writing())

    def _written(self, future: asyncio.Future[None]) -> None:
        self._pending_writes -= 1
        _consume(future)

    def _write_now(self, event: Event) -> bool:
        """The subscription's direct consumer: write at once unless a write is pending."""
        if self._pending_writes:
            return False
        self._send_event(event)
        return True

    def _start_draining(self) -> None:
        """The subscription's backlog callback: events queued while the socket was busy."""
        # A running drainer is parked on a write and takes the new events when it resumes;
        # it only ends after finding the queue empty, with no await in between.
        if self._drainer is None or self._drainer.done():
            subscription = self.subscription
            if subscription is not None:
                loop = asyncio.get_running_loop()
                self._drainer = loop.create_task(self._drain(subscription))

    async def _drain(self, subscription: Subscription) -> None:
        """Write what queued while the socket was busy, a batch at a time, until none is left
        (the task exists only while there is a backlog: see ``set_backlog_callback``)."""
        while True:
            # Never more unfinished writes than the slow-client limit allows: a batch only
            # fills the room left next to the write that made the socket busy.
            room = self.ctx.app.max_pending_writes - self._pending_writes
            batch = subscription.next_nowait(min(BATCH_LIMIT, room)) if room > 0 else []
            if not batch and room > 0:
                return
            for event in batch:
                self._send_event(event)
            last = self._last_write
            if last is not None and not last.done():
                await asyncio.wait([last])
            elif not batch:
                return  # no room, yet nothing pending: cannot happen; never spin

    def _on_subscription_closed(self, subscription: Subscription) -> None:
        if self._closed:
            return
        if subscription.closed_reason == OVERFLOW:
            log.warning("dropping slow pusher socket %s", self.socket_id)
            self.drop(PusherErrorCode.OVER_CAPACITY, "over capacity")
        elif subscription.closed_reason == SHUTDOWN:
            self.drop(PusherErrorCode.GENERIC_RECONNECT, "server shutting down")
        elif subscription.closed_reason == RESYNC:
            # Redis came back without some events of a channel: the client reconnects and
            # subscribes again (Pusher has no resume to tell it what it missed).
            self.drop(PusherErrorCode.GENERIC_RECONNECT, "events were lost; reconnect")


def close_all(ctx: ServerContext) -> None:
    """Close every Pusher connection of ``ctx`` with 4200 (reconnect), e.g. on shutdown."""
    for connection in list(ctx.pusher_sockets.values()):
        connection.drop(PusherErrorCode.GENERIC_RECONNECT, "server shutting down")


def _consume(future: asyncio.Future[None]) -> None:
    # Retrieve the exception of a write the closing socket cut short; on_close cleans up.
    if not future.cancelled():
        future.exception()
