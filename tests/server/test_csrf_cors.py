"""Browser-set headers decide: cross-site request forgery is refused, allowlisted origins get
CORS, every cookie is SameSite, pages cannot be framed by other sites.

The headers below are what Chromium sends (Origin, Sec-Fetch-Site); the same attacks in a
real Chromium are in tests/browser/test_cross_origin.py.
"""

from __future__ import annotations

import aiohttp
import panel as pn
import pytest

from dashboard.core.user_tokens import issue_user_token
from dashboard.server import DashboardServer

ALLOWED = "http://127.0.0.1:8888"


@pytest.fixture
async def server(tmp_path):
    srv = DashboardServer(
        port=0,
        page=lambda: pn.pane.Markdown("page"),
        store=tmp_path / "db.sqlite3",
        websocket_origins=["127.0.0.1:8888"],
    )
    await srv.start()
    yield srv
    await srv.stop()


async def victim(server) -> aiohttp.ClientSession:
    """A browser with the victim's identity cookie."""
    session = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
    async with session.post(f"{server.url}/api/identity", json={"name": "Victim"}) as response:
        assert response.status == 200
    return session


def forged(server, fetch_site: str | None, origin: str | None) -> dict[str, str]:
    headers = {}
    if fetch_site is not None:
        headers["Sec-Fetch-Site"] = fetch_site
    if origin is not None:
        headers["Origin"] = origin
    return headers


ATTACKERS = [
    pytest.param("same-site", "http://127.0.0.1:{other}", id="same-site-other-port"),
    pytest.param("cross-site", "http://evil.example", id="cross-site"),
    pytest.param("cross-site", None, id="cross-site-without-origin"),
    pytest.param(None, "http://evil.example", id="old-browser-foreign-origin"),
    pytest.param(None, "null", id="sandboxed-frame"),
]

STATE_CHANGES = [
    ("POST", "/api/rooms/lobby/messages", {"text": "pwned"}),
    ("POST", "/api/identity", {"name": "Pwned"}),
    ("POST", "/api/notifications/read-all", None),
    ("POST", "/api/chat", {"messages": [{"role": "user", "content": "spend their quota"}]}),
    ("POST", "/pusher/auth", {"socket_id": "1.2", "channel_name": "presence-dashboard"}),
]


@pytest.mark.parametrize("fetch_site, origin", ATTACKERS)
@pytest.mark.parametrize("method, path, body", STATE_CHANGES)
async def test_forged_requests_with_the_victims_cookie_are_refused(
    server, fetch_site, origin, method, path, body
):
    session = await victim(server)
    try:
        origin = origin.format(other=server.port + 1) if origin else None
        headers = forged(server, fetch_site, origin)
        async with session.request(method, server.url + path, json=body, headers=headers) as r:
            answer = await r.json()
            assert (r.status, answer["error"]) == (403, "forbidden_origin")
        async with session.get(f"{server.url}/api/identity") as response:
            assert (await response.json())["name"] == "Victim"
        async with session.get(f"{server.url}/api/rooms/lobby/messages") as response:
            assert (await response.json())["messages"] == []
        assert server.ctx.rate_limits.chat._buckets == {}  # no /api/chat was even counted
    finally:
        await session.close()


async def test_same_origin_allowlisted_and_bearer_requests_pass(server):
    session = await victim(server)
    try:
        url = f"{server.url}/api/rooms/lobby/messages"
        for headers in (
            {"Sec-Fetch-Site": "same-origin", "Origin": server.url},
            {"Origin": server.url},  # an older browser: Origin names the host itself
            {"Sec-Fetch-Site": "cross-site", "Origin": ALLOWED},  # the operator allowed it
            {},  # not a browser at all (curl, scripts)
        ):
            async with session.post(url, json={"text": "fine"}, headers=headers) as response:
                assert response.status == 201, headers
    finally:
        await session.close()
    # A bearer token is never added by the browser: a page that holds one acts for itself.
    token = issue_user_token(server.ctx.app.secret, "ada")
    headers = {"Authorization": f"Bearer {token}", "Origin": "http://evil.example"}
    async with (
        aiohttp.ClientSession() as http,
        http.post(url, json={"text": "mine"}, headers=headers) as response,
    ):
        assert response.status == 201


async def test_preflight_for_resuming_streams_from_an_allowlisted_origin(server):
    request = {
        "Origin": ALLOWED,
        "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "authorization, last-event-id",
    }
    async with aiohttp.ClientSession() as http:
        async with http.options(f"{server.url}/api/events", headers=request) as response:
            assert response.status == 204
            assert response.headers["Access-Control-Allow-Origin"] == ALLOWED
            assert response.headers["Access-Control-Allow-Credentials"] == "true"
            allowed = response.headers["Access-Control-Allow-Headers"].lower()
            assert "authorization" in allowed and "last-event-id" in allowed
        foreign = {**request, "Origin": "http://evil.example"}
        async with http.options(f"{server.url}/api/events", headers=foreign) as response:
            assert response.status == 403
            assert "Access-Control-Allow-Origin" not in response.headers
        # The stream itself, and its errors, are readable by the allowlisted page.
        async with http.get(
            f"{server.url}/api/events?channel=private-user-x", headers={"Origin": ALLOWED}
        ) as response:
            assert response.status == 401
            assert response.headers["Access-Control-Allow-Origin"] == ALLOWED


async def test_security_headers(server, tmp_path):
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{server.url}/") as page:
            assert page.status == 200
            assert page.headers["Content-Security-Policy"] == "frame-ancestors 'self'"
            assert page.headers["X-Frame-Options"] == "SAMEORIGIN"
            assert page.headers["X-Content-Type-Options"] == "nosniff"
        async with http.get(f"{server.url}/api/health") as api:
            assert api.headers["X-Content-Type-Options"] == "nosniff"
        async with http.post(f"{server.url}/api/identity", json={"name": "A"}) as response:
            assert "samesite=lax" in response.headers["Set-Cookie"].lower()

    embedded = DashboardServer(
        port=0,
        page=lambda: pn.pane.Markdown("page"),
        frame_ancestors="'self' https://intranet.example",
    )
    await embedded.start()
    try:
        async with aiohttp.ClientSession() as http, http.get(f"{embedded.url}/") as page:
            policy = page.headers["Content-Security-Policy"]
            assert policy == "frame-ancestors 'self' https://intranet.example"
            assert "X-Frame-Options" not in page.headers  # it cannot say "these two"
    finally:
        await embedded.stop()


async def test_panels_login_cookie_is_samesite(tmp_path):
    server = DashboardServer(port=0, page=lambda: pn.pane.Markdown("x"), basic_auth="pw-1234")
    await server.start()
    try:
        async with (
            aiohttp.ClientSession() as http,
            http.post(
                f"{server.url}/login",
                data={"username": "ada", "password": "pw-1234"},
                allow_redirects=False,
            ) as response,
        ):
            cookies = response.headers.getall("Set-Cookie")
        login = [c for c in cookies if c.startswith("user=")]
        assert login and all("samesite=lax" in c.lower() for c in cookies), cookies
    finally:
        await server.stop()


@pytest.mark.parametrize(
    "cookie, expected",
    [
        ("a=1; Path=/", "a=1; Path=/; SameSite=Lax"),
        ("a=1; Path=/; SameSite=Strict", "a=1; Path=/; SameSite=Strict"),  # chosen on purpose
        ("a=1; samesite=None; Secure", "a=1; samesite=None; Secure"),
        ('a="x;samesite=none"; Path=/', 'a="x;samesite=none"; Path=/; SameSite=Lax'),
    ],
)
def test_with_samesite(cookie, expected):
    from dashboard.server.headers import with_samesite

    assert with_samesite(cookie) == expected


async def test_the_wildcard_never_lends_a_page_the_users_cookies(tmp_path):
    # `--allow-websocket-origin '*'` admits any page to public streams. A page on another
    # port of the same host is same-site, so SameSite=Lax cookies still travel with its
    # requests: they must not count as the user's.
    server = DashboardServer(
        port=0,
        page=lambda: pn.pane.Markdown("x"),
        basic_auth="pw-0123456789",
        store=tmp_path / "db.sqlite3",
        websocket_origins=["*"],
    )
    await server.start()
    sibling = {"Origin": f"http://127.0.0.1:{server.port + 1}", "Sec-Fetch-Site": "same-site"}
    try:
        jar = aiohttp.CookieJar(unsafe=True)
        async with aiohttp.ClientSession(cookie_jar=jar) as browser:
            await browser.post(
                f"{server.url}/login", data={"username": "ada", "password": "pw-0123456789"}
            )
            url = f"{server.url}/api/rooms/lobby/messages"
            async with browser.post(url, json={"text": "forged"}, headers=sibling) as response:
                assert (response.status, (await response.json())["error"]) == (
                    403,
                    "forbidden_origin",
                )
            async with browser.get(url, headers=sibling) as response:
                assert response.status == 401  # the cookie does not identify a sibling's read
            ws_url = f"ws://127.0.0.1:{server.port}/app/{server.ctx.app.key}?protocol=7"
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await browser.ws_connect(ws_url, headers={"Origin": sibling["Origin"]})
            assert refused.value.status == 401
            async with browser.get(url) as response:  # the page's own origin: still ada
                assert response.status == 200
            async with browser.post(url, json={"text": "mine"}) as response:
                assert response.status == 201
    finally:
        await server.stop()
