"""Presence across processes, in Redis: one member per user however many processes they use.

Layout, under the key prefix ``P`` (``dashboard:`` by default):

* ``P presence:<channel>``, a hash per channel: ``m:<user>`` holds the member's connections,
  ``{"s": join_seq, "c": {"<process>:<socket>": deadline_ms}}``, ``i:<user>`` the member's
  ``user_info`` as the JSON text it was given, and ``seq`` the channel's last sequence number;
* ``P presence:events``, the PUB/SUB channel every roster change is published on, from inside
  the script that made it, so its order is the order of the changes.

Every transition is one Lua script, atomic in Redis: the first connection of a user adds the
member and publishes ``member_added``; the last connection leaving removes it and publishes
``member_removed``. Sequence numbers come from Redis' clock (microseconds, and at least one
more than the last), so they keep increasing even after Redis restarts empty.

Expiry: each connection carries a deadline two thirds of ``timeout`` ahead, which its process
pushes forward every third of ``timeout`` (the heartbeat, which also re-adds entries Redis
lost). Every script first sweeps the channel's expired connections, so a crashed process's
members are removed (and ``member_removed`` published) within ``timeout`` seconds by whichever
process touches the channel next; every live process touches its channels at each heartbeat.

Redis restarting or a lost PUB/SUB connection: each process keeps the roster of the channels it
has sockets on, so a member its heartbeat puts back is not news to anyone, and once its
listener is subscribed again (and every live process had a heartbeat to put its members back)
it compares that roster with Redis' and tells its sockets the difference: what changed while
it could not hear.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from ..core.backoff import backoff_delays
from ..core.presence import MAX_PRESENCE_MEMBERS, PresenceChannelFull, PresenceError
from .presence import Joined, Notify, Presence, RosterChange, unavailable
from .redis_presence_scripts import HEARTBEAT, JOIN, LEAVE, MEMBERS, RESYNC

log = logging.getLogger("dashboard.hub.presence")

#: Seconds after which a silent process's members are removed (``--presence-timeout``).
DEFAULT_PRESENCE_TIMEOUT = 15.0
#: Longest wait, when stopping, for queued leaves to reach Redis.
STOP_WAIT = 2.0
#: Cap on the PUB/SUB listener's reconnect delay, in seconds.
LISTENER_MAX_DELAY = 2.0


@dataclass
class _Local:
    """A socket of this process on a channel."""

    user_id: str
    info_json: str


@dataclass
class _Op:
    run: Callable[[], Awaitable[Any]]
    done: asyncio.Future[Any] | None = field(default=None)


class RedisPresence(Presence):
    """Presence rosters shared by every process on the same Redis and key prefix.

    Args:
        redis: a ``redis.asyncio.Redis`` client (``decode_responses`` off or on).
        prefix: prefix of every key and PUB/SUB channel (one per cluster).
        timeout: seconds within which the members of a process that stopped heartbeating
            (crashed, or cut off from Redis) are removed everywhere.
        max_members: distinct users per channel.

    The Redis operations of one process run one at a time, in the order they were made, so
    that a socket's ``leave`` never overtakes its ``join`` and a heartbeat never re-adds a
    socket that left. Every process is told every change (one PUB/SUB channel per cluster);
    the server passes it on to its own sockets on that channel, if any.
    """

    def __init__(
        self,
        redis: Any,
        *,
        prefix: str = "dashboard:",
        timeout: float = DEFAULT_PRESENCE_TIMEOUT,
        max_members: int = MAX_PRESENCE_MEMBERS,
    ) -> None:
        if not timeout > 0:
            raise ValueError("the presence timeout must be a positive number of seconds")
        self.redis = redis
        self.prefix = prefix
        self.timeout = timeout
        self.max_members = max_members
        #: Names this process' connections in Redis.
        self.process_id = secrets.token_hex(6)
        self.events_channel = f"{prefix}presence:events"
        self._ttl_ms = int(timeout * 2000 / 3)
        self._key_expiry_ms = int(timeout * 3000)
        self._local: dict[str, dict[str, _Local]] = {}  # channel -> socket -> entry
        self._sockets: dict[str, set[str]] = {}  # socket -> channels
        # The roster of each channel this process has sockets on, and the sequence number it
        # reflects: repeated news (a heartbeat re-adding a member Redis lost) is not news, and
        # after missed PUB/SUB messages the difference to Redis' roster is (_resync).
        self._known: dict[str, dict[str, Any]] = {}
        self._known_seq: dict[str, int] = {}
        self._notify: Notify | None = None
        self._ops: asyncio.Queue[_Op] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self._scripts: dict[str, Any] = {}
        #: Set while the PUB/SUB listener is subscribed (for health).
        self.listening = asyncio.Event()
        self._attempted = asyncio.Event()

    def _key(self, channel: str) -> str:
        return f"{self.prefix}presence:{channel}"

    def _conn(self, socket_id: str) -> str:
        return f"{self.process_id}:{socket_id}"

    async def start(self, notify: Notify) -> None:
        if self._tasks:
            return
        self._notify = notify
        for name, source in (
            ("join", JOIN),
            ("leave", LEAVE),
            ("heartbeat", HEARTBEAT),
            ("members", MEMBERS),
            ("resync", RESYNC),
        ):
            self._scripts[name] = self.redis.register_script(source)
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._listen()),
            loop.create_task(self._work()),
            loop.create_task(self._heartbeat()),
        ]
        # Changes made after start() returns must reach this process: wait for the listener's
        # first attempt (with Redis down, it keeps retrying in the background).
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._attempted.wait(), 5)

    async def stop(self) -> None:
        if self._tasks:
            # Leaves of sockets closed by the shutdown reach Redis now rather than expire.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._ops.join(), STOP_WAIT)
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._notify = None
        self.listening.clear()

    # -- the interface -------------------------------------------------------------------

    async def join(
        self, channel: str, socket_id: str, user_id: str, user_info: Any = None
    ) -> Joined:
        on = self._local.get(channel, {}).get(socket_id)
        if on is not None and on.user_id != user_id:
            raise PresenceError(f"socket {socket_id} is already on {channel} as {on.user_id!r}")
        info_json = json.dumps(user_info, separators=(",", ":"), ensure_ascii=False)
        args = [channel, user_id, self._conn(socket_id), info_json, self._ttl_ms]
        args += [self.max_members, self._key_expiry_ms]
        keys = [self._key(channel), self.events_channel]
        try:
            reply = await self._submit(lambda: self._scripts["join"](keys=keys, args=args))
        except Exception as exc:
            raise unavailable(exc, "presence") from None
        outcome = _text(reply[0])
        if outcome == "full":
            raise PresenceChannelFull(
                f"{channel} already has {_text(reply[1])} members; the limit is {self.max_members}"
            )
        self._local.setdefault(channel, {})[socket_id] = _Local(user_id, info_json)
        self._sockets.setdefault(socket_id, set()).add(channel)
        flat = reply[2]
        members = {_text(flat[n]): json.loads(_text(flat[n + 1])) for n in range(0, len(flat), 2)}
        seq = int(_text(reply[1]))
        if seq >= self._known_seq.get(channel, -1):
            self._known[channel], self._known_seq[channel] = dict(members), seq
        return Joined(outcome == "added", seq, members)

    def leave(self, channel: str, socket_id: str) -> None:
        entry = self._local.get(channel, {}).pop(socket_id, None)
        if entry is None:
            return
        if not self._local[channel]:
            del self._local[channel]
            self._known.pop(channel, None)
            self._known_seq.pop(channel, None)
        channels = self._sockets.get(socket_id)
        if channels is not None:
            channels.discard(channel)
            if not channels:
                del self._sockets[socket_id]
        args = [channel, entry.user_id, self._conn(socket_id)]
        keys = [self._key(channel), self.events_channel]
        self._ops.put_nowait(_Op(lambda: self._scripts["leave"](keys=keys, args=args)))

    def leave_all(self, socket_id: str) -> None:
        for channel in list(self._sockets.get(socket_id, ())):
            self.leave(channel, socket_id)

    def user_id(self, channel: str, socket_id: str) -> str | None:
        entry = self._local.get(channel, {}).get(socket_id)
        return entry.user_id if entry else None

    async def members(self, channel: str) -> dict[str, Any]:
        keys = [self._key(channel), self.events_channel]
        try:
            flat = await self._scripts["members"](keys=keys, args=[channel])
        except Exception as exc:
            raise unavailable(exc, "presence") from None
        return {_text(flat[n]): json.loads(_text(flat[n + 1])) for n in range(0, len(flat), 2)}

    def health(self) -> dict[str, Any]:
        return {
            "kind": "redis",
            "state": "ok" if self.listening.is_set() else "down",
            "process": self.process_id,
            "timeout_s": self.timeout,
            "channels": len(self._local),
        }

    # -- tasks ----------------------------------------------------------------------------

    async def _submit(self, run: Callable[[], Awaitable[Any]]) -> Any:
        if not self._tasks:
            raise RuntimeError("RedisPresence is not started")
        done: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._ops.put_nowait(_Op(run, done))
        return await done

    async def _work(self) -> None:
        """Run queued operations one at a time, in order (each is one round trip)."""
        while True:
            op = await self._ops.get()
            try:
                result = await op.run()
            except Exception as exc:  # Redis down: the caller hears it; leaves are logged
                if op.done is not None:
                    if not op.done.done():
                        op.done.set_exception(exc)
                else:
                    log.warning("presence update failed (its entry expires instead): %s", exc)
            else:
                if op.done is not None and not op.done.done():
                    op.done.set_result(result)
            finally:
                self._ops.task_done()

    async def _heartbeat(self) -> None:
        interval = self.timeout / 3
        while True:
            await asyncio.sleep(interval)
            beats = [self._submit(functools.partial(self._beat, ch)) for ch in self._local]
            failed = [r for r in await asyncio.gather(*beats, return_exceptions=True) if r]
            failures = [r for r in failed if isinstance(r, Exception)]
            if failures:
                log.warning(
                    "presence heartbeat failed on %d channel(s): %s", len(failures), failures[0]
                )

    def _beat(self, channel: str) -> Awaitable[Any]:
        # Built when it runs, after every earlier leave: never re-adds a socket that left.
        args: list[Any] = [channel, self._ttl_ms, self.max_members, self._key_expiry_ms]
        for socket_id, entry in self._local.get(channel, {}).items():
            args += [entry.user_id, self._conn(socket_id), entry.info_json]
        keys = [self._key(channel), self.events_channel]
        return self._scripts["heartbeat"](keys=keys, args=args)

    async def _listen(self) -> None:
        """Tell ``notify`` about every roster change published by any process."""
        delays = backoff_delays(0.1, LISTENER_MAX_DELAY)
        missed = False
        while True:
            pubsub = self.redis.pubsub()
            try:
                await pubsub.subscribe(self.events_channel)
                while True:
                    message = await pubsub.get_message(ignore_subscribe_messages=False, timeout=1)
                    if message is None:
                        continue
                    if message["type"] == "subscribe":
                        self.listening.set()
                        self._attempted.set()
                        delays = backoff_delays(0.1, LISTENER_MAX_DELAY)
                        if missed:
                            missed = False
                            resync = asyncio.get_running_loop().create_task(self._resync_all())
                            self._tasks = [t for t in self._tasks if not t.done()] + [resync]
                    elif message["type"] == "message":
                        self._received(message["data"])
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # Said once an outage, not once a retry: the backend logs the outage too.
                was_up = self.listening.is_set()
                missed = was_up or missed
                self.listening.clear()
                self._attempted.set()
                say = log.warning if was_up else log.debug
                say("presence listener lost Redis (%s); reconnecting", exc)
                await asyncio.sleep(next(delays))
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()

    def _received(self, data: bytes | str) -> None:
        try:
            message = json.loads(data)
            channel, seq, user_id = message["ch"], int(message["seq"]), message["u"]
        except (ValueError, KeyError, TypeError):
            log.warning("ignoring a malformed presence message %r", data[:200])
            return
        socket_id = None
        conn = message.get("c")
        if isinstance(conn, str) and conn.startswith(f"{self.process_id}:"):
            socket_id = conn.split(":", 1)[1]
        change = RosterChange(
            channel, seq, user_id, bool(message.get("a")), message.get("i"), socket_id
        )
        self._tell(change, readd=bool(message.get("r")))

    def _tell(self, change: RosterChange, readd: bool = False) -> None:
        """Keep the roster this process knows up to date, and pass the change on, unless it is
        a member a heartbeat put back (``readd``) whom this process never saw leave."""
        channel, known = change.channel, self._known.get(change.channel)
        if known is not None:
            news = not (readd and change.user_id in known)
            if change.seq > self._known_seq[channel]:  # older news is in the roster already
                self._known_seq[channel] = change.seq
                if change.added:
                    known[change.user_id] = change.user_info
                else:
                    known.pop(change.user_id, None)
            if not news:
                return
        if self._notify is not None:
            self._notify(change)

    async def _resync_all(self) -> None:
        """After missed PUB/SUB messages: tell what changed meanwhile, once every live process
        had a heartbeat to put back what Redis may have lost (no flicker of those members)."""
        await asyncio.sleep(self.timeout / 3 + 0.05)
        for channel in list(self._local):
            try:
                await self._submit(functools.partial(self._beat, channel))
                flat = await self._submit(functools.partial(self._resync, channel))
            except Exception as exc:
                log.warning("presence resync of %s failed: %s", channel, exc)
                continue
            for n in range(0, len(flat), 4):
                added, user_id = int(flat[n]) == 1, _text(flat[n + 1])
                info = json.loads(_text(flat[n + 2])) if added else None
                self._tell(RosterChange(channel, int(_text(flat[n + 3])), user_id, added, info))

    def _resync(self, channel: str) -> Awaitable[Any]:
        # Built when it runs: the members known after every message received so far.
        args = [channel, *self._known.get(channel, {})]
        keys = [self._key(channel), self.events_channel]
        return self._scripts["resync"](keys=keys, args=args)


def _text(value: bytes | str | int) -> str:
    if isinstance(value, bytes):
        return value.decode()
    return str(value)
