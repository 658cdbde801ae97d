"""``GET /api/events``: the hub's events as a Server-Sent Events stream.

The handler only moves bytes: framing comes from :mod:`dashboard.core.event_stream`, resume and
fan-out from the hub. Each loop iteration takes every queued event, writes them as one chunk and
waits for the socket to accept it, so a burst costs one write per subscriber, not one per event.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import time

import tornado.iostream
import tornado.web

from ..core.channels import ChannelKind, channel_kind
from ..core.cursor import Position, encode_cursor
from ..core.errors import BackendUnavailable, ValidationError
from ..core.event_stream import (
    HEARTBEAT_FRAME,
    WAITING_FRAME,
    connected_frame,
    event_frame,
    event_frame_with_cursor,
    reset_frame,
    transient_frame,
)
from ..core.events import Event
from ..core.origins import origin_allowed
from ..hub import Subscription
from ..hub.subscription import OVERFLOW
from .access import Access
from .base import ApiError, ApiHandler, log

#: Events written per chunk at most; bounds the size of one write.
BATCH_LIMIT = 512


class EventStreamHandler(ApiHandler):
    """Streams ``?channel=a&channel=b``, resuming after ``Last-Event-ID`` / ``?last_event_id=``.

    Channels: public ones to anyone (with a login, to any authenticated caller); private ones
    that the server's channel policy lets the caller into (the rule ``/pusher/auth`` applies);
    never presence channels, whose membership needs the Pusher socket. At most
    :attr:`~.limits.Limits.max_channels` channels per stream.
    """

    access = {"GET": Access.OPEN}
    subscription: Subscription | None = None
    _heartbeat: asyncio.TimerHandle | None = None
    _pending_flushes = 0

    async def get(self) -> None:
        self._check_origin()
        channels = self.get_query_arguments("channel")
        if not channels:
            raise ApiError(400, "missing_channel", "give at least one ?channel=NAME")
        last_event_id = self.request.headers.get("Last-Event-ID") or self.get_query_argument(
            "last_event_id", None
        )
        self._check_channels(channels)
        try:
            subscription = await self._subscribe(channels, last_event_id)
        except ValidationError as exc:
            raise self.validation_error(exc) from None
        except tornado.iostream.StreamClosedError:
            return  # gone while waiting for the backend
        if self._socket_closed():
            subscription.close()
            return
        self.subscription = subscription
        self.ctx.streams.add(self)
        subscription.add_close_callback(self._on_subscription_closed)
        try:
            await self._stream(subscription)
        except tornado.iostream.StreamClosedError:
            pass  # the client went away; on_connection_close did the cleanup
        finally:
            self._cleanup()
        if not self._socket_closed():
            self.finish()

    def _check_channels(self, channels: list[str]) -> None:
        """Refuse more channels than the cap, presence channels, and private channels the
        caller may not follow.

        Raises:
            ApiError: 400 over the cap, 403 for presence or a refused private channel, 401 for
                an anonymous caller asking for a private one.
        """
        cap = self.ctx.limits.max_channels
        if len(set(channels)) > cap:
            raise ApiError(
                400, "too_many_channels", f"{len(set(channels))} channels; at most {cap} per stream"
            )
        for name in channels:
            if channel_kind(name) is ChannelKind.PRESENCE:
                raise ApiError(
                    403,
                    "forbidden",
                    f"{name} is a presence channel: joining one announces you to its members, "
                    "which needs the Pusher socket (/app/{key}), not a stream",
                )
        self.ctx.policy.check_channels(self.caller, channels)

    def _check_origin(self) -> None:
        """Refuse a browser page from another origin unless allowlisted (an allowlisted one
        reads the stream through the CORS headers every API answer carries).

        Raises:
            ApiError: 403 ``forbidden_origin``.
        """
        headers = self.request.headers
        origin = headers.get("Origin")
        if not origin_allowed(
            origin, headers.get("Host"), self.ctx.allowed_origins, headers.get("Sec-Fetch-Site")
        ):
            raise ApiError(
                403,
                "forbidden_origin",
                f"origin {origin!r} may not open this stream; "
                "allow it with --allow-websocket-origin HOST:PORT",
            )

    async def _subscribe(self, channels: list[str], last_event_id: str | None) -> Subscription:
        """Subscribe, waiting out an outage of the hub's backend (Redis) with the stream open.

        A browser's ``EventSource`` gives up for good on an error status, so instead of a 503
        the stream starts at once with heartbeat comments and its ``connected`` event comes
        once the backend is back.
        """
        hub = self.ctx.hub
        while True:
            try:
                return await hub.subscribe(channels, last_event_id=last_event_id)
            except BackendUnavailable:
                if not self._headers_written:
                    self._start_headers()
                    self.write(WAITING_FRAME)
                    await self._flush()
            try:
                await asyncio.wait_for(hub.backend.wait_available(), self.ctx.heartbeat)
            except TimeoutError:
                self.write(HEARTBEAT_FRAME)
                await self._flush()  # raises StreamClosedError once the client is gone
            else:
                # Spread the streams that waited over a second, and never retry in a loop
                # when the backend says it is up but still refuses.
                await asyncio.sleep(random.uniform(0.05, 1.0))

    def _start_headers(self) -> None:
        self.set_header("Content-Type", "text/event-stream; charset=utf-8")
        self.set_header("Cache-Control", "no-cache")
        self.set_header("X-Accel-Buffering", "no")  # nginx would otherwise buffer the stream

    async def _stream(self, subscription: Subscription) -> None:
        if not self._headers_written:
            self._start_headers()
        stream = getattr(self.request.connection, "stream", None)
        if stream is not None:
            # Tornado turns Nagle off only when a response finishes; an open stream would
            # otherwise hold small frames back waiting for the client's ACKs.
            stream.set_nodelay(True)
            drop_dead_peer(stream.socket, self.ctx.limits.dead_peer_timeout)
        hub = self.ctx.hub
        cursor_id = subscription.cursor_id()
        self.write(
            connected_frame(
                cursor_id, subscription.channels, hub.epoch, self.ctx.heartbeat, self.ctx.retry_ms
            )
        )
        for reset in subscription.resets:
            self.write(reset_frame(reset, cursor_id))
        self._single = len(subscription.channels) == 1
        self._channels = subscription.channels
        self._positions = subscription.positions
        await self._flush()
        self._schedule_heartbeat()
        # While the socket keeps up, the publisher writes each event itself (no queue, no task
        # switch); once a write is pending, events queue and this loop drains them in chunks.
        subscription.set_direct_consumer(self._write_now)
        while True:
            batch = await subscription.next_batch(BATCH_LIMIT)
            if not batch:
                return  # closed: client gone, overflow or server shutdown
            self._last_write = time.monotonic()
            self.write(b"".join([self._frame(event) for event in batch]))
            await self._flush()

    def _frame(self, event: Event) -> bytes:
        if event.transient:
            return transient_frame(event)  # no id: it is no position to resume from
        if self._single:
            return event_frame(event)  # cached on the event, shared by every subscriber
        self._positions[event.channel] = Position(event.epoch, event.offset)
        return event_frame_with_cursor(event, encode_cursor(self._channels, self._positions))

    def _write_now(self, event: Event) -> bool:
        """The subscription's direct consumer: write at once unless a write is still pending."""
        if self._pending_flushes:
            return False
        self._last_write = time.monotonic()
        self.write(self._frame(event))
        self._start_flush()
        return True

    def _start_flush(self) -> asyncio.Future[None]:
        """Flush, counting unfinished flushes so a stalled client cannot grow the buffer."""
        future = self.flush()
        if future.done():
            _ignore_closed(future)  # the usual case: the socket took it all at once
        else:
            self._pending_flushes += 1
            future.add_done_callback(self._flushed)
        return future

    def _flushed(self, future: asyncio.Future[None]) -> None:
        self._pending_flushes -= 1
        _ignore_closed(future)

    async def _flush(self) -> None:
        await self._start_flush()

    def _schedule_heartbeat(self) -> None:
        self._last_write = time.monotonic()
        loop = asyncio.get_running_loop()
        self._heartbeat = loop.call_later(self.ctx.heartbeat, self._beat)

    def _beat(self) -> None:
        """Write a comment when the stream was idle, so proxies and clients see it is alive."""
        if self._socket_closed():
            return
        idle = time.monotonic() - self._last_write
        if idle >= self.ctx.heartbeat * 0.9:
            self._last_write = time.monotonic()
            self.write(HEARTBEAT_FRAME)
            self._start_flush()
            idle = 0.0
        loop = asyncio.get_running_loop()
        self._heartbeat = loop.call_later(self.ctx.heartbeat - idle, self._beat)

    def _on_subscription_closed(self, subscription: Subscription) -> None:
        if subscription.closed_reason == OVERFLOW:
            # The client stopped reading and its queue filled up. Its flush may never complete,
            # so drop the connection; it will resume from its Last-Event-ID via history.
            log.warning("dropping slow SSE consumer %s", self.request.remote_ip)
            self.abort()

    def abort(self) -> None:
        """Drop the TCP connection at once, without finishing the response."""
        stream = getattr(self.request.connection, "stream", None)
        if stream is not None:
            stream.close()

    def _socket_closed(self) -> bool:
        stream = getattr(self.request.connection, "stream", None)
        return stream is None or bool(stream.closed())

    def on_connection_close(self) -> None:
        self._cleanup()

    def _cleanup(self) -> None:
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            self._heartbeat = None
        if self.subscription is not None:
            self.subscription.close()
        self.ctx.streams.discard(self)


def drop_dead_peer(sock: socket.socket | None, timeout: float) -> None:
    """Have the kernel drop the connection once sent data stays unacknowledged (or unsent, on a
    zero window) for ``timeout`` seconds: ``TCP_USER_TIMEOUT`` (RFC 5482; Linux).

    A stream only writes, so a subscriber whose network vanished is otherwise noticed only when
    the kernel gives up retransmitting (15 retries, about 15 minutes). The heartbeat makes sure
    there is always recent data to be acknowledged. A client that is alive but does not read
    (a stopped process) keeps acknowledging at the TCP level; it is dropped once its window is
    full for ``timeout`` seconds, or sooner by the slow-consumer rule when events flow.
    """
    option = getattr(socket, "TCP_USER_TIMEOUT", None)
    if sock is None or option is None:
        return
    with contextlib.suppress(OSError):  # not TCP (a test's unix socket): nothing to bound
        sock.setsockopt(socket.IPPROTO_TCP, option, max(1, int(timeout * 1000)))


def _ignore_closed(future: asyncio.Future[None]) -> None:
    if not future.cancelled():
        exc = future.exception()
        if exc is not None and not isinstance(exc, tornado.iostream.StreamClosedError):
            log.warning("heartbeat write failed: %s", exc)
