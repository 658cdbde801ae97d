"""Every backend runs the same hub tests through this parametrised fixture."""

import pytest

from dashboard.core.history import HistoryLimits
from dashboard.hub import Hub, MemoryBackend

BACKENDS = {"memory": lambda limits: MemoryBackend(limits)}


@pytest.fixture(params=sorted(BACKENDS))
def make_hub(request):
    hubs = []

    def factory(max_events=1000, max_age=3600.0, queue_size=1000):
        hub = Hub(
            BACKENDS[request.param](HistoryLimits(max_events, max_age)), queue_size=queue_size
        )
        hubs.append(hub)
        return hub

    yield factory
