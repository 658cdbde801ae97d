"""Limits a caller cannot multiply: channels per connection, new guests and guests' AI chat
per client address."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest

from dashboard.ai import DemoProvider
from dashboard.core.user_tokens import issue_user_token
from dashboard.server import DashboardServer
from dashboard.server.limits import Limits

MESSAGES = {"messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture
async def server(tmp_path):
    slow = 0.001  # per minute: no refill while a test runs
    limits = Limits(
        max_channels=5,
        new_guests_burst=4,
        new_guests_per_minute=slow,
        guest_chat_burst=3,
        guest_chat_per_minute=slow,
        chat_burst=2,
        chat_per_minute=slow,
    )
    srv = DashboardServer(
        port=0, store=tmp_path / "db.sqlite3", limits=limits, ai=DemoProvider(delay=0)
    )
    await srv.start()
    yield srv
    await srv.stop()


async def test_a_stream_follows_at_most_the_cap(server):
    async with aiohttp.ClientSession() as http:
        query = "&".join(f"channel=c{i}" for i in range(5))
        async with http.get(f"{server.url}/api/events?{query}") as response:
            assert response.status == 200
        async with http.get(f"{server.url}/api/events?{query}&channel=c5") as response:
            answer = await response.json()
            assert (response.status, answer["error"]) == (400, "too_many_channels")
            assert "at most 5" in answer["message"]


async def test_a_socket_follows_at_most_the_cap(server):
    async with aiohttp.ClientSession() as http:
        url = f"ws://127.0.0.1:{server.port}/app/{server.ctx.app.key}?protocol=7"
        async with http.ws_connect(url) as ws:
            await ws.receive_str(timeout=5)
            for i in range(7):
                await ws.send_str(
                    json.dumps({"event": "pusher:subscribe", "data": {"channel": f"c{i}"}})
                )
            frames = [json.loads(await ws.receive_str(timeout=5)) for _ in range(7)]
            ok = [f["channel"] for f in frames if f["event"].endswith("subscription_succeeded")]
            refused = [f for f in frames if f["event"] == "pusher:subscription_error"]
            assert ok == [f"c{i}" for i in range(5)]
            assert [f["data"]["type"] for f in refused] == ["LimitReached"] * 2
            assert "at most 5 channels" in refused[0]["data"]["error"]
            # Leaving one makes room for another; the socket stayed up throughout.
            await ws.send_str(
                json.dumps({"event": "pusher:unsubscribe", "data": {"channel": "c0"}})
            )
            await ws.send_str(json.dumps({"event": "pusher:subscribe", "data": {"channel": "c9"}}))
            frame = json.loads(await ws.receive_str(timeout=5))
            assert (frame["event"], frame["channel"]) == (
                "pusher_internal:subscription_succeeded",
                "c9",
            )


async def post(url, body, **session_options):
    """POST from a fresh client (a brand-new visitor unless given cookies or headers)."""
    async with (
        aiohttp.ClientSession(**session_options) as client,
        client.post(url, json=body) as response,
    ):
        await response.read()
        return response.status, response.headers, response.cookies


async def new_guest(http, server, name="Guest"):
    return await post(f"{server.url}/api/identity", {"name": name})


async def test_new_guests_are_limited_per_address(server):
    async with aiohttp.ClientSession() as http:
        statuses = [(await new_guest(http, server))[0] for _ in range(6)]
        assert statuses == [200] * 4 + [429] * 2
        _, headers, _ = await new_guest(http, server)
        assert int(headers["Retry-After"]) >= 1


async def test_guests_cannot_multiply_the_chat_limit(server):
    # Each guest may ask twice (the per-user limit), but all guests of one address together
    # only three times: thirty self-minted guests get no more than one does.
    cookies = []
    for _ in range(4):
        status, _, jar = await new_guest(None, server)
        assert status == 200
        cookies.append({name: morsel.value for name, morsel in jar.items()})
    chat = f"{server.url}/api/chat"
    statuses = [(await post(chat, MESSAGES, cookies=cookie))[0] for cookie in cookies]
    assert statuses == [200, 200, 200, 429]
    # A user the operator issued a token to is not a guest: only their own limit applies.
    token = issue_user_token(server.ctx.app.secret, "ada")
    headers = {"Authorization": f"Bearer {token}"}
    statuses = [(await post(chat, MESSAGES, headers=headers))[0] for _ in range(3)]
    assert statuses == [200, 200, 429]


async def test_a_page_sessions_guest_counts_at_the_browsers_address(server):
    # The served page speaks for its guest over loopback with a token naming the browser's
    # address: guests of two browsers do not share a bucket, though both come from 127.0.0.1.
    secret = server.ctx.app.secret
    results = {}
    for address in ("10.0.0.1", "10.0.0.2"):
        statuses = []
        for n in range(4):
            token = issue_user_token(secret, f"guest-{address}-{n}", guest=True, address=address)
            headers = {"Authorization": f"Bearer {token}"}
            statuses.append((await post(f"{server.url}/api/chat", MESSAGES, headers=headers))[0])
        results[address] = statuses
    assert results == {"10.0.0.1": [200, 200, 200, 429], "10.0.0.2": [200, 200, 200, 429]}


async def test_a_client_that_stalls_its_body_is_disconnected(tmp_path):
    server = DashboardServer(port=0, limits=Limits(body_timeout=0.5))
    await server.start()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        token = issue_user_token(server.ctx.app.secret, "ada")
        writer.write(
            b"POST /api/identity HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n"
            + f"Authorization: Bearer {token}\r\n\r\n".encode()
            + b'{"name": '  # ...and never the rest
        )
        await writer.drain()
        started = asyncio.get_running_loop().time()
        assert await asyncio.wait_for(reader.read(), 5) == b""  # closed, without an answer
        assert asyncio.get_running_loop().time() - started < 3
        writer.close()
    finally:
        await server.stop()


async def test_client_events_are_relayed_not_stored(server):
    # Any guest may send 10 client events a second on a room's presence channel; kept in
    # history they would pin memory long after the sockets close.
    token = issue_user_token(server.ctx.app.secret, "guest-1", guest=True)
    headers = {"Authorization": f"Bearer {token}"}
    url = f"ws://127.0.0.1:{server.port}/app/{server.ctx.app.key}?protocol=7"
    channel = "presence-room-flood"
    async with aiohttp.ClientSession(headers=headers) as http, http.ws_connect(url) as ws:
        socket_id = json.loads(json.loads(await ws.receive_str(timeout=5))["data"])["socket_id"]
        body = {"socket_id": socket_id, "channel_name": channel}
        async with http.post(f"{server.url}/pusher/auth", data=body) as response:
            auth = await response.json()
        await ws.send_str(
            json.dumps({"event": "pusher:subscribe", "data": {"channel": channel, **auth}})
        )
        assert "succeeded" in json.loads(await ws.receive_str(timeout=5))["event"]
        listener = await server.hub.subscribe([channel])
        for n in range(5):
            await ws.send_str(
                json.dumps({"event": "client-x", "channel": channel, "data": {"n": n}})
            )
        for _ in range(50):
            if listener.qsize() == 5:
                break
            await asyncio.sleep(0.02)
        assert [e.data for e in listener.next_nowait()] == [{"n": n} for n in range(5)]
        listener.close()
    assert (await server.hub.backend.position(channel)).offset == 0  # nothing was stored
    assert server.hub.stats().relayed == 5
