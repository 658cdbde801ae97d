"""Bounds on what one caller can make the server do, and the rate limiters that enforce them.

Every bound is refused with a 4xx (or a Pusher protocol error) that names it. Limits keyed by a
user alone can be multiplied by minting users, and guests mint themselves; so guest creation,
and what guests may spend together, is also counted per client address.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Protocol

from ..core.user_limits import KeyedRateLimiter
from .errors import ApiError


@dataclass(frozen=True)
class Limits:
    """The server's bounds; ``DashboardServer(limits=Limits(...))`` changes them.

    Attributes:
        max_channels: channels one SSE stream or one Pusher socket may follow at once
            (Centrifugo allows 128 by default, Ably 200).
        json_body_bytes: largest JSON body of the API routes, in bytes (the Pusher HTTP API
            allows 256 KB, as Pusher does).
        json_depth: deepest nesting of arrays and objects in a JSON body.
        new_guests_per_minute, new_guests_burst: display-name identities
            (``POST /api/identity``) created per client address.
        chat_per_minute, chat_burst: ``POST /api/chat`` requests per user.
        guest_chat_per_minute, guest_chat_burst: ``POST /api/chat`` requests of all guests
            (self-named visitors and anonymous page sessions) together, per client address.
        login_per_minute, login_burst: login attempts (``POST /login``) per client address.
        messages_per_minute, messages_burst: chat messages posted, edited or deleted
            (``/api/rooms/{room}/messages...``) per user.
        new_rooms_per_minute, new_rooms_burst: rooms created (by a first message) per user.
        pages_per_minute, pages_burst: page loads (``GET`` of the dashboard's page, each of
            which builds a Panel session, about 0.5 s of CPU) per client address, in this
            process: the CPU they cost is the process's own.
        body_timeout: seconds a client has to send a request body it announced; a client that
            stalls (a "slowloris") is disconnected instead of holding the connection.
        idle_timeout: seconds a connection may wait for (the rest of) a request's headers.
        dead_peer_timeout: seconds a stream's data may stay unacknowledged before the
            connection is dropped (``TCP_USER_TIMEOUT``, Linux). With the heartbeat, a
            subscriber whose network vanished is dropped within ``heartbeat`` plus this, about
            the Pusher socket's bound (an activity timeout of 120 s plus 30 s for the pong).
    """

    max_channels: int = 100
    json_body_bytes: int = 64 * 1024
    json_depth: int = 32
    new_guests_per_minute: float = 10.0
    new_guests_burst: int = 30
    chat_per_minute: float = 20.0
    chat_burst: int = 10
    guest_chat_per_minute: float = 30.0
    guest_chat_burst: int = 15
    login_per_minute: float = 10.0
    login_burst: int = 10
    messages_per_minute: float = 60.0
    messages_burst: int = 20
    new_rooms_per_minute: float = 2.0
    new_rooms_burst: int = 5
    pages_per_minute: float = 30.0
    pages_burst: int = 20
    body_timeout: float = 30.0
    idle_timeout: float = 120.0
    dead_peer_timeout: float = 120.0

    def __post_init__(self) -> None:
        for name in ("max_channels", "json_body_bytes", "json_depth"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        for name in ("body_timeout", "idle_timeout", "dead_peer_timeout"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be a positive number of seconds")


class RateLimiter(Protocol):
    """A per-key limit: :class:`KeyedRateLimiter` (this process) or one shared by a cluster
    (:class:`~dashboard.hub.redis_limits.RedisRateLimiter`, whose ``acquire`` is a coroutine)."""

    rate: float
    burst: int

    def acquire(self, key: str) -> float | Awaitable[float]: ...


@dataclass
class RateLimiters:
    """The live token buckets of one server, built from its :class:`Limits`.

    Each is replaced by a limiter shared by every process of a cluster when the server has
    Redis (``DashboardServer(redis_url=...)``): N processes then allow what one would.
    """

    limits: Limits = field(default_factory=Limits)
    chat: RateLimiter = field(init=False)
    guest_chat: RateLimiter = field(init=False)
    new_guests: RateLimiter = field(init=False)
    login: RateLimiter = field(init=False)
    messages: RateLimiter = field(init=False)
    new_rooms: RateLimiter = field(init=False)
    #: Never shared through Redis: a page's cost is the CPU of the process that builds it.
    pages: KeyedRateLimiter = field(init=False)

    def __post_init__(self) -> None:
        limits = self.limits
        self.new_guests = KeyedRateLimiter(
            limits.new_guests_per_minute / 60, limits.new_guests_burst
        )
        self.chat = KeyedRateLimiter(limits.chat_per_minute / 60, limits.chat_burst)
        self.guest_chat = KeyedRateLimiter(
            limits.guest_chat_per_minute / 60, limits.guest_chat_burst
        )
        self.login = KeyedRateLimiter(limits.login_per_minute / 60, limits.login_burst)
        self.messages = KeyedRateLimiter(limits.messages_per_minute / 60, limits.messages_burst)
        self.new_rooms = KeyedRateLimiter(limits.new_rooms_per_minute / 60, limits.new_rooms_burst)
        self.pages = KeyedRateLimiter(limits.pages_per_minute / 60, limits.pages_burst)


async def acquire(limiter: RateLimiter, key: str) -> float:
    """Take one token for ``key`` from either kind of limiter.

    Returns:
        0.0 when allowed; otherwise the seconds until it would be (nothing is taken).
    """
    wait = limiter.acquire(key)
    if inspect.isawaitable(wait):
        wait = await wait
    return wait


async def take(limiter: RateLimiter, key: str, what: str) -> None:
    """Take one token for ``key``, or refuse with 429 and ``Retry-After``.

    Raises:
        ApiError: 429 ``rate_limited``, saying which limit and when to retry.
    """
    wait = await acquire(limiter, key)
    if not wait:
        return
    raise too_many(limiter, wait, what)


def too_many(limiter: RateLimiter, wait: float, what: str) -> ApiError:
    """The 429 for a limit that said wait ``wait`` seconds."""
    seconds = math.ceil(wait)
    per_minute = round(limiter.rate * 60, 1)
    return ApiError(
        429,
        "rate_limited",
        f"too many {what}: at most {limiter.burst} at once and {per_minute:g} per minute; "
        f"retry in {seconds} s",
        {"Retry-After": str(seconds)},
    )
