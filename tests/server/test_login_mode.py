"""With a login configured, every route, stream and the Pusher socket need one.

Anonymous callers get a 401 with a JSON body; a logged-in browser (Panel's cookie), a user
token or (where documented) the publish token get through; guest naming is off.
"""

from __future__ import annotations

import json

import aiohttp
import panel as pn
import pytest

from dashboard.core.user_tokens import IDENTITY_COOKIE, IDENTITY_COOKIE_PURPOSE, issue_user_token
from dashboard.server import DashboardServer

PASSWORD = "correct horse battery"
MESSAGES = {"messages": [{"role": "user", "content": "hi"}]}

#: (method, path, body, what a logged-in user gets). Paths use {msg} for a message of ada's.
ROUTES = [
    ("GET", "/api/events?channel=metrics", None, 200),
    ("GET", "/api/health", None, 200),
    ("GET", "/api/identity", None, 200),
    ("POST", "/api/identity", {"name": "Eve"}, 409),  # guest naming is off for a login
    ("GET", "/api/rooms", None, 200),
    ("GET", "/api/rooms/lobby/messages", None, 200),
    ("POST", "/api/rooms/lobby/messages", {"text": "hi"}, 201),
    ("PATCH", "/api/rooms/lobby/messages/{msg}", {"text": "edited"}, 200),
    ("DELETE", "/api/rooms/lobby/messages/{msg}", None, 200),
    ("GET", "/api/notifications", None, 200),
    ("POST", "/api/notifications/read-all", None, 200),
    ("POST", "/api/notifications/999/read", None, 404),
    ("POST", "/api/chat", MESSAGES, 200),
    ("POST", "/pusher/user-auth", {"socket_id": "1.2"}, 200),
    ("POST", "/pusher/auth", {"socket_id": "1.2", "channel_name": "presence-dashboard"}, 200),
    ("GET", "/api/no-such-route", None, 404),
    # The publish token's routes: a login is not the publish token.
    ("POST", "/api/publish", {"channel": "a", "event": "e", "data": 1}, 401),
    ("POST", "/api/notifications", {"title": "t"}, 401),
]


@pytest.fixture
async def server(tmp_path):
    srv = DashboardServer(
        port=0,
        page=lambda: pn.pane.Markdown("members only"),
        basic_auth=PASSWORD,
        store=tmp_path / "dashboard.sqlite3",
    )
    await srv.start()
    yield srv
    await srv.stop()


async def log_in(server, user="ada"):
    session = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
    async with session.post(
        f"{server.url}/login", data={"username": user, "password": PASSWORD}, allow_redirects=False
    ) as response:
        assert response.status in (302, 303)
    return session


async def request(session, server, method, path, body, msg="1", **kwargs):
    url = server.url + path.format(msg=msg)
    async with session.request(method, url, json=body, **kwargs) as response:
        status = response.status
        if response.content_type == "application/json":
            return status, await response.json()
        return status, None  # a stream: its status is what counts here


@pytest.mark.parametrize("method, path, body, logged_in", ROUTES)
async def test_every_route_needs_a_login(server, method, path, body, logged_in):
    async with aiohttp.ClientSession() as anonymous:
        status, answer = await request(anonymous, server, method, path, body)
    assert status == 401, (method, path)
    assert set(answer) == {"error", "message"} and answer["message"]

    session = await log_in(server)
    try:
        mine = "1"
        if "{msg}" in path:
            _, posted = await request(
                session, server, "POST", "/api/rooms/lobby/messages", {"text": "x"}
            )
            mine = str(posted["id"])
        status, _ = await request(session, server, method, path, body, msg=mine)
        assert status == logged_in, (method, path)
    finally:
        await session.close()


@pytest.mark.parametrize("method, path, body, logged_in", ROUTES)
async def test_a_user_token_works_like_a_login(server, method, path, body, logged_in):
    token = issue_user_token(server.ctx.app.secret, "ada", "Ada")
    headers = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession() as session:
        mine = "1"
        if "{msg}" in path:
            _, posted = await request(
                session, server, "POST", "/api/rooms/lobby/messages", {"text": "x"}, headers=headers
            )
            mine = str(posted["id"])
        status, _ = await request(session, server, method, path, body, msg=mine, headers=headers)
    assert status == logged_in, (method, path)


async def test_the_publish_token_publishes_and_reads_public_streams(server):
    headers = {"Authorization": f"Bearer {server.token}"}
    async with aiohttp.ClientSession(headers=headers) as session:
        body = {"channel": "metrics", "event": "cpu", "data": 1}
        assert (await request(session, server, "POST", "/api/publish", body))[0] == 200
        assert (await request(session, server, "GET", "/api/health", None))[0] == 200
        status, _ = await request(session, server, "GET", "/api/events?channel=metrics", None)
        assert status == 200
        # ...but it is nobody: routes that speak as a user refuse it.
        status, _ = await request(
            session, server, "POST", "/api/rooms/lobby/messages", {"text": "x"}
        )
        assert status == 401


async def test_a_display_name_cookie_is_no_login(server):
    cookie = issue_user_token(
        server.ctx.app.secret, "guest-1", "Mallory", purpose=IDENTITY_COOKIE_PURPOSE
    )
    async with aiohttp.ClientSession(cookies={IDENTITY_COOKIE: cookie}) as session:
        status, answer = await request(
            session, server, "POST", "/api/rooms/lobby/messages", {"text": "x"}
        )
        assert (status, answer["error"]) == (401, "login_required")
        status, _ = await request(session, server, "POST", "/api/identity", {"name": "Mallory"})
        assert status == 401  # guest naming is off


async def test_the_pusher_socket_needs_a_login(server):
    url = f"ws://127.0.0.1:{server.port}/app/{server.ctx.app.key}?protocol=7"
    async with aiohttp.ClientSession() as anonymous:
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await anonymous.ws_connect(url)
        assert refused.value.status == 401
    token = issue_user_token(server.ctx.app.secret, "ada")
    session = await log_in(server)
    try:
        for headers in ({}, {"Authorization": f"Bearer {token}"}):
            async with session.ws_connect(url, headers=headers) as ws:
                frame = json.loads(await ws.receive_str(timeout=5))
                assert frame["event"] == "pusher:connection_established"
    finally:
        await session.close()


async def test_a_user_connection_works_against_a_login_server(server):
    from dashboard.client.connection import UserConnection
    from dashboard.client.pusher import PusherClient, PusherClosedError

    token = issue_user_token(server.ctx.app.secret, "ada", "Ada")
    me = UserConnection(server.url, server.ctx.app.key, token)
    try:
        assert (await me.connect()).user_id == "ada"
        presence = await me.join_presence()
        assert "ada" in presence.members
        room = await me.join_room("lobby")
        await room.post("hello from a token")
    finally:
        await me.aclose()
    # Without credentials the handshake is refused, and the client stops instead of retrying.
    stranger = PusherClient(server.url, server.ctx.app.key, reconnect_delay=0.01)
    try:
        with pytest.raises(PusherClosedError, match="401"):
            await stranger.connect()
    finally:
        await stranger.aclose()
