"""Every route refuses a Host the server does not answer to (DNS rebinding): the pages, the
login, Panel's and Bokeh's files and socket too, not only the API."""

from __future__ import annotations

import json

import aiohttp
import panel as pn
import pytest

from dashboard.server import DashboardServer

FOREIGN = "evil.example"


@pytest.fixture
async def login_server(tmp_path):
    users = tmp_path / "users.json"
    users.write_text(json.dumps({"ada": "letmein"}))
    server = DashboardServer(
        port=0, page=lambda: pn.pane.Markdown("secret page"), basic_auth=str(users)
    )
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def open_server():
    server = DashboardServer(port=0, page=lambda: pn.pane.Markdown("secret page"))
    await server.start()
    yield server
    await server.stop()


ROUTES = [
    ("GET", "/"),
    ("GET", "/login"),
    ("POST", "/login"),
    ("GET", "/static/extensions/panel/images/logo_stacked.png"),
    ("GET", "/ws"),
    ("GET", "/api/health"),
    ("GET", "/nowhere"),
]


async def request(server, method: str, path: str, host: str) -> tuple[int, bytes]:
    headers = {"Host": f"{host}:{server.port}"}
    data = {"username": "ada", "password": "guess"} if method == "POST" else None
    async with (
        aiohttp.ClientSession() as http,
        http.request(
            method, f"{server.url}{path}", headers=headers, data=data, allow_redirects=False
        ) as response,
    ):
        return response.status, await response.read()


@pytest.mark.parametrize("method, path", ROUTES)
async def test_a_foreign_host_gets_403_on_every_route(login_server, open_server, method, path):
    for server in (login_server, open_server):
        status, body = await request(server, method, path, FOREIGN)
        assert status == 403, (path, status, body[:200])
        assert json.loads(body)["error"] == "forbidden_host"
        assert b"secret page" not in body


async def test_loopback_names_are_served(open_server):
    for host in ("127.0.0.1", "localhost"):
        status, body = await request(open_server, "GET", "/", host)
        assert status == 200 and b"forbidden_host" not in body
