"""``/pusher/auth``, ``/pusher/user-auth`` and ``/api/identity`` on a real server, end to end:
every signature handed out is presented to the real ``/app/{key}`` socket."""

from __future__ import annotations

import asyncio
import json
import time

import aiohttp
import panel as pn
import pytest
import tornado.web

from dashboard.core.user_tokens import issue_user_token
from dashboard.server import DashboardServer
from dashboard.server.pusher_app import PusherApp

KEY, SECRET = "auth-key", "auth-secret-0123456789"
QUERY = "protocol=7&client=js&version=8.4.0&flash=false"


def bearer(user_id: str, name: str | None = None, **kwargs) -> dict[str, str]:
    return {"Authorization": f"Bearer {issue_user_token(SECRET, user_id, name, **kwargs)}"}


def tampered(text: str) -> str:
    """Change one signature character that carries signature bits (not the last one)."""
    return text[:-5] + ("A" if text[-5] != "A" else "B") + text[-4:]


@pytest.fixture
async def app_server():
    # Private and presence channels beyond the dashboard's own need a rule (default deny).
    srv = DashboardServer(
        port=0,
        pusher=PusherApp(app_id="1", key=KEY, secret=SECRET),
        channel_rules=["private-team=*", "presence-room=*"],
    )
    await srv.start()
    yield srv
    await srv.stop()


@pytest.fixture
async def socket(app_server, http):
    """Open a Pusher socket; returns (ws, socket_id)."""
    opened = []

    async def open_socket():
        ws = await http.ws_connect(f"ws://127.0.0.1:{app_server.port}/app/{KEY}?{QUERY}")
        opened.append(ws)
        frame = await recv(ws)
        assert frame["event"] == "pusher:connection_established"
        return ws, frame["data"]["socket_id"]

    yield open_socket
    for ws in opened:
        await ws.close()


async def recv(ws) -> dict:
    message = await asyncio.wait_for(ws.receive(), 3)
    frame = json.loads(message.data)
    if isinstance(frame.get("data"), str) and frame["event"].startswith("pusher"):
        frame["data"] = json.loads(frame["data"])
    return frame


async def auth(http, server, body, headers=None, as_json=False):
    kwargs = {"json": body} if as_json else {"data": body}  # data=dict -> form-encoded
    async with http.post(f"{server.url}/pusher/auth", headers=headers, **kwargs) as response:
        return response.status, await response.json()


async def subscribe(ws, channel: str, answer: dict) -> dict:
    await ws.send_str(
        json.dumps({"event": "pusher:subscribe", "data": {"channel": channel, **answer}})
    )
    return await recv(ws)


async def test_private_channel_signature_is_accepted_by_the_socket(app_server, http, socket):
    ws, socket_id = await socket()
    # Form-encoded, exactly as pusher-js posts it.
    status, answer = await auth(
        http,
        app_server,
        {"socket_id": socket_id, "channel_name": "private-team"},
        bearer("alice"),
    )
    assert status == 200 and set(answer) == {"auth"} and answer["auth"].startswith(f"{KEY}:")
    frame = await subscribe(ws, "private-team", answer)
    assert frame["event"] == "pusher_internal:subscription_succeeded"


async def test_json_body_is_accepted_too(app_server, http, socket):
    ws, socket_id = await socket()
    body = {"socket_id": socket_id, "channel_name": "private-team"}
    status, answer = await auth(http, app_server, body, bearer("alice"), as_json=True)
    assert status == 200
    assert (await subscribe(ws, "private-team", answer))["event"].endswith("succeeded")


async def test_presence_channel_data_is_the_callers_and_is_accepted(app_server, http, socket):
    ws, socket_id = await socket()
    body = {"socket_id": socket_id, "channel_name": "presence-room"}
    status, answer = await auth(http, app_server, body, bearer("alice", "Ada"))
    assert status == 200
    assert json.loads(answer["channel_data"]) == {"user_id": "alice", "user_info": {"name": "Ada"}}
    frame = await subscribe(ws, "presence-room", answer)
    assert frame["event"] == "pusher_internal:subscription_succeeded"
    assert frame["data"]["presence"]["hash"] == {"alice": {"name": "Ada"}}


async def test_a_signature_is_for_one_socket_only(app_server, http, socket):
    (ws, _), (_, other_id) = await socket(), await socket()
    body = {"socket_id": other_id, "channel_name": "private-team"}
    _, answer = await auth(http, app_server, body, bearer("alice"))
    frame = await subscribe(ws, "private-team", answer)
    assert frame["event"] == "pusher:subscription_error"


async def test_user_channels_are_for_their_owner_only(app_server, http, socket):
    ws, socket_id = await socket()
    body = {"socket_id": socket_id, "channel_name": "private-user-bob"}
    status, answer = await auth(http, app_server, body, bearer("alice"))
    assert (status, answer["error"]) == (403, "forbidden")
    status, answer = await auth(http, app_server, body, bearer("bob"))
    assert status == 200
    assert (await subscribe(ws, "private-user-bob", answer))["event"].endswith("succeeded")
    # A longer id that merely starts with the caller's is someone else's.
    body["channel_name"] = "private-user-bob-admin"
    assert (await auth(http, app_server, body, bearer("bob")))[0] == 403


@pytest.mark.parametrize(
    "headers",
    [
        None,
        bearer("alice", ttl=1, now=time.time() - 10),  # expired
        {"Authorization": tampered(bearer("alice")["Authorization"])},
        {"Authorization": f"Bearer {issue_user_token('other-secret', 'alice')}"},
        {"Authorization": "Bearer not-a-token"},
    ],
    ids=["anonymous", "expired", "tampered", "other-secret", "garbage"],
)
async def test_no_valid_identity_is_401(app_server, http, headers):
    body = {"socket_id": "1.2", "channel_name": "private-team"}
    status, answer = await auth(http, app_server, body, headers)
    assert status == 401 and answer["error"] and answer["message"]


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"socket_id": "12", "channel_name": "private-team"}, "invalid_socket_id"),
        ({"channel_name": "private-team"}, "invalid_socket_id"),
        ({"socket_id": "1.2", "channel_name": "public"}, "public_channel"),
        ({"socket_id": "1.2", "channel_name": "private-bad name"}, "invalid_channel"),
        ({"socket_id": "1.2"}, "invalid_channel"),
        ({"socket_id": "1.2", "channel_name": "private-encrypted-x"}, "unsupported_channel"),
    ],
)
async def test_bad_requests_are_400(app_server, http, body, code):
    status, answer = await auth(http, app_server, body, bearer("alice"))
    assert (status, answer["error"]) == (400, code)


@pytest.fixture
async def browser():
    """A session that keeps cookies from 127.0.0.1, as a browser would (aiohttp's default jar
    ignores cookies set by IP addresses)."""
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        yield session


async def test_identity_cookie_flow(app_server, browser, socket):
    base, http = app_server.url, browser
    async with http.get(f"{base}/api/identity") as response:
        assert response.status == 401
    async with http.post(f"{base}/api/identity", json={"name": " Grace "}) as response:
        assert response.status == 200
        me = await response.json()
        cookie = response.headers["Set-Cookie"]
    assert me["name"] == "Grace" and me["source"] == "cookie"
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/" in cookie
    async with http.get(f"{base}/api/identity") as response:  # the session keeps the cookie
        assert await response.json() == me
    # A rename keeps the id, so per-user channels survive it.
    async with http.post(f"{base}/api/identity", json={"name": "Grace H."}) as response:
        assert (await response.json())["user_id"] == me["user_id"]

    ws, socket_id = await socket()
    own = f"private-user-{me['user_id']}"
    status, answer = await auth(http, app_server, {"socket_id": socket_id, "channel_name": own})
    assert status == 200
    assert (await subscribe(ws, own, answer))["event"].endswith("succeeded")
    body = {"socket_id": socket_id, "channel_name": "presence-room"}
    _, answer = await auth(http, app_server, body)
    assert json.loads(answer["channel_data"])["user_info"] == {"name": "Grace H."}
    body["channel_name"] = "private-user-alice"
    assert (await auth(http, app_server, body))[0] == 403


async def test_a_forged_identity_cookie_is_anonymous(app_server):
    forged = issue_user_token(SECRET, "alice")  # a bearer token is not a cookie
    async with (
        aiohttp.ClientSession(cookies={"dashboard_user": forged}) as session,
        session.get(f"{app_server.url}/api/identity") as response,
    ):
        assert response.status == 401


@pytest.mark.parametrize("name", ["", "x" * 129, "a\x00b", 7])
async def test_identity_rejects_bad_names(app_server, http, name):
    async with http.post(f"{app_server.url}/api/identity", json={"name": name}) as response:
        assert response.status == 400


async def test_bearer_identity_cannot_be_renamed_by_cookie(app_server, http):
    url = f"{app_server.url}/api/identity"
    async with http.get(url, headers=bearer("alice", "Ada")) as response:
        assert await response.json() == {"user_id": "alice", "name": "Ada", "source": "token"}
    async with http.post(url, json={"name": "Eve"}, headers=bearer("alice")) as response:
        assert response.status == 409


async def test_panel_login_cookie_identifies_the_user(monkeypatch, http):
    # Panel's --basic-auth and OAuth store the user id in Tornado's secure cookie "user".
    monkeypatch.setattr(pn.config, "cookie_secret", "panel-cookie-secret")
    srv = DashboardServer(port=0, pusher=PusherApp(app_id="1", key=KEY, secret=SECRET))
    await srv.start()
    try:
        signed = tornado.web.create_signed_value("panel-cookie-secret", "user", "carol").decode()
        async with aiohttp.ClientSession(cookies={"user": signed}) as session:
            async with session.get(f"{srv.url}/api/identity") as response:
                assert await response.json() == {
                    "user_id": "carol",
                    "name": "carol",
                    "source": "login",
                }
            body = {"socket_id": "1.2", "channel_name": "private-user-carol"}
            async with session.post(f"{srv.url}/pusher/auth", data=body) as response:
                assert response.status == 200
        async with (
            aiohttp.ClientSession(cookies={"user": "carol"}) as session,  # unsigned
            session.get(f"{srv.url}/api/identity") as response,
        ):
            assert response.status == 401
    finally:
        await srv.stop()


async def test_user_auth_signs_in_the_caller(app_server, http, socket):
    ws, socket_id = await socket()
    async with http.post(
        f"{app_server.url}/pusher/user-auth", data={"socket_id": socket_id}, headers=bearer("alice")
    ) as response:
        assert response.status == 200
        answer = await response.json()
    assert json.loads(answer["user_data"])["id"] == "alice"
    await ws.send_str(json.dumps({"event": "pusher:signin", "data": answer}))
    frame = await recv(ws)
    assert frame["event"] == "pusher:signin_success"
    async with http.post(
        f"{app_server.url}/pusher/user-auth", data={"socket_id": socket_id}
    ) as response:
        assert response.status == 401
