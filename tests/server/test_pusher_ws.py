"""``/app/{key}``: Pusher protocol 7 against a real server and real aiohttp WebSocket clients."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest

from dashboard.core.pusher_signatures import sign_channel, sign_user
from dashboard.server import DashboardServer
from dashboard.server.pusher_app import PusherApp

KEY, SECRET = "test-key", "test-secret-0123456789"
QUERY = "protocol=7&client=js&version=8.4.0&flash=false"


class Client:
    """A Pusher client at frame level: what pusher-js sends and receives."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.socket_id = ""

    async def recv(self, timeout: float = 3.0) -> dict:
        message = await asyncio.wait_for(self.ws.receive(), timeout)
        assert message.type is aiohttp.WSMsgType.TEXT, message
        frame = json.loads(message.data)
        if frame["event"].startswith(("pusher:", "pusher_internal:")) and isinstance(
            frame.get("data"), str
        ):
            frame["data"] = json.loads(frame["data"])  # double-encoded, as pusher-js expects
        return frame

    async def send(self, event: str, data=None, channel: str | None = None) -> None:
        frame: dict = {"event": event, "data": {} if data is None else data}
        if channel is not None:
            frame["channel"] = channel
        await self.ws.send_str(json.dumps(frame))

    async def nothing_pending(self) -> None:
        """Round-trip a ping: anything sent to us before the pong would arrive first."""
        await self.send("pusher:ping")
        assert await self.recv() == {"event": "pusher:pong", "data": {}}

    async def subscribe(self, channel: str, channel_data: str | None = None, **extra) -> dict:
        data = {"channel": channel, **extra}
        if channel.startswith(("private-", "presence-")) and "auth" not in extra:
            data["auth"] = sign_channel(KEY, SECRET, self.socket_id, channel, channel_data)
        if channel_data is not None:
            data["channel_data"] = channel_data
        await self.send("pusher:subscribe", data)
        return await self.recv()


@pytest.fixture
async def pusher_server():
    app = PusherApp(app_id="1", key=KEY, secret=SECRET)
    srv = DashboardServer(port=0, pusher=app)
    await srv.start()
    yield srv
    await srv.stop()


@pytest.fixture
async def connect(pusher_server, http):
    sockets = []

    async def open_client(key: str = KEY, query: str = QUERY) -> Client:
        ws = await http.ws_connect(f"ws://127.0.0.1:{pusher_server.port}/app/{key}?{query}")
        sockets.append(ws)
        client = Client(ws)
        if key == KEY and query == QUERY:
            established = await client.recv()
            assert established["event"] == "pusher:connection_established"
            client.socket_id = established["data"]["socket_id"]
        return client

    yield open_client
    for ws in sockets:
        await ws.close()


def presence_data(user_id, name: str) -> str:
    # The ", " separators of json.dumps, as the pusher PyPI SDK signs it.
    return json.dumps({"user_id": user_id, "user_info": {"name": name}})


async def test_connection_established_and_ping_pong(connect):
    a, b = await connect(), await connect()
    assert a.socket_id != b.socket_id
    first, second = a.socket_id.split(".")
    assert first.isdigit() and second.isdigit()
    await a.send("pusher:ping")
    assert await a.recv() == {"event": "pusher:pong", "data": {}}


async def test_established_frame_is_double_encoded(pusher_server, http):
    async with http.ws_connect(f"ws://127.0.0.1:{pusher_server.port}/app/{KEY}?{QUERY}") as ws:
        frame = json.loads((await ws.receive(timeout=3)).data)
    assert isinstance(frame["data"], str)
    assert json.loads(frame["data"])["activity_timeout"] == 120


@pytest.mark.parametrize(
    ("key", "query", "code"),
    [
        ("wrong-key", QUERY, 4001),
        (KEY, "client=js&version=8.4.0", 4008),
        (KEY, "protocol=6&client=js", 4007),
        (KEY, "protocol=seven", 4006),
    ],
)
async def test_refused_connections_get_an_error_then_the_close_code(connect, key, query, code):
    client = await connect(key, query)
    frame = await client.recv()
    assert frame["event"] == "pusher:error" and frame["data"]["code"] == code
    closing = await asyncio.wait_for(client.ws.receive(), 3)
    assert closing.type is aiohttp.WSMsgType.CLOSE and closing.data == code


async def test_public_channel_gets_hub_events_until_unsubscribed(pusher_server, connect):
    client = await connect()
    assert await client.subscribe("metrics") == {
        "event": "pusher_internal:subscription_succeeded",
        "channel": "metrics",
        "data": {},
    }
    await pusher_server.hub.publish("metrics", "cpu", {"value": 0.5})
    await pusher_server.hub.publish("metrics", "note", "hello")
    await pusher_server.hub.publish("other", "cpu", 1)
    cpu, note = await client.recv(), await client.recv()
    # data is a string; pusher-js JSON-parses it when it can.
    assert cpu == {"event": "cpu", "channel": "metrics", "data": '{"value":0.5}'}
    assert note == {"event": "note", "channel": "metrics", "data": "hello"}
    await client.nothing_pending()
    await client.send("pusher:unsubscribe", {"channel": "metrics"})
    await client.nothing_pending()  # unsubscribing has no answer; this orders it
    await pusher_server.hub.publish("metrics", "cpu", 2)
    await client.nothing_pending()
    assert pusher_server.hub.stats().channels == 0


async def test_large_events_use_extended_frame_lengths(pusher_server, connect):
    """Hub events are written as pre-built frames: lengths past 125 bytes must still parse."""
    client = await connect()
    await client.subscribe("metrics")
    for size in (100, 200, 9000):
        await pusher_server.hub.publish("metrics", "blob", "é" * (size // 2))
        frame = await client.recv()
        assert frame["data"] == "é" * (size // 2)


async def test_private_channel_with_a_valid_signature(pusher_server, connect):
    client = await connect()
    answer = await client.subscribe("private-orders")
    assert answer["event"] == "pusher_internal:subscription_succeeded"
    await pusher_server.hub.publish("private-orders", "new", {"id": 7})
    assert (await client.recv())["data"] == '{"id":7}'


@pytest.mark.parametrize(
    "auth",
    [
        lambda sid: sign_channel(KEY, SECRET, "1.1", "private-orders"),  # another socket
        lambda sid: sign_channel(KEY, SECRET, sid, "private-other"),  # another channel
        lambda sid: sign_channel(KEY, "other-secret", sid, "private-orders"),
        lambda sid: "other-key:" + sign_channel(KEY, SECRET, sid, "private-orders").split(":")[1],
        lambda sid: None,
    ],
)
async def test_private_channel_with_a_bad_signature_is_refused(pusher_server, connect, auth):
    client = await connect()
    extra = {} if auth(client.socket_id) is None else {"auth": auth(client.socket_id)}
    await client.send("pusher:subscribe", {"channel": "private-orders", **extra})
    answer = await client.recv()
    assert answer["event"] == "pusher:subscription_error"
    assert answer["channel"] == "private-orders" and answer["data"]["status"] == 401
    await pusher_server.hub.publish("private-orders", "new", 1)
    await client.nothing_pending()


async def test_presence_channel_data_is_verified_byte_for_byte(connect):
    client = await connect()
    sent = presence_data(1, "Ann")
    signed = json.dumps(json.loads(sent), separators=(",", ":"))  # re-serialised
    auth = sign_channel(KEY, SECRET, client.socket_id, "presence-room", signed)
    answer = await client.subscribe("presence-room", sent, auth=auth)
    assert answer["event"] == "pusher:subscription_error"
    bad = '{"user_info": {}}'
    answer = await client.subscribe("presence-room", bad)
    assert answer["event"] == "pusher:subscription_error" and answer["data"]["status"] == 400


async def test_presence_members_are_users_not_sockets(connect):
    ann1, bob, ann2 = await connect(), await connect(), await connect()
    first = await ann1.subscribe("presence-room", presence_data(1, "Ann"))
    assert first["event"] == "pusher_internal:subscription_succeeded"
    assert first["data"] == {"presence": {"ids": ["1"], "hash": {"1": {"name": "Ann"}}, "count": 1}}
    snapshot = (await bob.subscribe("presence-room", presence_data("bob", "Bob")))["data"]
    assert snapshot["presence"]["ids"] == ["1", "bob"] and snapshot["presence"]["count"] == 2
    assert await ann1.recv() == {
        "event": "pusher_internal:member_added",
        "channel": "presence-room",
        "data": {"user_id": "bob", "user_info": {"name": "Bob"}},
    }
    # Ann's second tab: not a new member, nobody is told.
    snapshot = (await ann2.subscribe("presence-room", presence_data(1, "Ann")))["data"]
    assert snapshot["presence"]["count"] == 2
    await bob.nothing_pending()
    await ann1.nothing_pending()

    await ann2.ws.close()  # one of Ann's sockets leaves: she is still there
    await bob.nothing_pending()
    await ann1.send("pusher:unsubscribe", {"channel": "presence-room"})  # her last one
    assert await bob.recv() == {
        "event": "pusher_internal:member_removed",
        "channel": "presence-room",
        "data": {"user_id": "1"},
    }
    await bob.ws.close()
    await ann1.nothing_pending()


async def test_client_events_reach_others_but_not_the_sender(connect):
    ann, bob = await connect(), await connect()
    for client in (ann, bob):
        assert (await client.subscribe("private-chat"))["event"].endswith("succeeded")
    await ann.send("client-typing", {"who": "ann"}, channel="private-chat")
    await ann.send("client-said", "hi", channel="private-chat")
    assert await bob.recv() == {
        "event": "client-typing",
        "channel": "private-chat",
        "data": '{"who": "ann"}',  # relayed exactly as sent
    }
    assert (await bob.recv())["data"] == "hi"
    await ann.nothing_pending()


async def test_client_events_on_presence_carry_the_user_id(connect):
    ann, bob = await connect(), await connect()
    await ann.subscribe("presence-room", presence_data(1, "Ann"))
    await bob.subscribe("presence-room", presence_data(2, "Bob"))
    await ann.recv()  # member_added for Bob
    await bob.send("client-wave", {}, channel="presence-room")
    frame = await ann.recv()
    assert (frame["event"], frame["user_id"]) == ("client-wave", "2")


async def test_client_events_are_rejected_where_not_allowed(connect):
    client = await connect()
    await client.subscribe("public")
    await client.send("client-x", {}, channel="public")
    assert (await client.recv())["event"] == "pusher:error"
    await client.send("client-x", {}, channel="private-never-subscribed")
    assert (await client.recv())["event"] == "pusher:error"


@pytest.mark.parametrize("channel", ["private-notifications", "private-user-ann"])
async def test_nobody_sends_client_events_on_notification_channels(connect, channel):
    # Listeners trust what arrives there: only the server may publish on them.
    ann, bob = await connect(), await connect()
    for client in (ann, bob):
        assert (await client.subscribe(channel))["event"].endswith("succeeded")
    await ann.send("client-notification", {"title": "fake"}, channel=channel)
    refusal = await ann.recv()
    assert refusal["event"] == "pusher:error" and "only the server" in refusal["data"]["message"]
    await bob.nothing_pending()


async def test_client_event_rate_limit_hits_only_the_sender(connect):
    ann, bob, cat = await connect(), await connect(), await connect()
    for client in (ann, bob, cat):
        await client.subscribe("private-chat")
    for i in range(15):
        await ann.send("client-n", i, channel="private-chat")
    await ann.send("pusher:ping")
    errors = []
    while (frame := await ann.recv())["event"] != "pusher:pong":
        errors.append(frame)  # the rejections, and never her own events
    assert {(e["event"], e["data"]["code"]) for e in errors} == {("pusher:error", 4301)}
    await cat.send("client-from-cat", 1, channel="private-chat")
    relayed = []
    while True:
        frame = await bob.recv()
        if frame["event"] == "client-from-cat":
            break
        relayed.append(int(frame["data"]))
    assert 10 <= len(relayed) < 15 and relayed == list(range(len(relayed)))
    assert len(relayed) + len(errors) == 15


async def test_rate_limit_errors_carry_4301(connect):
    ann = await connect()
    await ann.subscribe("private-chat")
    for i in range(12):
        await ann.send("client-n", i, channel="private-chat")
    error = await ann.recv()
    assert error["event"] == "pusher:error" and error["data"]["code"] == 4301


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ("not json", None),
        ("[1, 2]", None),
        ('{"event": "pusher:subscribe", "data": {}}', None),
        ('{"event": "pusher:subscribe", "data": {"channel": "bad name"}}', None),
        ('{"event": "no-such-event", "data": {}}', None),
        ('{"event": "pusher_internal:member_added", "data": {}}', None),
        ('{"event": "client-x", "data": {}}', None),
        (json.dumps({"event": "client-x", "channel": "private-a", "data": "x" * 11_000}), 4301),
    ],
)
async def test_malformed_frames_get_errors_and_nothing_else_breaks(
    pusher_server, connect, frame, code
):
    bad, good = await connect(), await connect()
    await good.subscribe("metrics")
    await bad.ws.send_str(frame)
    answer = await bad.recv()
    assert answer["event"] == "pusher:error" and answer["data"]["code"] == code
    await bad.nothing_pending()
    await pusher_server.hub.publish("metrics", "cpu", 1)
    assert (await good.recv())["event"] == "cpu"


async def test_binary_frames_get_an_error(connect):
    client = await connect()
    await client.ws.send_bytes(b'{"event": "pusher:ping"}')
    assert (await client.recv())["event"] == "pusher:error"
    await client.nothing_pending()


async def test_signin(connect):
    client = await connect()
    user_data = json.dumps({"id": "ann", "name": "Ann"})
    auth = sign_user(KEY, SECRET, client.socket_id, user_data)
    await client.send("pusher:signin", {"auth": auth, "user_data": user_data})
    assert await client.recv() == {
        "event": "pusher:signin_success",
        "data": {"user_data": user_data},
    }
    await client.send("pusher:signin", {"auth": auth + "0", "user_data": user_data})
    answer = await client.recv()
    assert answer["event"] == "pusher:error" and answer["data"]["code"] == 4009


async def test_silent_connection_is_pinged_then_closed(http):
    app = PusherApp(key=KEY, secret=SECRET, activity_timeout=0.2, pong_timeout=0.3)
    srv = DashboardServer(port=0, pusher=app)
    await srv.start()
    try:
        url = f"ws://127.0.0.1:{srv.port}/app/{KEY}?{QUERY}"
        async with http.ws_connect(url) as silent, http.ws_connect(url) as alive:
            silent_client, alive_client = Client(silent), Client(alive)
            established = await silent_client.recv()
            assert established["data"]["activity_timeout"] == 1  # whole seconds on the wire
            await alive_client.recv()
            await alive_client.subscribe("metrics")
            assert (await silent_client.recv())["event"] == "pusher:ping"
            for _ in range(3):  # the live one answers each ping and stays
                assert (await alive_client.recv(timeout=1))["event"] == "pusher:ping"
                await alive_client.send("pusher:pong")
            closing = await asyncio.wait_for(silent.receive(), 3)
            assert closing.type is aiohttp.WSMsgType.CLOSE and closing.data == 4201
            await srv.hub.publish("metrics", "cpu", 1)
            frame = await alive_client.recv()
            while frame["event"] == "pusher:ping":
                frame = await alive_client.recv()
            assert frame["event"] == "cpu"
    finally:
        await srv.stop()


async def test_server_stop_closes_pusher_sockets_with_reconnect_code(http):
    srv = DashboardServer(port=0, pusher=PusherApp(key=KEY, secret=SECRET))
    await srv.start()
    url = f"ws://127.0.0.1:{srv.port}/app/{KEY}?{QUERY}"
    async with http.ws_connect(url) as idle, http.ws_connect(url) as busy:
        await Client(idle).recv()
        busy_client = Client(busy)
        await busy_client.recv()
        await busy_client.subscribe("metrics")
        await srv.stop()
        for ws in (idle, busy):
            closing = await asyncio.wait_for(ws.receive(), 3)
            assert closing.type is aiohttp.WSMsgType.CLOSE and closing.data == 4200
    assert srv.ctx.pusher_sockets == {} and srv.ctx.pusher_channels == {}
    assert srv.ctx.presence.roster.channels() == []


async def test_presence_limits_are_subscription_errors(pusher_server, connect):
    pusher_server.ctx.presence.max_members = 1
    ann, bob, ann2 = await connect(), await connect(), await connect()
    assert (await ann.subscribe("presence-room", presence_data(1, "Ann")))["event"].endswith(
        "succeeded"
    )
    full = await bob.subscribe("presence-room", presence_data(2, "Bob"))
    assert full["event"] == "pusher:subscription_error"
    assert full["data"]["type"] == "LimitReached"
    # Another socket of a member is not a new member.
    assert (await ann2.subscribe("presence-room", presence_data(1, "Ann")))["event"].endswith(
        "succeeded"
    )
    # The same socket cannot come back as someone else; its first subscription stands.
    other = await ann.subscribe("presence-room", presence_data(3, "Cy"))
    assert other["event"] == "pusher:subscription_error"
    big = json.dumps({"user_id": 4, "user_info": {"bio": "x" * 2000}})
    assert (await bob.subscribe("presence-other", big))["data"]["status"] == 400
    await pusher_server.hub.publish("presence-room", "news", 1)
    for client in (ann, ann2):
        assert (await client.recv())["event"] == "news"
    await bob.nothing_pending()


async def test_a_client_that_stops_reading_is_disconnected(http):
    from dashboard.hub import Hub

    srv = DashboardServer(Hub(queue_size=8), port=0, pusher=PusherApp(key=KEY, secret=SECRET))
    await srv.start()
    try:
        url = f"ws://127.0.0.1:{srv.port}/app/{KEY}?{QUERY}"
        async with http.ws_connect(url, max_msg_size=0) as stalled, http.ws_connect(url) as ok:
            ids = []
            for ws in (stalled, ok):
                client = Client(ws)
                client.socket_id = (await client.recv())["data"]["socket_id"]
                await client.subscribe("firehose")
                ids.append(client.socket_id)
            stalled_id = ids[0]

            async def read_ok() -> int:
                """The blobs the reading client gets, up to the "last" event."""
                count = 0
                async for message in ok:
                    if json.loads(message.data)["event"] == "last":
                        return count
                    count += 1
                return -1

            reader = asyncio.create_task(read_ok())
            payload = "x" * 8000
            # The stalled client reads nothing: aiohttp stops reading at its buffer limit, then
            # the kernel buffers fill, then the hub queue; the server must give up on it.
            published = 0
            while stalled_id in srv.ctx.pusher_sockets and published < 20_000:
                await srv.hub.publish("firehose", "blob", payload)
                published += 1
                await asyncio.sleep(0)
            assert stalled_id not in srv.ctx.pusher_sockets  # dropped, and only it
            assert len(srv.ctx.pusher_sockets) == 1 and srv.hub.stats().subscribers == 1
            await srv.hub.publish("firehose", "last", 1)
            assert await asyncio.wait_for(reader, 5) == published  # it lost nothing
    finally:
        await srv.stop()


async def test_a_burst_to_a_busy_socket_arrives_whole_and_in_order(connect, pusher_server):
    # Megabytes at once fill the socket, so later events queue and a drainer writes them.
    client = await connect()
    await client.subscribe("burst")
    payload = "x" * 9000
    for n in range(900):
        await pusher_server.hub.publish("burst", "e", {"n": n, "pad": payload})
    handler = pusher_server.ctx.pusher_sockets[client.socket_id]
    assert handler._drainer is not None  # the backlog path was taken
    received = [json.loads((await client.recv(10))["data"])["n"] for _ in range(900)]
    assert received == list(range(900))
    await client.nothing_pending()
    assert handler._drainer.done()  # no task is parked once the backlog is gone
