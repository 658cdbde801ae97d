"""A real DashboardServer on a free loopback port."""

from __future__ import annotations

import aiohttp
import pytest

from dashboard.server import DashboardServer
from tests.server.helpers import TOKEN


@pytest.fixture
async def server():
    srv = DashboardServer(port=0, token=TOKEN, heartbeat=0.3)
    await srv.start()
    yield srv
    await srv.stop()


@pytest.fixture
async def http():
    async with aiohttp.ClientSession() as session:
        yield session
