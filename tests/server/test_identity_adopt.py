"""A first-time visitor keeps the guest identity the page made for them: their browser adopts it
(``POST /api/identity {"adopt": token}``), so a reload keeps their id."""

from __future__ import annotations

import aiohttp

from dashboard.core.user_tokens import IDENTITY_ADOPT_PURPOSE, IDENTITY_COOKIE, issue_user_token


def adopt_token(server, user_id="guest-abc123", name="Guest abc123", **options):
    secret = server.ctx.app.secret
    return issue_user_token(secret, user_id, name, purpose=IDENTITY_ADOPT_PURPOSE, **options)


async def test_the_browser_keeps_the_guest_the_page_made(start_server):
    server = await start_server()
    jar = aiohttp.CookieJar(unsafe=True)
    async with aiohttp.ClientSession(cookie_jar=jar) as browser:
        url = f"{server.url}/api/identity"
        async with browser.post(url, json={"adopt": adopt_token(server)}) as response:
            assert response.status == 200
            assert await response.json() == {
                "user_id": "guest-abc123",
                "name": "Guest abc123",
                "source": "cookie",
            }
            assert IDENTITY_COOKIE in response.cookies
        async with browser.get(url) as response:  # the next visit: the same guest
            assert (await response.json())["user_id"] == "guest-abc123"
        # Adopting is for a browser without an identity: it never replaces one.
        other = adopt_token(server, "guest-other", "Someone else")
        async with browser.post(url, json={"adopt": other}) as response:
            assert response.status == 409


async def test_only_a_token_made_for_adopting_is_taken(start_server):
    server = await start_server()
    secret = server.ctx.app.secret
    url = f"{server.url}/api/identity"
    for token in (
        issue_user_token(secret, "ada", "Ada"),  # a bearer user token: another purpose
        adopt_token(server, ttl=1, now=0),  # expired
        "not-a-token",
        42,
    ):
        async with (
            aiohttp.ClientSession() as browser,
            browser.post(url, json={"adopt": token}) as r,
        ):
            assert r.status == 400, token
            assert IDENTITY_COOKIE not in r.cookies


async def test_with_a_login_there_is_nothing_to_adopt(start_server):
    server = await start_server(basic_auth="login-password-1")
    url = f"{server.url}/api/identity"
    async with (
        aiohttp.ClientSession() as browser,
        browser.post(url, json={"adopt": adopt_token(server)}) as response,
    ):
        assert response.status == 401
