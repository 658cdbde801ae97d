"""Making Redis clients, and the wire format of the Redis backend's events.

:func:`connect` is the one place this package builds a Redis client (the hub's backend, and
whatever else several processes share through Redis), so that every client has the same
bounded pool and no automatic retries.
"""

from __future__ import annotations

import json
import secrets
import urllib.parse
from collections import Counter
from typing import NamedTuple

import redis.asyncio as aioredis
from redis import exceptions as redis_errors
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from ...core.events import Event
from ...core.redact import redact_url

DEFAULT_PREFIX = "dashboard:"
#: Connections in the command pool; a caller waits up to ``pool_timeout`` for a free one.
DEFAULT_MAX_CONNECTIONS = 32
_NUMBERS = "0123456789abcdefghijklmnopqrstuvwxyz"


def check_url(url: str) -> str:
    """Return ``url`` if it names a Redis server: ``redis://[[user]:password@]host[:port][/db]``,
    ``rediss://`` (TLS) or ``unix:///path.sock[?db=N]``.

    Raises:
        ValueError: a one-line reason.
    """
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("redis", "rediss", "unix"):
        raise ValueError(f"{redact(url)!r} is not a redis://, rediss:// or unix:// URL")
    if parts.scheme != "unix" and not parts.hostname:
        raise ValueError(f"{redact(url)!r} names no host")
    try:
        parts.port  # noqa: B018 (raises for a port that is not a number or out of range)
    except ValueError:
        raise ValueError(f"{redact(url)!r} has a bad port") from None
    db = parts.path.strip("/") if parts.scheme != "unix" else ""
    if db and not (db.isascii() and db.isdigit()):
        raise ValueError(f"{redact(url)!r}: the database must be a number (/0, /1 ...)")
    return url


def redact(url: str) -> str:
    """``url`` without its passwords (before the ``@`` or ``?password=``), for logs, health
    and errors."""
    return redact_url(url)


def connect(
    url: str,
    *,
    max_connections: int = DEFAULT_MAX_CONNECTIONS,
    pool_timeout: float = 5.0,
    socket_timeout: float = 5.0,
) -> aioredis.Redis:
    """The one way this package makes a Redis client (the backend, presence, limits).

    A ``redis.asyncio.Redis`` over a :class:`redis.asyncio.BlockingConnectionPool` of at most
    ``max_connections`` connections: under fan-out load a caller waits up to ``pool_timeout``
    seconds for a free one instead of opening more. Commands are not retried (a publish must
    not be stored twice); a broken connection raises ``redis.exceptions.ConnectionError``.

    Raises:
        ValueError: ``url`` is not a Redis URL (:func:`check_url`).
    """
    pool = aioredis.BlockingConnectionPool.from_url(
        check_url(url),
        max_connections=max_connections,
        timeout=pool_timeout,
        socket_timeout=socket_timeout,
        socket_connect_timeout=socket_timeout,
        retry=Retry(NoBackoff(), 0),
        protocol=2,  # RESP2: pub/sub messages are plain replies on the listener's connection
    )
    return aioredis.Redis(connection_pool=pool)


def encode_body(
    name: str, published_at: float, socket_id: str | None, user_id: str | None, data_json: str
) -> str:
    """``<header JSON>\\n<data JSON>``: what a stream entry and a message carry after the
    epoch and offset. The header has no line break (JSON escapes them)."""
    return f"{json.dumps([name, published_at, socket_id, user_id])}\n{data_json}"


def decode_body(channel: str, epoch: str, offset: int, body: str) -> Event:
    header, _, data_json = body.partition("\n")
    name, published_at, socket_id, user_id = json.loads(header)
    return Event(
        channel, name, data_json, offset, epoch, published_at, socket_id=socket_id, user_id=user_id
    )


def glob_escape(text: str) -> str:
    """``text`` as a literal in a ``SCAN MATCH`` pattern."""
    return "".join(f"\\{c}" if c in "*?[]\\" else c for c in text)


def base36(n: int) -> str:
    """``n`` in lowercase base 36; ``""`` for 0."""
    digits = ""
    while n:
        n, digit = divmod(n, 36)
        digits = _NUMBERS[digit] + digits
    return digits


def unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` means Redis cannot be reached now (rather than a bad command)."""
    if isinstance(exc, redis_errors.RedisError):
        return isinstance(
            exc,
            redis_errors.ConnectionError
            | redis_errors.TimeoutError
            | redis_errors.BusyLoadingError,
        )
    return isinstance(exc, OSError)  # includes a socket's TimeoutError


class Offer(NamedTuple):
    """A generation offered to one script, with the round's bookkeeping it belongs to."""

    generation: str
    variant: int
    floor: dict[str, int]
    running: dict[str, Counter[int]]


class Generations:
    """Which generation a script may start a channel's history in (see :mod:`.redis_scripts`).

    One generation per *round* is shared by every channel this instance starts, so that a
    stream of many channels gets a short id (positions in one epoch cost only their offset).
    A channel that may have started in the round's generation already (or has a script in
    flight offering it) is offered a variant ``<generation>-<n>`` that no script for it was
    offered before. So a history recreated after a loss never gets an epoch the channel had
    before, even when Redis forgot everything. Generations are this instance's random token
    (8 characters), the round in base 36 (at most 6) and the variant (at most ``-`` and 2).
    """

    def __init__(self) -> None:
        self._token = self.first = self._generation = secrets.token_urlsafe(6)
        self._round = 0
        #: Per channel: variants of this round that may have started it (all below the value).
        self._floor: dict[str, int] = {}
        #: Per channel: variants offered by scripts in flight.
        self._running: dict[str, Counter[int]] = {}

    def offer(self, channel: str) -> Offer:
        """The generation for a script on ``channel`` (``offer.generation``); hand the offer
        back to :meth:`done` when the script ends."""
        if len(self._floor) >= 10_000:
            self._new_round()  # bounds the bookkeeping
        in_flight = self._running.get(channel, Counter())
        variant = max(self._floor.get(channel, 0), max(in_flight, default=-1) + 1)
        if variant >= 36**2:
            self._new_round()
            in_flight, variant = Counter(), 0
        self._running[channel] = in_flight
        in_flight[variant] += 1
        generation = self._generation + (f"-{base36(variant)}" if variant else "")
        return Offer(generation, variant, self._floor, self._running)

    def done(self, channel: str, offer: Offer, started: bool) -> None:
        """The script ``offer`` was made for ended; ``started``: it may have taken it.

        An offer of an earlier round updates that round's bookkeeping, which nothing reads
        any more: its generation is never offered again."""
        in_flight = offer.running[channel]
        in_flight[offer.variant] -= 1
        if not in_flight[offer.variant]:
            del in_flight[offer.variant]
        if not in_flight:
            del offer.running[channel]
        if started:
            offer.floor[channel] = max(offer.floor.get(channel, 0), offer.variant + 1)

    def _new_round(self) -> None:
        self._round += 1
        if self._round >= 36**6:
            self._token, self._round = secrets.token_urlsafe(6), 1
        self._generation = self._token + base36(self._round)
        self._floor, self._running = {}, {}
