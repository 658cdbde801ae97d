"""The Redis backend's pub/sub connection: subscribe to watched channels, survive outages.

One dedicated connection per process (outside the command pool) carries ``SUBSCRIBE`` /
``UNSUBSCRIBE`` for the channels that have local subscribers, and their messages
(https://redis.io/docs/latest/develop/interact/pubsub/). Commands are sent by one writer
task, which reconciles what is wanted with what was sent, so a quick unwatch/watch pair
never ends unsubscribed; a :meth:`Listener.watch` returns once Redis confirmed the last
``SUBSCRIBE`` sent for the channel, after which every later ``PUBLISH`` reaches us.

When the connection breaks (Redis restarted, the network went away, a ``PING`` went
unanswered), the listener reports ``down`` once, reconnects with backoff
(:func:`dashboard.core.backoff.backoff_delays`), subscribes again to every watched channel,
and calls ``resync()`` before it reads any new message, so that the backend can fill the gap
from the streams in order; messages that arrived meanwhile follow, de-duplicated by it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

from ...core.backoff import backoff_delays
from ...core.errors import BackendUnavailable

log = logging.getLogger("dashboard.hub.redis")

OnMessage = Callable[[bytes, bytes], None]


class Listener:
    """Keeps one subscriber connection up and the set of subscribed channels right.

    Args:
        connect: makes a new, unconnected ``redis.asyncio.Connection``.
        on_message: ``on_message(pubsub_channel, data)`` for every message, in order.
        resync: awaited after each reconnect, once every watched channel is subscribed again
            and before new messages are handed out.
        where: the server, for log lines (no password).
        ping_interval: seconds of silence before a ``PING``; no answer within as long again
            counts as a broken connection.
        delays: reconnect delays (a fresh generator after each successful connection).
    """

    def __init__(
        self,
        connect: Callable[[], Any],
        on_message: OnMessage,
        resync: Callable[[], Awaitable[None]],
        *,
        where: str,
        ping_interval: float = 5.0,
        delays: Callable[[], Iterator[float]] = lambda: backoff_delays(0.05, 2.0),
    ) -> None:
        self._connect = connect
        self._on_message = on_message
        self._resync = resync
        self.where = where
        self.ping_interval = ping_interval
        self._delays = delays
        self._wanted: set[bytes] = set()
        self._sent: set[bytes] = set()
        self._confirmed: set[bytes] = set()
        self._outstanding: Counter[bytes] = Counter()
        self._waiters: dict[bytes, list[asyncio.Future[None]]] = {}
        self._dirty = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._connection: Any = None
        #: Set while connected and subscribed to every watched channel.
        self.up = asyncio.Event()
        #: Unix time of the last change between up and down.
        self.since = time.time()
        self.reconnects = 0
        self.last_error: str | None = None

    async def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self._fail_waiters(BackendUnavailable("the Redis backend stopped"))

    async def watch(self, channel: bytes, *, within: float) -> None:
        """Subscribe to ``channel`` and return once Redis confirmed it.

        Raises:
            BackendUnavailable: not connected, or no confirmation within ``within`` seconds.
        """
        self._wanted.add(channel)
        if channel in self._confirmed and not self._outstanding[channel]:
            return  # subscribed (an unwatch not sent yet is now void: the writer sends nothing)
        if not self.up.is_set():
            raise BackendUnavailable(f"Redis at {self.where} is unreachable", retry_after=1)
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(channel, []).append(waiter)
        self._dirty.set()
        try:
            await asyncio.wait_for(asyncio.shield(waiter), within)
        except TimeoutError:
            raise BackendUnavailable(
                f"Redis at {self.where} did not confirm a subscription in {within:g} s"
            ) from None

    def unwatch(self, channel: bytes) -> None:
        self._wanted.discard(channel)
        self._dirty.set()

    def is_watched(self, channel: bytes) -> bool:
        return channel in self._wanted

    # -- the connection ------------------------------------------------------------------

    async def _run(self) -> None:
        delays = self._delays()
        first = True
        while True:
            connection = self._connect()
            writer: asyncio.Task[None] | None = None
            try:
                await connection.connect()
                self._connection = connection
                self._sent.clear()
                self._confirmed.clear()
                self._outstanding.clear()
                writer = asyncio.get_running_loop().create_task(self._write(connection))
                held = await self._subscribed(connection)
                channels = len(self._wanted)
                if not first:
                    await self._resync()
                # Only now: a live message handed over before the resync would make the
                # backend take the events before it for duplicates.
                for channel, data in held:
                    self._hand_over(channel, data)
                self._set_up(first, channels)
                first = False
                delays = self._delays()
                await self._read(connection)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # redis-py ConnectionError, TimeoutError, OSError...
                self._set_down(exc)
            finally:
                self._connection = None
                if writer is not None:
                    writer.cancel()
                with contextlib.suppress(Exception):
                    await connection.disconnect(nowait=True)
            await asyncio.sleep(next(delays))

    async def _subscribed(self, connection: Any) -> list[tuple[bytes, bytes]]:
        """Subscribe to every watched channel; returns the messages that arrived meanwhile
        (bounded by what Redis publishes in one round trip per channel batch)."""
        self._dirty.set()
        held: list[tuple[bytes, bytes]] = []
        while self._wanted - self._confirmed or +self._outstanding:
            reply = await connection.read_response(timeout=self.ping_interval * 2)
            if reply is None:
                raise TimeoutError("no answer to SUBSCRIBE")
            self._handle(reply, held)
        return held

    async def _read(self, connection: Any) -> None:
        pinged = False
        while True:
            reply = await connection.read_response(timeout=self.ping_interval)
            if reply is None:
                if pinged:
                    raise TimeoutError(f"no answer to PING in {self.ping_interval * 2:g} s")
                pinged = True
                await connection.send_command("PING")
                continue
            pinged = False
            self._handle(reply, None)

    def _handle(self, reply: Any, held: list[tuple[bytes, bytes]] | None) -> None:
        kind = reply[0]
        if kind == b"message":
            if held is None:
                self._hand_over(reply[1], reply[2])
            else:
                held.append((reply[1], reply[2]))
        elif kind in (b"subscribe", b"unsubscribe"):
            channel = reply[1]
            self._outstanding[channel] -= 1
            if self._outstanding[channel] <= 0:
                del self._outstanding[channel]
            if kind == b"subscribe":
                self._confirmed.add(channel)
            else:
                self._confirmed.discard(channel)
            if channel not in self._outstanding:
                for waiter in self._waiters.pop(channel, ()):
                    if not waiter.done():
                        waiter.set_result(None)
        # b"pong": the connection is alive, which reading it showed already.

    def _hand_over(self, channel: bytes, data: bytes) -> None:
        try:
            self._on_message(channel, data)
        except Exception:
            # A malformed message (anyone may PUBLISH) or a failing consumer is not a broken
            # connection: log it, keep listening.
            log.exception("dropped a message on %r", channel[:200])

    async def _write(self, connection: Any) -> None:
        """Send what makes the subscribed set the watched one, in the order of the calls."""
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            add = sorted(self._wanted - self._sent)
            drop = sorted(self._sent - self._wanted)
            try:
                if drop:
                    self._sent.difference_update(drop)
                    self._outstanding.update(drop)
                    await connection.send_command("UNSUBSCRIBE", *drop)
                if add:
                    self._sent.update(add)
                    self._outstanding.update(add)
                    await connection.send_command("SUBSCRIBE", *add)
            except Exception:
                # Broken: closing it makes the reader fail too, and reconnect.
                with contextlib.suppress(Exception):
                    await connection.disconnect(nowait=True)
                return
            # A waiter for a channel that was unwatched meanwhile is answered by its reply.

    # -- state ---------------------------------------------------------------------------

    def _set_up(self, first: bool, channels: int) -> None:
        if not first:
            log.warning(
                "Redis at %s is back after %.1f s; resubscribed to %d channel(s)",
                self.where,
                time.time() - self.since,
                channels,
            )
        self.since = time.time()
        self.last_error = None
        self.up.set()

    def _set_down(self, exc: Exception) -> None:
        self.last_error = f"{type(exc).__name__}: {exc}"
        self._confirmed.clear()  # nothing is subscribed on a broken connection
        self._outstanding.clear()
        if self.up.is_set():  # logged once per outage; retries are quiet
            self.up.clear()
            self.since = time.time()
            self.reconnects += 1
            log.warning(
                "Redis at %s is unreachable (%s); serving connected clients, reconnecting",
                self.where,
                self.last_error,
            )
        self._fail_waiters(BackendUnavailable(f"Redis at {self.where} is unreachable"))

    def _fail_waiters(self, error: BackendUnavailable) -> None:
        for waiters in self._waiters.values():
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_exception(error)
                    waiter.exception()  # retrieved: no "never retrieved" warning
        self._waiters.clear()
