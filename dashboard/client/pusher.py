"""A Pusher Channels (protocol 7) client for asyncio, for notebooks, scripts and tests.

https://pusher.com/docs/channels/library_auth_reference/pusher-websockets-protocol/

One :class:`PusherClient` holds one WebSocket and any number of :class:`Channel` objects. It
behaves like pusher-js where that matters to a server:

* the connection is OPEN once ``pusher:connection_established`` arrives (that gives the
  ``socket_id`` private subscriptions are signed for);
* a close with code 4000-4099 is final (CLOSED, :attr:`PusherClient.fatal_error` set);
  4200-4299 reconnects at once; anything else (4100-4199, network errors, a dead connection)
  reconnects after a back-off delay from :func:`dashboard.core.backoff.backoff_delays`;
* after every reconnect each channel is subscribed again, re-authorised for the new
  ``socket_id``, and a signed-in user signs in again;
* ``pusher:ping`` is answered; after ``activity_timeout`` of silence the client pings, and
  no frame within ``pong_timeout`` after that counts as a dead connection.

Frames are built and parsed by pure functions in :mod:`dashboard.client.pusher_channels`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import aiohttp
from yarl import URL

from .. import __version__
from ..core.backoff import backoff_delays
from ..core.channels import ChannelKind, validate_channel
from ..core.connection import ConnectionState, ConnectionStatus, StatusWatchers
from ..core.pusher_frames import ping, pong
from ..hub.status import OpenWaiter
from .pusher_channels import (
    DEFAULT_MAX_QUEUE,
    Authorizer,
    Channel,
    PresenceChannel,
    PusherClosedError,
    PusherError,
    PusherEvent,
    SigninError,
    SubscriptionError,
    UserAuthenticator,
    log,
    parse_server_frame,
    signin_frame,
    subscribe_frame,
    unsubscribe_frame,
)

#: Cap on any reconnect delay, in seconds.
MAX_DELAY = 30.0
#: pusher-js's defaults, in seconds.
DEFAULT_PONG_TIMEOUT = 30.0
DEFAULT_ACTIVITY_TIMEOUT = 120.0
CLIENT_NAME = "dashboard-py"


class _Dead(Exception):
    """The connection ended; ``args[0]`` says why."""


class _Closed(Exception):
    """The server closed the connection with ``code``."""

    def __init__(self, code: int | None, reason: str) -> None:
        super().__init__(f"closed by server: {code} {reason}".rstrip())
        self.code = code
        self.reason = reason


def _default_backoff(initial: float) -> Iterator[float]:
    return backoff_delays(initial=initial, maximum=MAX_DELAY)


def pusher_url(url_or_host: str | URL, key: str) -> URL:
    """The WebSocket URL of app ``key`` at ``url_or_host``.

    ``url_or_host`` is ``host``, ``host:port`` or a ws, wss, http or https URL (its path, if
    any, is kept as a prefix).

    Raises:
        ValueError: when it has another scheme or no host.
    """
    text = str(url_or_host)
    url = URL(text if "://" in text else f"ws://{text}")
    scheme = {"http": "ws", "https": "wss"}.get(url.scheme, url.scheme)
    if scheme not in ("ws", "wss") or not url.host:
        raise ValueError(f"not a ws(s)/http(s) URL or host: {text!r}")
    path = url.path.rstrip("/") + f"/app/{key}"
    query = {"protocol": "7", "client": CLIENT_NAME, "version": __version__, "flash": "false"}
    return url.with_scheme(scheme).with_path(path).with_query(query)


class PusherClient(OpenWaiter):
    """A Pusher protocol 7 connection that reconnects and resubscribes by itself.

    Usage::

        async with PusherClient("localhost:5006", "dashboard-key") as client:
            channel = await client.subscribe("prices")
            async for event in channel:
                print(event.event, event.data)

    The connection starts with :meth:`connect` (or ``async with``, or the first
    :meth:`subscribe`). :attr:`status` and :meth:`watch_status` follow it like every
    subscription of this package (:class:`~dashboard.core.connection.ConnectionStatus`).

    Args:
        url_or_host: the server: ``host[:port]`` or a ws/wss/http/https URL.
        key: the app key (``/app/{key}``).
        session: session to use; when ``None`` the client creates one and closes it.
        authorizer: ``async (socket_id, channel_name, channel_data) -> {"auth",
            "channel_data"?}`` for private and presence channels, e.g.
            :func:`~dashboard.client.pusher_channels.local_authorizer`.
        user_authenticator: ``async (socket_id, user_data) -> {"auth", "user_data"?}`` for
            :meth:`signin`.
        backoff: factory of reconnect delays in seconds, called with ``reconnect_delay`` each
            time a connection is lost.
        reconnect_delay: the first back-off envelope, in seconds.
        activity_timeout: seconds of silence before the client pings; the server's value is
            used when it is shorter or when this is ``None``.
        pong_timeout: seconds to wait for any frame after a ping before reconnecting.
        connect_timeout: seconds to wait for the WebSocket handshake and the
            ``connection_established`` frame.
        max_retries: failed attempts in a row before giving up; ``None`` retries forever.
        max_queue: per-channel iterator queue size (see :class:`Channel`).
        headers: extra handshake headers, or a function returning them for each attempt
            (``{"Authorization": "Bearer <user token>"}`` for a server that requires a
            login). A handshake refused with 401 or 403 ends the client for good.
    """

    def __init__(
        self,
        url_or_host: str | URL,
        key: str,
        *,
        session: aiohttp.ClientSession | None = None,
        authorizer: Authorizer | None = None,
        user_authenticator: UserAuthenticator | None = None,
        backoff: Callable[[float], Iterator[float]] | None = None,
        reconnect_delay: float = 1.0,
        activity_timeout: float | None = None,
        pong_timeout: float = DEFAULT_PONG_TIMEOUT,
        connect_timeout: float = 10.0,
        max_retries: int | None = None,
        max_queue: int = DEFAULT_MAX_QUEUE,
        headers: Mapping[str, str] | Callable[[], Mapping[str, str]] | None = None,
    ) -> None:
        self.url = pusher_url(url_or_host, key)
        self.headers = headers
        self.key = key
        self.authorizer = authorizer
        self.user_authenticator = user_authenticator
        self.backoff = backoff or _default_backoff
        self.reconnect_delay = reconnect_delay
        self.activity_timeout = activity_timeout
        self.pong_timeout = pong_timeout
        self.connect_timeout = connect_timeout
        self.max_retries = max_retries
        self.max_queue = max_queue
        #: The current connection's socket id; ``None`` while not connected.
        self.socket_id: str | None = None
        #: Why the client stopped for good; ``None`` while it runs or after aclose().
        self.fatal_error: PusherClosedError | None = None
        #: The signed-in user's data, after :meth:`signin`.
        self.user_data: str | None = None

        self._session = session
        self._owns_session = session is None
        self._status_watchers = StatusWatchers(ConnectionStatus(ConnectionState.CONNECTING))
        self._channels: dict[str, Channel] = {}
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()  # per-connection (auth, signin) work
        self._closing: set[asyncio.Task[None]] = set()  # close handshakes of old sockets
        self._closed = False
        self._opened: asyncio.Event | None = None
        self._signin_waiter: asyncio.Future[None] | None = None
        self._server_error: str | None = None
        self._was_open = False  # the ending connection got as far as connection_established

    # -- status --------------------------------------------------------------------------

    def _set_status(self, state: ConnectionState, retries: int, last_error: str | None) -> None:
        self._status_watchers.update(ConnectionStatus(state, retries, last_error))

    @property
    def channels(self) -> dict[str, Channel]:
        """The channels subscribed to (or being subscribed), by name; a copy."""
        return dict(self._channels)

    # -- life cycle ----------------------------------------------------------------------

    async def __aenter__(self) -> PusherClient:
        await self.connect()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def _start(self) -> None:
        if self._closed:
            raise self.fatal_error or PusherClosedError("the client is closed")
        if self._task is None:
            self._opened = asyncio.Event()
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def connect(self) -> None:
        """Start the connection (if not started) and wait until it is open.

        Raises:
            PusherClosedError: when the client closes first (a 4000-4099 close code,
                ``max_retries`` exhausted, or :meth:`aclose`).
        """
        self._start()
        assert self._opened is not None and self._task is not None
        opened = asyncio.ensure_future(self._opened.wait())
        try:
            await asyncio.wait({opened, self._task}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            opened.cancel()
        if self.status.state is not ConnectionState.OPEN:
            raise self.fatal_error or PusherClosedError("the client is closed")

    async def aclose(self) -> None:
        """Close the connection and every channel; close the session if it owns it.

        Safe to call from any task and more than once; waits in :meth:`connect`,
        :meth:`subscribe` and channel iterators end at once.
        """
        self._closed = True
        task = self._task
        if task is not None and task is not asyncio.current_task():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._shutdown()

    async def _shutdown(self) -> None:
        self._closed = True
        for work in list(self._tasks):
            work.cancel()
        ws, self._ws, self.socket_id = self._ws, None, None
        self._set_status(ConnectionState.CLOSED, self.status.retries, self.status.last_error)
        error = self.fatal_error
        for channel in list(self._channels.values()):
            channel._end(error)
        self._channels.clear()
        self._fail_signin(error or PusherClosedError("the client is closed"))
        if self._opened is not None:
            self._opened.set()
        if ws is not None:
            await ws.close()
        if self._closing:
            # Bounded by ws_close: a peer that never answers our close frame costs 1 s.
            await asyncio.gather(*self._closing, return_exceptions=True)
        if self._owns_session and self._session is not None and not self._session.closed:
            await self._session.close()

    async def _run(self) -> None:
        retries = 0
        delays: Iterator[float] | None = None
        try:
            while not self._closed:
                if self._session is None:
                    self._session = aiohttp.ClientSession()
                delay: float | None = None
                try:
                    await self._connection(self._session)
                    error = "connection closed"
                except _Closed as exc:
                    error = str(exc)
                    if exc.code is not None and 4000 <= exc.code < 4100:
                        self.fatal_error = PusherClosedError(self._server_error or error, exc.code)
                        self._set_status(ConnectionState.CLOSED, retries, str(self.fatal_error))
                        return
                    if exc.code is not None and 4200 <= exc.code < 4300 and self._was_open:
                        delay = 0.0  # at once, but never twice in a row without opening
                except aiohttp.WSServerHandshakeError as exc:
                    error = _one_line(exc)
                    if exc.status in (401, 403):  # new attempts would be refused the same way
                        message = f"the server refused the connection ({exc.status}): {exc.message}"
                        self.fatal_error = PusherClosedError(message)
                        self._set_status(ConnectionState.CLOSED, retries, message)
                        return
                except (aiohttp.ClientError, OSError, TimeoutError, _Dead, ValueError) as exc:
                    error = _one_line(exc)
                finally:
                    self._disconnected()
                if self._was_open:
                    # A fresh generator per lost connection: the back-off starts over.
                    retries, delays, self._was_open = 0, None, False
                retries += 1
                if self.max_retries is not None and retries > self.max_retries:
                    message = f"gave up after {retries} attempts: {error}"
                    self.fatal_error = PusherClosedError(message)
                    self._set_status(ConnectionState.CLOSED, retries, message)
                    return
                self._set_status(ConnectionState.RECONNECTING, retries, error)
                if delay is None:
                    if delays is None:
                        delays = self.backoff(self.reconnect_delay)
                    delay = next(delays)
                await asyncio.sleep(delay)
        finally:
            if not self._closed:
                await self._shutdown()

    def _disconnected(self) -> None:
        for work in list(self._tasks):
            work.cancel()
        ws, self._ws, self.socket_id = self._ws, None, None
        if ws is not None and not ws.closed:
            # Not awaited here: the peer may never answer our close frame.
            task = asyncio.get_running_loop().create_task(self._close_ws(ws))
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)
        for channel in self._channels.values():
            channel._on_disconnect()

    @staticmethod
    async def _close_ws(ws: aiohttp.ClientWebSocketResponse) -> None:
        with contextlib.suppress(aiohttp.ClientError, OSError):
            await ws.close()

    async def _connection(self, session: aiohttp.ClientSession) -> None:
        """Run one WebSocket connection until it ends.

        Raises:
            _Closed: the server closed it with a code.
            _Dead: no pong, or no connection_established in time.
        """
        self._server_error = None
        async with asyncio.timeout(self.connect_timeout):
            headers = self.headers() if callable(self.headers) else self.headers
            ws = self._ws = await session.ws_connect(
                self.url,
                headers=headers,
                timeout=aiohttp.ClientWSTimeout(ws_close=1.0),
                autoping=True,
                max_msg_size=4 * 1024 * 1024,
            )
        activity: float | None = None  # until connection_established
        ping_sent = False
        while True:
            if activity is None:
                timeout = self.connect_timeout
            else:
                timeout = self.pong_timeout if ping_sent else activity
            try:
                message = await ws.receive(timeout=timeout)
            except TimeoutError:
                if activity is None:
                    raise _Dead(f"no connection_established within {timeout} s") from None
                if ping_sent:
                    raise _Dead(f"no pong within {self.pong_timeout} s") from None
                await ws.send_str(ping())
                ping_sent = True
                continue
            ping_sent = False  # any frame is a sign of life, as in pusher-js
            if message.type is aiohttp.WSMsgType.TEXT:
                established = self._on_frame(message.data)
                if established is not None:
                    activity = established
            elif message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSING):
                code = message.data if message.type is aiohttp.WSMsgType.CLOSE else ws.close_code
                raise _Closed(code, message.extra or "")
            elif message.type is aiohttp.WSMsgType.CLOSED:
                raise _Closed(ws.close_code, "")
            elif message.type is aiohttp.WSMsgType.ERROR:
                raise _Dead(_one_line(ws.exception() or RuntimeError("WebSocket error")))

    def _on_frame(self, text: str) -> float | None:
        """Act on one server frame; returns the activity timeout on connection_established."""
        try:
            frame = parse_server_frame(text)
        except ValueError:
            log.warning("ignoring a malformed frame from the server: %.200s", text)
            return None
        event, channel_name, data = frame["event"], frame["channel"], frame["data"]
        if event == "pusher:connection_established":
            return self._on_established(data)
        if event == "pusher:ping":
            self._send_nowait(pong())
            return None
        if event == "pusher:error":
            message = data.get("message") if isinstance(data, dict) else data
            code = data.get("code") if isinstance(data, dict) else None
            self._server_error = f"pusher:error {code}: {message}"
            log.warning("server error %s: %s", code, message)
            if code == 4009:
                self._fail_signin(SigninError(str(message)))
            return None
        if event == "pusher:signin_success":
            if self._signin_waiter is not None and not self._signin_waiter.done():
                self._signin_waiter.set_result(None)
            return None
        channel = self._channels.get(channel_name or "")
        if channel is None:
            return None
        if event == "pusher_internal:subscription_succeeded":
            channel._on_succeeded(data)
        elif event == "pusher:subscription_error":
            self._refuse(channel, data)
        elif event.startswith("pusher_internal:"):
            channel._on_internal(event, data)
        elif channel.subscribed:
            channel._emit(PusherEvent(channel.name, event, data, frame["user_id"]))
        return None

    def _on_established(self, data: Any) -> float:
        if not isinstance(data, dict) or not isinstance(data.get("socket_id"), str):
            raise _Dead("connection_established without a socket_id")
        self.socket_id = data["socket_id"]
        server_timeout = data.get("activity_timeout")
        activity = self.activity_timeout or DEFAULT_ACTIVITY_TIMEOUT
        if isinstance(server_timeout, int | float) and server_timeout > 0:
            activity = min(activity, float(server_timeout))
        self._was_open = True
        self._set_status(ConnectionState.OPEN, 0, None)
        assert self._opened is not None
        self._opened.set()
        for channel in list(self._channels.values()):
            self._spawn(self._subscribe_on_wire(channel, self.socket_id))
        if self.user_data is not None:
            self._spawn(self._signin_on_wire(self.user_data, self.socket_id))
        return activity

    def _refuse(self, channel: Channel, data: Any) -> None:
        info = data if isinstance(data, dict) else {}
        status = info.get("status") if isinstance(info.get("status"), int) else None
        message = info.get("error") or info.get("message") or "subscription refused"
        error = SubscriptionError(channel.name, str(message), status, info.get("type"))
        self._drop(channel, error)

    def _drop(self, channel: Channel, error: PusherError) -> None:
        if self._channels.get(channel.name) is channel:
            del self._channels[channel.name]
        log.warning("%s", error)
        channel._end(error)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- sending -------------------------------------------------------------------------

    async def _send(self, text: str) -> None:
        ws = self._ws
        if ws is None or ws.closed or self.socket_id is None:
            raise PusherError("not connected")
        await ws.send_str(text)

    def _send_nowait(self, text: str) -> None:
        with contextlib.suppress(PusherError):
            self._spawn(self._send_quietly(text))

    async def _send_quietly(self, text: str) -> None:
        with contextlib.suppress(PusherError, aiohttp.ClientError, ConnectionError):
            await self._send(text)

    # -- channels ------------------------------------------------------------------------

    async def subscribe(self, channel: str, channel_data: Any = None) -> Channel:
        """Subscribe to ``channel`` and wait until the server confirms it.

        Waits through reconnects. Subscribing again to a channel already subscribed returns
        the same object.

        Args:
            channel: the channel name; ``private-`` and ``presence-`` ones need an authorizer.
            channel_data: passed to the authorizer (for presence: the member, e.g.
                ``{"user_id": ..., "user_info": ...}``, as a dict or JSON text).

        Returns:
            The :class:`Channel` (a :class:`PresenceChannel` for ``presence-`` names).

        Raises:
            InvalidChannel: for an invalid name.
            ValueError: for a private or presence channel without an authorizer.
            SubscriptionError: when the server refuses it or the authorizer fails.
            PusherClosedError: when the client closes first.
        """
        name = validate_channel(channel)
        existing = self._channels.get(name)
        if existing is not None:
            await existing._wait_subscribed()
            return existing
        cls = PresenceChannel if name.startswith("presence-") else Channel
        created = cls(self, name, channel_data, self.max_queue)
        if created.kind is not ChannelKind.PUBLIC and self.authorizer is None:
            raise ValueError(f"{name} needs an authorizer")
        self._start()
        self._channels[name] = created
        if self.socket_id is not None:
            self._spawn(self._subscribe_on_wire(created, self.socket_id))
        await created._wait_subscribed()
        return created

    async def _subscribe_on_wire(self, channel: Channel, socket_id: str) -> None:
        auth: str | None = None
        channel_data: str | None = None
        if channel.kind is not ChannelKind.PUBLIC:
            assert self.authorizer is not None
            try:
                answer = await self.authorizer(socket_id, channel.name, channel._channel_data)
                auth = answer["auth"]
                raw = answer.get("channel_data", channel._channel_data)
                if raw is not None:
                    channel_data = raw if isinstance(raw, str) else json.dumps(raw)
            except Exception as exc:
                message = f"authorizer failed: {_one_line(exc)}"
                self._drop(channel, SubscriptionError(channel.name, message))
                return
        if isinstance(channel, PresenceChannel):
            channel._set_me(channel_data)
        if self.socket_id != socket_id or self._channels.get(channel.name) is not channel:
            return  # reconnected or unsubscribed meanwhile; the new connection does it
        with contextlib.suppress(PusherError, aiohttp.ClientError, ConnectionError):
            await self._send(subscribe_frame(channel.name, auth, channel_data))

    async def _unsubscribe(self, channel: Channel) -> None:
        if self._channels.get(channel.name) is channel:
            del self._channels[channel.name]
            if channel.subscribed:
                with contextlib.suppress(PusherError, aiohttp.ClientError, ConnectionError):
                    await self._send(unsubscribe_frame(channel.name))
        channel._end()

    # -- user sign-in --------------------------------------------------------------------

    async def signin(self, user_data: dict[str, Any] | str) -> None:
        """Sign the connection in as a user (``pusher:signin``); repeated after reconnects.

        Args:
            user_data: the user, with at least an ``id``; a dict or its JSON text.

        Raises:
            ValueError: without a ``user_authenticator``.
            SigninError: when the server rejects it or the authenticator fails.
        """
        if self.user_authenticator is None:
            raise ValueError("signin needs a user_authenticator")
        await self.connect()
        text = user_data if isinstance(user_data, str) else json.dumps(user_data)
        waiter = self._signin_waiter = asyncio.get_running_loop().create_future()
        assert self.socket_id is not None
        await self._signin_on_wire(text, self.socket_id)
        await waiter
        self.user_data = text

    async def _signin_on_wire(self, user_data: str, socket_id: str) -> None:
        assert self.user_authenticator is not None
        try:
            answer = await self.user_authenticator(socket_id, user_data)
            frame = signin_frame(answer["auth"], answer.get("user_data", user_data))
            await self._send(frame)
        except Exception as exc:
            self._fail_signin(SigninError(f"signin failed: {_one_line(exc)}"))

    def _fail_signin(self, error: PusherError) -> None:
        waiter = self._signin_waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(error)
        elif not self._closed:
            log.warning("%s", error)  # a sign-in repeated after a reconnect failed


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    if isinstance(exc, PusherError | _Dead | _Closed):
        return text
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
