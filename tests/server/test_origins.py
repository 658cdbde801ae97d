"""Origin checks on ``/api/events`` and ``/app/{key}``: a real server, real aiohttp clients."""

from __future__ import annotations

import json

import aiohttp
import pytest

from dashboard.server import DashboardServer
from tests.server.helpers import RawStream

QUERY = "protocol=7&client=js&version=8.4.0&flash=false"
FRIEND = "http://friend.example:8080"
FOREIGN = "http://evil.example"


@pytest.fixture
async def server():
    srv = DashboardServer(port=0, websocket_origins=["friend.example:8080"])
    await srv.start()
    yield srv
    await srv.stop()


@pytest.fixture
async def open_server():
    srv = DashboardServer(port=0, websocket_origins=["*"])
    await srv.start()
    yield srv
    await srv.stop()


async def pusher_handshake(http, server, origin: str | None) -> dict:
    url = f"ws://127.0.0.1:{server.port}/app/{server.ctx.app.key}?{QUERY}"
    async with http.ws_connect(url, origin=origin) as ws:
        message = await ws.receive(timeout=3)
        assert message.type is aiohttp.WSMsgType.TEXT, message
        return json.loads(message.data)


@pytest.mark.parametrize(
    "origin",
    [None, "same-host", FRIEND, "http://localhost:{port}"],
    ids=["no-origin", "same-host", "allowlisted", "localhost"],
)
async def test_pusher_socket_accepts_allowed_origins(server, http, origin):
    if origin == "same-host":
        origin = f"http://127.0.0.1:{server.port}"
    elif origin is not None:
        origin = origin.format(port=server.port)
    frame = await pusher_handshake(http, server, origin)
    assert frame["event"] == "pusher:connection_established"


@pytest.mark.parametrize("origin", [FOREIGN, "http://friend.example:9999", "null"])
async def test_pusher_socket_refuses_a_foreign_origin_before_upgrading(server, http, origin):
    with pytest.raises(aiohttp.WSServerHandshakeError) as caught:
        await pusher_handshake(http, server, origin)
    assert caught.value.status == 403
    assert server.ctx.pusher_sockets == {}


async def test_a_loopback_server_answers_no_other_host_name(server, http):
    # DNS rebinding: the attacker's name now points at 127.0.0.1, so to the browser the page
    # and the server share an origin; only the Host header still tells.
    headers = {"Host": f"rebind.evil.example:{server.port}"}
    response = await events(http, server, f"http://rebind.evil.example:{server.port}", **headers)
    assert (response.status, (await response.json())["error"]) == (403, "forbidden_host")
    url = f"ws://127.0.0.1:{server.port}/app/{server.ctx.app.key}?{QUERY}"
    with pytest.raises(aiohttp.WSServerHandshakeError) as caught:
        await http.ws_connect(url, origin="http://rebind.evil.example", headers=headers)
    assert caught.value.status == 403
    async with http.post(f"{server.url}/api/identity", json={"name": "x"}, headers=headers) as r:
        assert r.status == 403


@pytest.mark.parametrize("fetch_site", [None, "same-origin", "cross-site"])
async def test_both_endpoints_serve_an_allowlisted_proxied_host(http, fetch_site):
    # A reverse proxy passes its public name on; allowlisted, the name is served.
    server = DashboardServer(port=0, websocket_origins=["dash.example:80"])
    await server.start()
    try:
        headers = {"Host": "dash.example"}
        if fetch_site is not None:
            headers["Sec-Fetch-Site"] = fetch_site
        response = await events(http, server, "http://dash.example", **headers)
        response.close()
        assert response.status == 200
        url = f"ws://127.0.0.1:{server.port}/app/{server.ctx.app.key}?{QUERY}"
        async with http.ws_connect(url, origin="http://dash.example", headers=headers) as ws:
            message = await ws.receive(timeout=3)
            assert json.loads(message.data)["event"] == "pusher:connection_established"
    finally:
        await server.stop()


async def events(http, server, origin: str | None, **headers: str) -> aiohttp.ClientResponse:
    if origin is not None:
        headers["Origin"] = origin
    return await http.get(f"{server.url}/api/events?channel=metrics", headers=headers)


async def test_stream_refuses_a_foreign_origin_with_json(server, http):
    response = await events(http, server, FOREIGN)
    assert response.status == 403
    assert response.headers["Content-Type"].startswith("application/json")
    assert "Access-Control-Allow-Origin" not in response.headers
    body = await response.json()
    assert body["error"] == "forbidden_origin"
    assert FOREIGN in body["message"]
    assert server.ctx.streams == set()


async def test_stream_admits_an_allowlisted_origin_by_cors(server, http):
    response = await events(http, server, FRIEND)
    assert response.status == 200
    assert response.headers["Access-Control-Allow-Origin"] == FRIEND
    assert response.headers["Vary"] == "Origin"
    assert (await RawStream(response).next()).event == "connected"
    response.close()


@pytest.mark.parametrize("same_host", [False, True], ids=["no-origin", "same-host"])
async def test_stream_serves_its_own_host_and_non_browsers_without_cors(server, http, same_host):
    origin = f"http://127.0.0.1:{server.port}" if same_host else None
    response = await events(http, server, origin)
    assert response.status == 200
    assert "Access-Control-Allow-Origin" not in response.headers
    assert (await RawStream(response).next()).event == "connected"
    response.close()


async def test_stream_trusts_the_browser_saying_same_origin_behind_a_proxy(server, http):
    # A proxy that rewrites Host: the Origin names the public host, the browser vouches for it.
    response = await events(
        http, server, "https://dash.example", **{"Sec-Fetch-Site": "same-origin"}
    )
    assert response.status == 200
    response.close()


async def test_star_allows_any_origin(open_server, http):
    response = await events(http, open_server, FOREIGN)
    assert response.status == 200
    # Any page may read the stream, but never with the user's cookies (dashboard/core/cors.py).
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert "Access-Control-Allow-Credentials" not in response.headers
    response.close()
    frame = await pusher_handshake(http, open_server, FOREIGN)
    assert frame["event"] == "pusher:connection_established"
