"""Redis backend: several server processes share each channel's history, offsets and events.

Per channel (key layout and the epoch rule in :mod:`.redis_scripts`): a meta hash with the
epoch and newest offset, a Redis Stream of the events, bounded by count (``XADD ... MAXLEN``)
and age (``PEXPIRE``; age is also checked when reading, per event), and a pub/sub channel.
A publish is one Lua script: it assigns the offset, stores the event and ``PUBLISH``\\es it,
atomically, so every process agrees on the order. Each process subscribes only to channels
with local subscribers (:meth:`RedisBackend.watch`), decodes each message once and hands it
to the hub, which fans it out locally. Resume from any process reads the stream (``XRANGE``).

Redis down or restarting: connected subscribers keep their streams; publishes and new
subscriptions raise :class:`~dashboard.core.errors.BackendUnavailable` (HTTP 503 with
``Retry-After``); ``health()`` says ``down``; the listener reconnects with backoff, subscribes
again and fills each channel's gap from its stream, or, where that history is gone, has the
hub end the channel's subscriptions so that their clients resume and get a ``reset``.

Not supported: Redis Cluster (pub/sub is not sharded, the listener speaks to one node), and
retries of a publish whose answer was lost (it may have been stored: the caller gets a 503).

Redis commands used, by their reference pages (https://redis.io/docs/latest/commands/):
``EVALSHA`` (the scripts), ``XADD``, ``XRANGE``, ``HMGET``, ``PEXPIRE``, ``PUBLISH``,
``SUBSCRIBE``/``UNSUBSCRIBE``, ``PING``, ``MULTI``/``EXEC``, ``SCAN``. Details and operations
notes: docs/redis.md.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Callable
from typing import Any

import redis.asyncio as aioredis
from redis import exceptions as redis_errors

from ...core.cursor import Position
from ...core.errors import BackendUnavailable
from ...core.events import Event
from ...core.history import HistoryLimits
from .base import Backend, Deliver, Lost
from .redis_client import (
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_PREFIX,
    Generations,
    check_url,
    connect,
    decode_body,
    encode_body,
    glob_escape,
    redact,
    unavailable,
)
from .redis_listener import Listener
from .redis_scripts import KEEP, POSITION, PUBLISH

__all__ = ["DEFAULT_PREFIX", "RedisBackend", "check_url", "connect", "redact"]

log = logging.getLogger("dashboard.hub.redis")

#: Seconds a channel that was read but never published to keeps its meta hash once no
#: process watches it (``RedisBackend(read_ttl=...)``).
DEFAULT_READ_TTL = 60.0


class RedisBackend(Backend):
    """History and delivery through the Redis at ``url``, for every process sharing it.

    Args:
        url: ``redis://host:port/db`` (see :func:`check_url`).
        prefix: put before every key and pub/sub channel name (``dashboard:``), so that
            several dashboards, or test runs, can share one database.
        limits: each channel's history bound: ``max_events`` (``MAXLEN``, exact) and
            ``max_age`` seconds (``PEXPIRE`` of the keys; each event's age when read).
        clock: Unix time, for ``published_at`` and the age check.
        client: a client from :func:`connect` to use (and leave open) instead of making one
            from ``url``.
        max_connections: the bound of the command pool made from ``url``.
        command_timeout: seconds a subscription waits for Redis to confirm.
        read_ttl: seconds the meta hash of a channel that was read but never published to
            outlives the last process watching it (at most ``max_age``).

    Raises:
        ValueError: a bad ``url``.
    """

    def __init__(
        self,
        url: str,
        *,
        prefix: str = DEFAULT_PREFIX,
        limits: HistoryLimits | None = None,
        clock: Callable[[], float] = time.time,
        client: aioredis.Redis | None = None,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        command_timeout: float = 5.0,
        read_ttl: float = DEFAULT_READ_TTL,
    ) -> None:
        self.url = check_url(url)
        self.prefix = prefix
        self.limits = limits or HistoryLimits()
        self.command_timeout = command_timeout
        self._clock = clock
        self._owns_client = client is None
        self._redis = (
            client if client is not None else connect(url, max_connections=max_connections)
        )
        self._publish = self._redis.register_script(PUBLISH)
        self._position = self._redis.register_script(POSITION)
        self._keep = self._redis.register_script(KEEP)
        self._ttl_ms = max(1, int(self.limits.max_age * 1000))
        self.read_ttl = min(read_ttl, self.limits.max_age)
        self._read_ttl_ms = max(1, int(self.read_ttl * 1000))
        self._keeper: asyncio.Task[None] | None = None
        self._generations = Generations()
        self.epoch = self._generations.first
        self._relay_origin = secrets.token_urlsafe(6)  # marks the relayed events we sent
        self._deliver: Deliver | None = None
        self._lost: Lost | None = None
        #: Per watched channel, the position of the last event handed to the hub.
        self._last: dict[str, Position] = {}
        self._listener: Listener | None = None

    # -- keys ----------------------------------------------------------------------------

    def _keys(self, channel: str) -> list[str]:
        return [f"{self.prefix}{{{channel}}}:meta", f"{self.prefix}{{{channel}}}:stream"]

    def _topic(self, channel: str) -> str:
        return f"{self.prefix}{{{channel}}}"

    async def _run(
        self, script: Any, channel: str, args: list[str | int], *, ttl_ms: int | None = None
    ) -> tuple[str, int]:
        """Run a script that may start ``channel``'s history, offering it a generation that
        never started it before (:class:`Generations`); returns ``(epoch, offset)``. A history
        it starts expires after ``ttl_ms`` (``max_age`` unless given)."""
        offer = self._generations.offer(channel)
        started = True  # unless Redis says otherwise: a failed call may have started it
        ttl = ttl_ms if ttl_ms is not None else self._ttl_ms
        try:
            epoch, offset, created = await self._call(
                script(self._keys(channel), [offer.generation, ttl, *args])
            )
            started = bool(created)
        finally:
            self._generations.done(channel, offer, started)
        return epoch.decode(), int(offset)

    # -- life cycle ----------------------------------------------------------------------

    async def start(self, deliver: Deliver, lost: Lost | None = None) -> None:
        """Check that Redis answers, then start the listener.

        Raises:
            BackendUnavailable: Redis does not answer ``PING``, or refuses the connection's
                set-up (a database number it does not have, a password it does not take).
        """
        await self._call(self._first_ping())
        self._deliver, self._lost = deliver, lost
        pool = self._redis.connection_pool
        self._listener = Listener(
            lambda: pool.connection_class(**pool.connection_kwargs),
            self._on_message,
            self._resync,
            where=redact(self.url),
        )
        await self._listener.start()
        try:
            await asyncio.wait_for(self._listener.up.wait(), self.command_timeout)
        except TimeoutError:
            await self.stop()
            raise BackendUnavailable(f"Redis at {redact(self.url)} does not answer") from None
        self._keeper = asyncio.get_running_loop().create_task(self._keep_watched())

    async def _first_ping(self) -> None:
        try:
            await self._redis.ping()
        except (redis_errors.ResponseError, redis_errors.AuthenticationError) as exc:
            # A setting to correct ("DB index is out of range", a wrong password), not an
            # outage to wait out: say what Redis said.
            detail = " ".join(str(exc).split())[:200]
            raise BackendUnavailable(
                f"Redis at {redact(self.url)} refused the connection: {detail}"
            ) from None

    async def _keep_watched(self) -> None:
        """Every third of ``read_ttl``, extend the meta hash of each channel this process
        watches to at least ``read_ttl`` (never shortening a published channel's), so that a
        quiet channel keeps its epoch while anyone listens, and goes once nobody does."""
        while True:
            await asyncio.sleep(self.read_ttl / 3)
            channels = list(self._last)
            try:
                async with self._redis.pipeline(transaction=False) as pipe:
                    for channel in channels:
                        await self._keep(
                            keys=self._keys(channel)[:1], args=[self._read_ttl_ms], client=pipe
                        )
                    await pipe.execute()
            except Exception as exc:  # an outage: the listener reports it, and resyncs
                log.debug("could not extend %d watched channel(s): %s", len(channels), exc)

    async def stop(self) -> None:
        self._deliver = None
        if self._keeper is not None:
            self._keeper.cancel()
            self._keeper = None
        if self._listener is not None:
            await self._listener.stop()
            self._listener = None
        if self._owns_client:
            await self._redis.aclose(close_connection_pool=True)

    # -- the contract --------------------------------------------------------------------

    async def append(
        self,
        channel: str,
        name: str,
        data_json: str,
        *,
        socket_id: str | None = None,
        user_id: str | None = None,
    ) -> Event:
        """Store and broadcast one event (the ``PUBLISH`` script).

        Raises:
            BackendUnavailable: Redis cannot be reached; the event may or may not be stored.
        """
        published_at = self._clock()
        body = encode_body(name, published_at, socket_id, user_id, data_json)
        args: list[str | int] = [self.limits.max_events, self._topic(channel), body]
        epoch, offset = await self._run(self._publish, channel, args)
        event = Event(
            channel,
            name,
            data_json,
            offset,
            epoch,
            published_at,
            socket_id=socket_id,
            user_id=user_id,
        )
        self._deliver_own(event)
        return event

    def _deliver_own(self, event: Event) -> None:
        """Hand this process's own event to local subscribers now, without waiting for its
        message, when that keeps the channel's order: it directly follows the last event
        delivered (or starts a new history). Otherwise its message delivers it, in order."""
        last = self._last.get(event.channel)
        if last is None:
            return  # no local subscriber
        if (event.epoch == last.epoch and event.offset == last.offset + 1) or (
            event.epoch != last.epoch and event.offset == 1
        ):
            self._on_event(event)

    async def relay(self, event: Event) -> None:
        """``PUBLISH`` a transient event (offset 0) without storing it."""
        body = encode_body(
            event.name, event.published_at, event.socket_id, event.user_id, event.data_json
        )
        # The origin marks the message as ours: delivered locally now, skipped when it returns.
        message = f"{self._relay_origin}\n0\n{body}"
        await self._call(self._redis.publish(self._topic(event.channel), message))
        if event.channel in self._last:
            self._on_event(event)

    async def after(self, channel: str, position: Position) -> list[Event] | None:
        """The events after ``position``, oldest first (``HMGET`` of the meta and ``XRANGE``
        of the stream from ``<offset + 1>-0``, in one ``MULTI``).

        Returns:
            ``None`` when ``position`` is of another epoch, beyond the tip, or some events
            after it are gone (trimmed by ``MAXLEN``, expired, or older than ``max_age``).

        Raises:
            BackendUnavailable: Redis cannot be reached.
        """
        meta, stream = self._keys(channel)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hmget(meta, "e", "o")
            pipe.xrange(stream, f"{position.offset + 1}-0", "+")
            (epoch, tip), entries = await self._call(pipe.execute())
        if epoch is None or epoch.decode() != position.epoch:
            return None  # that history is gone, or never was
        tip = int(tip)
        if position.offset > tip or position.offset < 0:
            return None
        if position.offset == tip:
            return []
        events = [
            decode_body(channel, position.epoch, int(id_.split(b"-")[0]), fields[b"b"].decode())
            for id_, fields in entries
        ]
        if not events or events[0].offset != position.offset + 1:
            return None  # trimmed (MAXLEN), or the stream expired
        if events[0].published_at < self._clock() - self.limits.max_age:
            return None  # older than the history window, though not yet expired by Redis
        return events

    async def position(self, channel: str) -> Position:
        """The channel's epoch and newest offset (the ``POSITION`` script, which gives a
        channel without history an empty one, and a lost history a new epoch).

        Raises:
            BackendUnavailable: Redis cannot be reached.
        """
        # A channel read but never published to gets a short-lived meta hash, kept alive
        # only while some process watches it (_keep_watched): a reader of random channel
        # names must not leave a key per name for an hour.
        position = Position(*await self._run(self._position, channel, [], ttl_ms=self._read_ttl_ms))
        listener = self._listener
        topic = self._topic(channel).encode()
        if channel not in self._last and listener is not None and listener.is_watched(topic):
            # Where this process's delivery of it starts: every local subscriber asked for
            # its position after watching, so none needs an event before this one.
            self._last[channel] = position
        return position

    async def channels(self) -> list[str]:
        """Channels with a meta hash under this prefix (``SCAN``, bounded by the keys)."""
        names = []
        start, end = len(self.prefix) + 1, -len("}:meta")
        pattern = f"{glob_escape(self.prefix)}{{*}}:meta"
        async for key in self._redis.scan_iter(match=pattern, count=1000):
            names.append(key.decode()[start:end])
        return names

    # -- delivery ------------------------------------------------------------------------

    async def watch(self, channel: str) -> None:
        """``SUBSCRIBE`` to the channel's pub/sub channel; returns once Redis confirmed.

        Raises:
            BackendUnavailable: the listener is not connected, or no confirmation came within
                ``command_timeout`` seconds.
        """
        if self._listener is None:
            raise BackendUnavailable("the Redis backend is not started")
        await self._listener.watch(self._topic(channel).encode(), within=self.command_timeout)

    def unwatch(self, channel: str) -> None:
        if self._listener is not None:
            self._listener.unwatch(self._topic(channel).encode())
        self._last.pop(channel, None)

    def _on_message(self, topic: bytes, data: bytes) -> None:
        if self._listener is None or not self._listener.is_watched(topic):
            return  # in flight when the channel was unwatched
        channel = topic.decode()[len(self.prefix) + 1 : -1]
        epoch, offset, body = data.decode().split("\n", 2)
        if offset == "0" and epoch == self._relay_origin:
            return  # our own relayed event, delivered when it was sent
        self._on_event(decode_body(channel, epoch, int(offset), body))

    def _on_event(self, event: Event) -> None:
        """Hand ``event`` to the hub unless it was handed over already."""
        if not event.transient:
            last = self._last.get(event.channel)
            if last is not None and last.epoch == event.epoch and event.offset <= last.offset:
                return  # delivered already (by the resync that preceded its message)
            self._last[event.channel] = Position(event.epoch, event.offset)
        if self._deliver is not None:
            self._deliver(event)

    async def _resync(self) -> None:
        """After a reconnect: deliver what each watched channel missed, or report it lost."""
        filled, lost = 0, []
        for channel, last in list(self._last.items()):
            missed = await self.after(channel, last)
            if missed is None:
                lost.append(channel)
                self._last[channel] = await self.position(channel)
                continue
            for event in missed:
                self._on_event(event)
            filled += len(missed)
        if self._lost is not None:
            # Once the listener is up again (it is, when the loop next runs callbacks): the
            # channels' subscribers resume at once, and are told reset.
            for channel in lost:
                asyncio.get_running_loop().call_soon(self._lost, channel)
        if filled or lost:
            log.warning(
                "Redis resync: %d missed event(s) delivered from history; %d channel(s) lost "
                "history and were reset",
                filled,
                len(lost),
            )

    # -- health --------------------------------------------------------------------------

    def health(self) -> dict[str, object]:
        """``{"kind": "redis", "state": "ok" | "down", "url" (no password), "prefix",
        "watched_channels", "since" (Unix time of the last change of state), "reconnects",
        "last_error" (while down)}``."""
        listener = self._listener
        up = listener is not None and listener.up.is_set()
        report: dict[str, Any] = {
            "kind": "redis",
            "state": "ok" if up else "down",
            "url": redact(self.url),
            "prefix": self.prefix,
            "watched_channels": len(self._last),
        }
        if listener is not None:
            report["since"] = round(listener.since, 3)
            report["reconnects"] = listener.reconnects
            if listener.last_error:
                report["last_error"] = listener.last_error
        return report

    async def wait_available(self) -> None:
        if self._listener is not None:
            await self._listener.up.wait()

    def check_available(self) -> None:
        # The listener's connection is the process's view of Redis: it drops within a moment
        # of Redis going away, and comes back with it.
        listener = self._listener
        if listener is not None and not listener.up.is_set():
            raise BackendUnavailable(f"Redis at {redact(self.url)} is unavailable", retry_after=1)

    async def _call(self, awaitable: Any) -> Any:
        try:
            return await awaitable
        except Exception as exc:
            if not unavailable(exc):
                raise
            raise BackendUnavailable(
                f"Redis at {redact(self.url)} is unavailable ({type(exc).__name__})",
                retry_after=1,
            ) from exc
