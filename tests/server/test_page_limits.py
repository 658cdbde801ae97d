"""Page loads are limited per client address (dashboard/server/pages.py): each builds a Panel
session, so a loop of GET / from one address must not keep the process busy."""

from __future__ import annotations

import aiohttp
import panel as pn
import pytest

from dashboard.server import DashboardServer
from dashboard.server.limits import Limits

BURST = 3


@pytest.fixture
async def server():
    server = DashboardServer(
        port=0,
        page=lambda: pn.pane.Markdown("the page"),
        limits=Limits(pages_burst=BURST, pages_per_minute=1),
        use_xheaders=True,  # X-Real-Ip names the client, as behind nginx
    )
    await server.start()
    yield server
    await server.stop()


async def get(server, path: str, address: str = "203.0.113.7") -> tuple[int, str, dict]:
    headers = {"X-Real-Ip": address}
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{server.url}{path}", headers=headers) as response,
    ):
        return response.status, await response.text(), dict(response.headers)


def sessions(server) -> int:
    """The Bokeh sessions the page's application holds (each page load builds one)."""
    return len(list(server._server._tornado._applications["/"].sessions))


async def test_page_loads_past_the_burst_get_a_json_429_and_build_no_session(server):
    for _ in range(BURST):
        status, body, _ = await get(server, "/")
        assert status == 200 and "<html" in body.lower()
    built = sessions(server)
    assert built == BURST
    status, body, headers = await get(server, "/")
    assert status == 429
    assert headers["Content-Type"].startswith("application/json")
    assert '"rate_limited"' in body and "page loads from this address" in body
    assert int(headers["Retry-After"]) >= 1
    assert sessions(server) == built


async def test_other_addresses_and_other_routes_are_not_limited(server):
    for _ in range(BURST + 1):
        await get(server, "/")
    assert (await get(server, "/", address="198.51.100.9"))[0] == 200
    assert (await get(server, "/api/health"))[0] == 200
    assert (await get(server, "/api/health?x=1"))[0] == 200
