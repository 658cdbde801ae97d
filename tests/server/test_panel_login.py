"""Panel's own login (--basic-auth) identifies the user to the API, the auth endpoint and chat."""

from __future__ import annotations

import json
from urllib.parse import unquote_plus

import aiohttp
import panel as pn
import pytest

from dashboard.server import DashboardServer

PASSWORD = "letmein"


@pytest.fixture
async def server(tmp_path):
    users = tmp_path / "users.json"
    users.write_text(json.dumps({"ada": PASSWORD, "bob": "hunter2"}))
    srv = DashboardServer(
        port=0,
        page=lambda: pn.pane.Markdown("hello"),
        basic_auth=str(users),
        app_secret="a-chosen-secret-0123456789",
        store=tmp_path / "chat.sqlite3",
    )
    await srv.start()
    yield srv
    await srv.stop()


async def log_in(server: DashboardServer, user: str, password: str) -> aiohttp.ClientSession:
    session = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
    await session.post(
        f"{server.url}/login", data={"username": user, "password": password}, allow_redirects=False
    )
    return session


async def test_the_page_needs_a_login(server):
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{server.url}/", allow_redirects=False) as response,
    ):
        assert response.status in (302, 303)
        assert "/login" in response.headers["Location"]


async def test_the_login_name_is_the_identity(server):
    session = await log_in(server, "ada", PASSWORD)
    try:
        async with session.get(f"{server.url}/api/identity") as response:
            assert response.status == 200
            assert await response.json() == {"user_id": "ada", "name": "ada", "source": "login"}
        async with session.post(
            f"{server.url}/pusher/auth",
            data={"socket_id": "1.2", "channel_name": "presence-dashboard"},
        ) as response:
            body = await response.json()
        assert json.loads(body["channel_data"])["user_id"] == "ada"
        # A login cannot be swapped for a display name of one's choosing.
        async with session.post(f"{server.url}/api/identity", json={"name": "Eve"}) as response:
            assert response.status == 409
        async with session.post(
            f"{server.url}/api/rooms/lobby/messages", json={"text": "hi"}
        ) as response:
            assert response.status == 201 and (await response.json())["user_id"] == "ada"
    finally:
        await session.close()


async def test_a_wrong_password_identifies_nobody(server):
    session = await log_in(server, "ada", "wrong")
    try:
        async with session.get(f"{server.url}/api/identity") as response:
            assert response.status == 401
    finally:
        await session.close()


async def test_a_forged_login_cookie_identifies_nobody(server):
    jar = aiohttp.CookieJar(unsafe=True)
    async with aiohttp.ClientSession(cookie_jar=jar) as session:
        session.cookie_jar.update_cookies({"user": "ada"})
        async with session.get(f"{server.url}/api/identity") as response:
            assert response.status == 401


async def test_password_guessing_is_limited_per_address(server):
    jar = aiohttp.CookieJar(unsafe=True)
    async with aiohttp.ClientSession(cookie_jar=jar) as session:
        errors = []
        for n in range(server.ctx.limits.login_burst + 2):
            async with session.post(
                f"{server.url}/login",
                data={"username": "ada", "password": f"guess-{n}"},
                allow_redirects=False,
            ) as response:
                errors.append(response.headers["Location"])
        assert all("error=" in location for location in errors)
        assert "Too many attempts" in unquote_plus(errors[-1])
        # Even the right password waits now: the guesser cannot tell it was right.
        async with session.post(
            f"{server.url}/login",
            data={"username": "ada", "password": PASSWORD},
            allow_redirects=False,
        ) as response:
            assert "Too many attempts" in unquote_plus(response.headers["Location"])
        async with session.get(f"{server.url}/api/identity") as response:
            assert response.status == 401


@pytest.mark.parametrize("name", ["x" * 129, "ada\nroot"])  # Tornado itself drops \x00
async def test_a_login_name_must_be_a_usable_user_id(tmp_path, name):
    srv = DashboardServer(port=0, page=lambda: pn.pane.Markdown("x"), basic_auth="shared-pass-1")
    await srv.start()
    try:
        session = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
        async with session.post(
            f"{srv.url}/login",
            data={"username": name, "password": "shared-pass-1"},
            allow_redirects=False,
        ) as response:
            assert "Invalid user name" in unquote_plus(response.headers["Location"])
        async with session.get(f"{srv.url}/api/identity") as response:
            assert response.status == 401
        await session.close()
    finally:
        await srv.stop()


async def test_the_api_accepts_a_login_cookie_only_as_long_as_the_pages_do(server):
    import time

    import tornado.web

    # Panel's pages read the cookie back with max_age_days=oauth_expiry (1 day): a cookie
    # signed two days ago must not open the API either.
    stale = tornado.web.create_signed_value(
        server.cookie_secret, "user", "ada", clock=lambda: time.time() - 2 * 86400
    ).decode()
    async with (
        aiohttp.ClientSession(cookies={"user": stale}) as session,
        session.get(f"{server.url}/api/identity") as response,
    ):
        assert response.status == 401
