"""One channel rule for every transport: SSE, ``/pusher/auth`` and the Pusher socket agree.

A guest (or any user) gets a private channel only when a rule lets them in; default deny.
"""

from __future__ import annotations

import json

import aiohttp

from dashboard.core.pusher_signatures import sign_channel
from dashboard.core.user_tokens import issue_user_token

TEAM = "private-team-x"


def bearer(server, user):
    return {"Authorization": f"Bearer {issue_user_token(server.ctx.app.secret, user)}"}


async def guest_session(server) -> aiohttp.ClientSession:
    """A browser-like visitor who picked a name: identified by the cookie only."""
    session = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
    async with session.post(f"{server.url}/api/identity", json={"name": "Mallory"}) as response:
        assert response.status == 200
    return session


async def socket(session, server):
    ws = await session.ws_connect(
        f"ws://127.0.0.1:{server.port}/app/{server.ctx.app.key}?protocol=7"
    )
    established = json.loads(await ws.receive_str(timeout=5))
    return ws, json.loads(established["data"])["socket_id"]


async def subscribe(ws, channel, auth=None):
    data = {"channel": channel, **({"auth": auth} if auth else {})}
    await ws.send_str(json.dumps({"event": "pusher:subscribe", "data": data}))
    return json.loads(await ws.receive_str(timeout=5))


async def sse_status(session, server, channel, headers=None):
    async with session.get(
        f"{server.url}/api/events?channel={channel}", headers=headers
    ) as response:
        return response.status, (await response.json() if response.status != 200 else None)


async def pusher_auth(session, server, socket_id, channel, headers=None):
    body = {"socket_id": socket_id, "channel_name": channel}
    async with session.post(f"{server.url}/pusher/auth", data=body, headers=headers) as response:
        return response.status, await response.json()


async def test_a_guest_gets_no_unruled_private_channel_anywhere(start_server):
    server = await start_server()
    session = await guest_session(server)
    try:
        status, answer = await sse_status(session, server, TEAM)
        assert (status, answer["error"]) == (403, "forbidden")
        ws, socket_id = await socket(session, server)
        status, answer = await pusher_auth(session, server, socket_id, TEAM)
        assert (status, answer["error"]) == (403, "forbidden")
        assert "--allow-channel" in answer["message"]
        # Without a signature, or with one for another socket, the socket refuses too.
        for auth in (None, f"{server.ctx.app.key}:{'0' * 64}"):
            frame = await subscribe(ws, TEAM, auth)
            assert frame["event"] == "pusher:subscription_error", frame
        # And nothing published there reaches the guest.
        await server.hub.publish(TEAM, "secret", {"plan": "x"})
        frame = await subscribe(ws, "metrics")
        assert frame["event"] == "pusher_internal:subscription_succeeded"
        await ws.close()
    finally:
        await session.close()


async def test_a_rule_lets_named_users_in_on_every_transport(start_server):
    server = await start_server(channel_rules=["private-team-*=ada"])
    async with aiohttp.ClientSession() as http:
        # SSE: ada reads the channel; bob is refused.
        assert (await sse_status(http, server, TEAM, bearer(server, "bob")))[0] == 403
        async with http.get(
            f"{server.url}/api/events?channel={TEAM}", headers=bearer(server, "ada")
        ) as response:
            assert response.status == 200
            await server.hub.publish(TEAM, "plan", {"v": 1})
            body = b""
            while b"plan" not in body:
                body += await response.content.readany()
        # /pusher/auth signs for ada, and the socket takes that signature.
        ws, socket_id = await socket(http, server)
        status, answer = await pusher_auth(http, server, socket_id, TEAM, bearer(server, "bob"))
        assert status == 403
        status, answer = await pusher_auth(http, server, socket_id, TEAM, bearer(server, "ada"))
        assert status == 200
        frame = await subscribe(ws, TEAM, answer["auth"])
        assert frame["event"] == "pusher_internal:subscription_succeeded"
        await server.hub.publish(TEAM, "plan", {"v": 2})
        frame = json.loads(await ws.receive_str(timeout=5))
        assert (frame["event"], json.loads(frame["data"])) == ("plan", {"v": 2})
        await ws.close()


async def test_the_application_callable_authorizes(start_server):
    def authorize(user, channel):
        return channel == "presence-ops" and user.user_id.startswith("ops-")

    server = await start_server(authorize=authorize)
    async with aiohttp.ClientSession() as http:
        ws, socket_id = await socket(http, server)
        status, _ = await pusher_auth(
            http, server, socket_id, "presence-ops", bearer(server, "ann")
        )
        assert status == 403
        status, answer = await pusher_auth(
            http, server, socket_id, "presence-ops", bearer(server, "ops-ann")
        )
        assert status == 200 and json.loads(answer["channel_data"])["user_id"] == "ops-ann"
        await ws.close()


async def test_a_signature_made_with_the_secret_is_the_apps_own_authorization(start_server):
    # The Pusher model: whoever holds the app secret (the app's backend, a server SDK's
    # authenticate()) decides; the socket only checks the signature.
    server = await start_server()
    async with aiohttp.ClientSession() as http:
        ws, socket_id = await socket(http, server)
        app = server.ctx.app
        frame = await subscribe(ws, TEAM, sign_channel(app.key, app.secret, socket_id, TEAM))
        assert frame["event"] == "pusher_internal:subscription_succeeded"
        await ws.close()
