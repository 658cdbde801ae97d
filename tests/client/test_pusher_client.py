"""PusherClient against a real DashboardServer on a loopback port (and, for the ping/pong
timing, a scripted aiohttp WebSocket server). Every wait is bounded."""

from __future__ import annotations

import asyncio
import itertools
import json
import time

import aiohttp
import pytest
from aiohttp import web

from dashboard.client import (
    Channel,
    PresenceChannel,
    PusherClient,
    PusherClosedError,
    PusherEvent,
    SubscriptionError,
    local_authorizer,
    local_user_authenticator,
)
from dashboard.client.pusher import pusher_url
from dashboard.core.connection import ConnectionState, ConnectionStatus
from dashboard.server import DashboardServer
from dashboard.server.pusher_app import PusherApp
from dashboard.server.pusher_ws import close_all
from tests.waiting import until

KEY, SECRET = "test-key", "test-secret-0123456789"
WAIT = 5.0


def fast_backoff(initial: float):
    return itertools.repeat(0.05)


@pytest.fixture
async def server():
    srv = DashboardServer(port=0, pusher=PusherApp(app_id="1", key=KEY, secret=SECRET))
    await srv.start()
    yield srv
    await srv.stop()


@pytest.fixture
async def make_client(server):
    clients: list[PusherClient] = []

    def make(**kwargs) -> PusherClient:
        kwargs.setdefault("authorizer", local_authorizer(KEY, SECRET))
        kwargs.setdefault("backoff", fast_backoff)
        client = PusherClient(f"127.0.0.1:{server.port}", kwargs.pop("key", KEY), **kwargs)
        clients.append(client)
        return client

    yield make
    for client in clients:
        await asyncio.wait_for(client.aclose(), WAIT)


async def next_event(channel: Channel) -> PusherEvent:
    return await asyncio.wait_for(anext(aiter(channel)), WAIT)


def test_url_building():
    url = pusher_url("http://example.com:8080/base/", "k")
    assert url.scheme == "ws" and url.port == 8080 and url.path == "/base/app/k"
    assert url.query["protocol"] == "7" and url.query["client"] == "dashboard-py"
    assert pusher_url("localhost:5006", "k").human_repr().startswith("ws://localhost:5006/app/k?")
    assert pusher_url("https://h", "k").scheme == "wss"
    with pytest.raises(ValueError):
        pusher_url("ftp://h", "k")


async def test_connect_gives_socket_id_and_status(make_client):
    client = make_client()
    seen: list[ConnectionStatus] = []
    client.watch_status(seen.append)
    assert client.status.state is ConnectionState.CONNECTING
    await asyncio.wait_for(client.connect(), WAIT)
    assert client.status.connected
    first, second = (client.socket_id or "").split(".")
    assert first.isdigit() and second.isdigit()
    await asyncio.wait_for(client.aclose(), WAIT)
    assert [s.state for s in seen] == [ConnectionState.OPEN, ConnectionState.CLOSED]
    assert client.fatal_error is None


async def test_public_channel_receives_hub_events(server, make_client):
    client = make_client()
    channel = await asyncio.wait_for(client.subscribe("prices"), WAIT)
    assert channel.subscribed and type(channel) is Channel
    bound: list[PusherEvent] = []
    channel.bind("tick", bound.append)
    await server.hub.publish("prices", "tick", {"price": 1.5})
    await server.hub.publish("prices", "note", "plain text")
    assert await next_event(channel) == PusherEvent("prices", "tick", {"price": 1.5})
    assert await next_event(channel) == PusherEvent("prices", "note", "plain text")
    assert bound == [PusherEvent("prices", "tick", {"price": 1.5})]
    assert await client.subscribe("prices") is channel


async def test_private_channel_with_local_authorizer(server, make_client):
    client = make_client()
    channel = await asyncio.wait_for(client.subscribe("private-orders"), WAIT)
    await server.hub.publish("private-orders", "new", [1, 2])
    assert (await next_event(channel)).data == [1, 2]


async def test_wrong_secret_raises_subscription_error(make_client):
    client = make_client(authorizer=local_authorizer(KEY, "wrong"))
    with pytest.raises(SubscriptionError) as info:
        await asyncio.wait_for(client.subscribe("private-orders"), WAIT)
    assert info.value.status == 401 and info.value.channel == "private-orders"
    assert "private-orders" not in client.channels
    assert client.status.connected  # a refused subscription leaves the connection alone


async def test_failing_authorizer_raises_subscription_error(make_client):
    async def broken(socket_id, channel, channel_data):
        raise RuntimeError("auth endpoint down")

    client = make_client(authorizer=broken)
    with pytest.raises(SubscriptionError, match="auth endpoint down") as info:
        await asyncio.wait_for(client.subscribe("private-x"), WAIT)
    assert info.value.status is None


async def test_private_channel_needs_an_authorizer(make_client):
    client = make_client(authorizer=None)
    with pytest.raises(ValueError):
        await client.subscribe("private-x")


async def test_presence_members_across_two_clients(make_client):
    alice = make_client(authorizer=local_authorizer(KEY, SECRET, "alice", {"name": "Alice"}))
    bob = make_client(authorizer=local_authorizer(KEY, SECRET, 7, {"name": "Bob"}))
    room_a = await asyncio.wait_for(alice.subscribe("presence-room"), WAIT)
    assert isinstance(room_a, PresenceChannel)
    assert room_a.me == "alice" and room_a.members == {"alice": {"name": "Alice"}}
    changes: list[dict] = []
    room_a.on_members_change(changes.append)
    added: list[PusherEvent] = []
    room_a.bind("pusher:member_added", added.append)

    room_b = await asyncio.wait_for(bob.subscribe("presence-room"), WAIT)
    assert isinstance(room_b, PresenceChannel) and room_b.me == "7"
    assert room_b.members == {"alice": {"name": "Alice"}, "7": {"name": "Bob"}}
    await until(lambda: "7" in room_a.members)
    assert added[0].data == {"user_id": "7", "user_info": {"name": "Bob"}}

    await asyncio.wait_for(bob.aclose(), WAIT)
    await until(lambda: "7" not in room_a.members)
    assert room_a.members == {"alice": {"name": "Alice"}}
    assert changes[-1] == {"alice": {"name": "Alice"}} and len(changes) == 2


async def test_explicit_channel_data_wins(make_client):
    client = make_client()
    room = await asyncio.wait_for(
        client.subscribe("presence-x", {"user_id": "u1", "user_info": None}), WAIT
    )
    assert isinstance(room, PresenceChannel) and room.me == "u1" and list(room.members) == ["u1"]


async def test_client_events_reach_others_but_not_the_sender(make_client):
    alice = make_client(authorizer=local_authorizer(KEY, SECRET, "alice"))
    bob = make_client(authorizer=local_authorizer(KEY, SECRET, "bob"))
    room_a = await asyncio.wait_for(alice.subscribe("presence-chat"), WAIT)
    room_b = await asyncio.wait_for(bob.subscribe("presence-chat"), WAIT)
    await room_a.trigger("client-typing", {"on": True})
    assert await next_event(room_b) == PusherEvent(
        "presence-chat", "client-typing", {"on": True}, "alice"
    )
    await room_b.trigger("client-typing", "yes")
    assert await next_event(room_a) == PusherEvent("presence-chat", "client-typing", "yes", "bob")
    # Alice's own event was not echoed: the one event she got was Bob's.
    assert not room_a._queue

    private_a = await asyncio.wait_for(alice.subscribe("private-p"), WAIT)
    private_b = await asyncio.wait_for(bob.subscribe("private-p"), WAIT)
    await private_a.trigger("client-x", [1])
    assert await next_event(private_b) == PusherEvent("private-p", "client-x", [1], None)


async def test_trigger_validation(make_client):
    client = make_client()
    public = await asyncio.wait_for(client.subscribe("public"), WAIT)
    private = await asyncio.wait_for(client.subscribe("private-p"), WAIT)
    with pytest.raises(ValueError):
        await public.trigger("client-x", 1)
    with pytest.raises(ValueError):
        await private.trigger("not-client", 1)


async def test_reconnect_resubscribes_and_resyncs(server, make_client):
    alice = make_client(authorizer=local_authorizer(KEY, SECRET, "alice"))
    seen: list[ConnectionState] = []
    alice.watch_status(lambda status: seen.append(status.state))
    public = await asyncio.wait_for(alice.subscribe("news"), WAIT)
    private = await asyncio.wait_for(alice.subscribe("private-p"), WAIT)
    room = await asyncio.wait_for(alice.subscribe("presence-r"), WAIT)
    assert isinstance(room, PresenceChannel)
    first_socket = alice.socket_id
    room.members["ghost"] = None  # stale state that the re-sync must replace

    close_all(server.ctx)  # 4200: reconnect at once
    await until(lambda: seen[-1:] == [ConnectionState.OPEN] and len(seen) >= 3)
    assert seen == [ConnectionState.OPEN, ConnectionState.RECONNECTING, ConnectionState.OPEN]
    assert alice.socket_id != first_socket
    await until(lambda: public.subscribed and private.subscribed and room.subscribed)
    assert room.members == {"alice": None}

    await server.hub.publish("news", "a", 1)
    await server.hub.publish("private-p", "b", 2)
    assert (await next_event(public)).data == 1
    assert (await next_event(private)).data == 2


async def test_reconnect_after_server_restart(server, make_client):
    client = make_client()
    channel = await asyncio.wait_for(client.subscribe("news"), WAIT)
    port = server.port
    await server.stop()
    await until(lambda: client.status.state is ConnectionState.RECONNECTING)
    restarted = DashboardServer(port=port, pusher=PusherApp(app_id="1", key=KEY, secret=SECRET))
    await restarted.start()
    try:
        await until(lambda: channel.subscribed)
        await restarted.hub.publish("news", "back", True)
        assert (await next_event(channel)).data is True
    finally:
        await asyncio.wait_for(client.aclose(), WAIT)
        await restarted.stop()


async def test_wrong_key_is_fatal_without_retry(server, make_client):
    client = make_client(key="wrong-key")
    seen: list[ConnectionStatus] = []
    client.watch_status(seen.append)
    with pytest.raises(PusherClosedError) as info:
        await asyncio.wait_for(client.connect(), WAIT)
    assert info.value.code == 4001
    assert client.status.state is ConnectionState.CLOSED
    assert client.status.last_error and "wrong-key" in client.status.last_error
    assert [s.state for s in seen] == [ConnectionState.CLOSED]
    with pytest.raises(PusherClosedError):
        await client.subscribe("news")


async def test_aclose_during_waits_is_prompt(server, make_client):
    client = make_client()
    channel = await asyncio.wait_for(client.subscribe("news"), WAIT)
    consumer = asyncio.ensure_future(next_event(channel))

    # A connection that never opens: a server that accepts TCP but never answers.
    async def silent(reader, writer):
        await asyncio.sleep(WAIT)
        writer.close()

    hung = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = hung.sockets[0].getsockname()[1]
    stuck = PusherClient(f"127.0.0.1:{port}", KEY, connect_timeout=30)
    connecting = asyncio.ensure_future(stuck.connect())
    subscribing = asyncio.ensure_future(stuck.subscribe("news"))
    await asyncio.sleep(0.1)
    started = time.monotonic()
    await asyncio.wait_for(asyncio.gather(client.aclose(), stuck.aclose()), 1)
    assert time.monotonic() - started < 1
    with pytest.raises(StopAsyncIteration):
        await asyncio.wait_for(consumer, 1)
    for waiting in (connecting, subscribing):
        with pytest.raises(PusherClosedError):
            await asyncio.wait_for(waiting, 1)
    hung.close()


async def test_unsubscribe_ends_iteration_and_stops_events(server, make_client):
    client = make_client()
    channel = await asyncio.wait_for(client.subscribe("news"), WAIT)
    await server.hub.publish("news", "a", 1)
    await until(lambda: len(channel._queue) == 1)
    await channel.unsubscribe()
    assert [event.data async for event in channel] == [1]
    assert "news" not in client.channels


async def test_full_queue_drops_the_oldest(server, make_client):
    client = make_client(max_queue=2)
    channel = await asyncio.wait_for(client.subscribe("news"), WAIT)
    for n in range(4):
        await server.hub.publish("news", "n", n)
    await until(lambda: channel.dropped == 2)
    assert [(await next_event(channel)).data for _ in range(2)] == [2, 3]


async def test_signin(make_client):
    client = make_client(user_authenticator=local_user_authenticator(KEY, SECRET))
    await asyncio.wait_for(client.signin({"id": "u1", "name": "U"}), WAIT)
    assert client.user_data and json.loads(client.user_data)["id"] == "u1"


# --- ping / pong timing, against a scripted server ----------------------------------------


async def test_answers_pings_pings_when_idle_and_reconnects_when_dead(make_client):
    received: list[list[str]] = []
    connections = 0

    async def handler(request: web.Request) -> web.WebSocketResponse:
        nonlocal connections
        connections += 1
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        frames: list[str] = []
        received.append(frames)
        data = json.dumps({"socket_id": f"{connections}.1", "activity_timeout": 120})
        await ws.send_str(json.dumps({"event": "pusher:connection_established", "data": data}))
        await ws.send_str(json.dumps({"event": "pusher:ping", "data": {}}))
        async for message in ws:  # never answers the client's pings
            frames.append(json.loads(message.data)["event"])
        return ws

    app = web.Application()
    app.router.add_get("/app/{key}", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    client = PusherClient(
        f"127.0.0.1:{port}", KEY, activity_timeout=0.2, pong_timeout=0.2, backoff=fast_backoff
    )
    seen: list[ConnectionStatus] = []
    client.watch_status(seen.append)
    try:
        await asyncio.wait_for(client.connect(), WAIT)
        await until(lambda: connections >= 2)
        assert received[0][:2] == ["pusher:pong", "pusher:ping"]
        reconnecting = [s for s in seen if s.state is ConnectionState.RECONNECTING]
        assert reconnecting and "no pong" in (reconnecting[0].last_error or "")
    finally:
        await asyncio.wait_for(client.aclose(), WAIT)
        await runner.cleanup()


async def test_non_fatal_close_code_backs_off(make_client):
    attempts: list[float] = []

    async def handler(request: web.Request) -> web.WebSocketResponse:
        attempts.append(time.monotonic())
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.close(code=4100, message=b"over capacity")
        return ws

    app = web.Application()
    app.router.add_get("/app/{key}", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    client = PusherClient(f"127.0.0.1:{port}", KEY, backoff=lambda _: itertools.repeat(0.3))
    try:
        client._start()
        await until(lambda: len(attempts) >= 2)
        assert attempts[1] - attempts[0] >= 0.25
        assert client.status.state is ConnectionState.RECONNECTING
        assert "4100" in (client.status.last_error or "")
    finally:
        await asyncio.wait_for(client.aclose(), WAIT)
        await runner.cleanup()


async def test_session_is_borrowed_not_closed(server):
    async with aiohttp.ClientSession() as session:
        client = PusherClient(f"http://127.0.0.1:{server.port}", KEY, session=session)
        async with client:
            assert client.status.connected
        assert not session.closed
