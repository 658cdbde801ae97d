"""Every backend runs the same hub tests through these parametrised fixtures.

A backend joins by adding a :class:`BackendKind` to :data:`BACKENDS`: how to build one with
given history bounds, what "restart" means for it (the conformance suite checks that a
resume across a restart says ``reset``), and how a channel's history is evicted.

The Redis kind runs against the Redis at ``$DASHBOARD_TEST_REDIS`` (``redis://127.0.0.1:6379/0``
by default), under a key prefix of its own per test, whose keys it deletes afterwards; it skips
without Redis, except under CI=true, where it fails.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import pytest

from dashboard.core.history import HistoryLimits
from dashboard.hub import Backend, Hub, MemoryBackend
from tests.conftest import skip_or_fail
from tests.redis_server import SHARED_REDIS_URL, unique_prefix

REDIS_URL = SHARED_REDIS_URL


@dataclass(frozen=True)
class BackendKind:
    """How the shared suite builds and restarts one kind of backend.

    Attributes:
        make: ``make(limits, max_channels, clock)``, a fresh backend.
        restart: ``restart(old, limits, max_channels, clock)``, the backend that serves in
            place of ``old`` once the history it kept is gone (for memory: a new one, empty,
            as after a server restart; for Redis: one on the same keys, after Redis restarted
            empty).
        evict: ``await evict(hub, channel)`` loses ``channel``'s history the way the backend
            does under pressure (memory: too many channels; Redis: ``maxmemory`` eviction of
            its stream key).
    """

    make: Callable[[HistoryLimits, int, Callable[[], float]], Backend]
    restart: Callable[[Backend, HistoryLimits, int, Callable[[], float]], Backend]
    evict: Callable[[Hub, str], Awaitable[None]]


def _memory(limits: HistoryLimits, max_channels: int, clock: Callable[[], float]) -> Backend:
    return MemoryBackend(limits, max_channels=max_channels, clock=clock)


async def _evict_from_memory(hub: Hub, channel: str) -> None:
    # The scenario: publishes to more other channels than the backend keeps.
    assert isinstance(hub.backend, MemoryBackend)
    for n in range(hub.backend.max_channels + 10):
        await hub.publish(f"other-{n}", "noise", n)


class RedisKind:
    """Redis backends under one key prefix per test; :meth:`cleanup` deletes their keys."""

    def __init__(self) -> None:
        import redis

        self.prefix = unique_prefix()
        self.sync = redis.Redis.from_url(REDIS_URL)
        try:
            self.sync.ping()
        except redis.RedisError as exc:
            skip_or_fail(f"no Redis at {REDIS_URL} ({exc}); set DASHBOARD_TEST_REDIS")

    def make(self, limits: HistoryLimits, max_channels: int, clock: Callable[[], float]):
        from dashboard.hub.backends.redis import RedisBackend

        return RedisBackend(REDIS_URL, prefix=self.prefix, limits=limits, clock=clock)

    def restart(self, old: Backend, limits, max_channels, clock) -> Backend:
        self.cleanup()  # what Redis restarted without persistence has: nothing
        return self.make(limits, max_channels, clock)

    async def evict(self, hub: Hub, channel: str) -> None:
        self.sync.delete(f"{self.prefix}{{{channel}}}:stream")

    def cleanup(self) -> None:
        keys = list(self.sync.scan_iter(match=f"{self.prefix}*", count=1000))
        if keys:
            self.sync.delete(*keys)

    def kind(self) -> BackendKind:
        return BackendKind(make=self.make, restart=self.restart, evict=self.evict)


BACKENDS = ("memory", "redis")


class Clock:
    """A wall clock the test moves by hand (history expires by age)."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=BACKENDS)
def backend_kind(request):
    if request.param == "memory":
        yield BackendKind(
            make=_memory, restart=lambda old, *args: _memory(*args), evict=_evict_from_memory
        )
        return
    redis_kind = RedisKind()
    yield redis_kind.kind()
    redis_kind.cleanup()
    redis_kind.sync.close()


@pytest.fixture
async def make_hub(backend_kind):
    """``make_hub(max_events=, max_age=, queue_size=, max_channels=, clock=)``: a Hub on the
    backend under test; ``make_hub.restart(hub)`` gives the hub a restarted server would have."""
    made: list[Hub] = []

    def factory(
        max_events=1000, max_age=3600.0, queue_size=1000, max_channels=10_000, clock=time.time
    ):
        limits = HistoryLimits(max_events, max_age)
        backend = backend_kind.make(limits, max_channels, clock)
        hub = Hub(backend, queue_size=queue_size)
        hub._test_args = (limits, max_channels, clock)  # type: ignore[attr-defined]
        made.append(hub)
        return hub

    def restart(hub: Hub) -> Hub:
        backend = backend_kind.restart(hub.backend, *hub._test_args)  # type: ignore[attr-defined]
        restarted = Hub(backend, queue_size=hub.queue_size)
        restarted._test_args = hub._test_args  # type: ignore[attr-defined]
        made.append(restarted)
        return restarted

    async def evict(hub: Hub, channel: str) -> None:
        await backend_kind.evict(hub, channel)

    factory.restart = restart  # type: ignore[attr-defined]
    factory.evict = evict  # type: ignore[attr-defined]
    yield factory
    for hub in made:
        await hub.stop()
