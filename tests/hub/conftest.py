"""Every backend runs the same hub tests through these parametrised fixtures.

A backend joins by adding a :class:`BackendKind` to :data:`BACKENDS`: how to build one with
given history bounds, and what "restart" means for it (the conformance suite checks that a
resume across a restart says ``reset``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from dashboard.core.history import HistoryLimits
from dashboard.hub import Backend, Hub, MemoryBackend


@dataclass(frozen=True)
class BackendKind:
    """How the shared suite builds and restarts one kind of backend.

    Attributes:
        make: ``make(limits, max_channels, clock)``, a fresh backend.
        restart: ``restart(old, limits, max_channels, clock)``, the backend a restarted
            server would use in place of ``old`` (for memory: a new one, empty).
    """

    make: Callable[[HistoryLimits, int, Callable[[], float]], Backend]
    restart: Callable[[Backend, HistoryLimits, int, Callable[[], float]], Backend]


def _memory(limits: HistoryLimits, max_channels: int, clock: Callable[[], float]) -> Backend:
    return MemoryBackend(limits, max_channels=max_channels, clock=clock)


BACKENDS = {
    "memory": BackendKind(make=_memory, restart=lambda old, *args: _memory(*args)),
}


class Clock:
    """A wall clock the test moves by hand (history expires by age)."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=sorted(BACKENDS))
def backend_kind(request) -> BackendKind:
    return BACKENDS[request.param]


@pytest.fixture
def make_hub(backend_kind):
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

    factory.restart = restart  # type: ignore[attr-defined]
    yield factory
