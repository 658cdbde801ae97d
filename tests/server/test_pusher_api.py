"""``/apps/{app_id}/...``: the official ``pusher`` PyPI SDK against a real server.

The SDK is synchronous (requests), so each call runs in a thread while the server's loop keeps
serving. Events are checked where they land: a real aiohttp Pusher socket, an SSE stream and a
hub subscription.
"""

from __future__ import annotations

import asyncio
import json
import time

import pusher
import pytest
from hypothesis import given
from hypothesis import strategies as st

from dashboard.core.pusher_frames import event_data_string
from dashboard.core.pusher_signatures import signed_params
from dashboard.server import DashboardServer
from dashboard.server.pusher_api import hub_data_json
from dashboard.server.pusher_app import PusherApp
from tests.server.helpers import RawStream
from tests.server.test_pusher_ws import KEY, QUERY, SECRET, Client

APP_ID = "42"


@pytest.fixture
async def srv():
    server = DashboardServer(port=0, pusher=PusherApp(app_id=APP_ID, key=KEY, secret=SECRET))
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
def sdk(srv):
    return make_sdk(srv)


def make_sdk(srv, **overrides) -> pusher.Pusher:
    settings = {"app_id": APP_ID, "key": KEY, "secret": SECRET, **overrides}
    return pusher.Pusher(host="127.0.0.1", port=srv.port, ssl=False, **settings)


async def call(method, *args, **kwargs):
    """Run a blocking SDK call off the event loop, which the server needs."""
    return await asyncio.to_thread(method, *args, **kwargs)


@pytest.fixture
async def connect(srv, http):
    sockets = []

    async def open_client() -> Client:
        ws = await http.ws_connect(f"ws://127.0.0.1:{srv.port}/app/{KEY}?{QUERY}")
        sockets.append(ws)
        client = Client(ws)
        client.socket_id = (await client.recv())["data"]["socket_id"]
        return client

    yield open_client
    for ws in sockets:
        await ws.close()


async def raw_request(http, srv, method, path, body=b"", *, timestamp=None, sign_body=None):
    """A request signed like an SDK does, with knobs the SDK does not expose."""
    now = time.time() if timestamp is None else timestamp
    signed_for = body if sign_body is None else sign_body
    params = signed_params(KEY, SECRET, method, path, {}, signed_for, now)
    async with http.request(method, f"{srv.url}{path}", params=params, data=body) as response:
        return response.status, await response.json()


async def assert_alive(sdk, client: Client | None = None) -> None:
    """The server still answers, and a live socket still gets events."""
    if client is not None:
        await call(sdk.trigger, "alive", "ping", {"ok": True})
        assert (await client.recv())["event"] == "ping"
    assert "channels" in await call(sdk.channels_info)


# -- data mapping, pure -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "stored"),
    [
        ('{"a": 1}', '{"a": 1}'),  # verbatim: SSE gets an object, Pusher the same text
        ("[1, 2]", "[1, 2]"),
        ("3.5", "3.5"),
        ("null", "null"),
        ("hello", '"hello"'),
        ('"quoted"', '"\\"quoted\\""'),  # a JSON string literal keeps its quotes for Pusher
        ("NaN", '"NaN"'),
        ("", '""'),
        ("{broken", '"{broken"'),
    ],
)
def test_hub_data_json_table(data, stored):
    assert hub_data_json(data) == stored
    json.loads(stored)


@given(st.text())
def test_pusher_clients_get_the_data_string_back_exactly(data):
    stored = hub_data_json(data)
    json.loads(stored)  # always valid JSON for the hub
    assert event_data_string(stored) == data


# -- publishing ---------------------------------------------------------------------------


async def test_trigger_reaches_pusher_sockets_sse_and_hub(srv, sdk, connect, http):
    client = await connect()
    await client.subscribe("metrics")
    response = await http.get(f"{srv.url}/api/events?channel=metrics")
    stream = RawStream(response)
    assert (await stream.next()).event == "connected"
    async with await srv.hub.subscribe(["alerts"]) as sub:
        answer = await call(sdk.trigger, ["metrics", "alerts"], "cpu", {"value": 0.5})
        assert answer == {}
        frame = await client.recv()
        # The exact string the SDK sent (json.dumps with ", " / ": "), as from Pusher.
        assert frame == {"event": "cpu", "channel": "metrics", "data": '{"value": 0.5}'}
        sse = await stream.next()
        assert (sse.event, json.loads(sse.data)["data"]) == ("cpu", {"value": 0.5})
        event = await asyncio.wait_for(anext(sub), 3)
        assert (event.channel, event.name, event.data) == ("alerts", "cpu", {"value": 0.5})

    await call(sdk.trigger, "metrics", "note", "hello")
    await call(sdk.trigger, "metrics", "quoted", '"hi"')
    assert (await client.recv())["data"] == "hello"
    assert (await client.recv())["data"] == '"hi"'
    assert json.loads((await stream.next()).data)["data"] == "hello"
    response.close()


async def test_trigger_info_reports_channel_attributes(srv, connect, http):
    client = await connect()
    await client.subscribe("metrics")
    event = {"name": "e", "data": "1", "channels": ["metrics", "empty"]}
    path = f"/apps/{APP_ID}/events"
    assert await raw_request(http, srv, "POST", path, json.dumps(event).encode()) == (200, {})
    event["info"] = "subscription_count"
    status, answer = await raw_request(http, srv, "POST", path, json.dumps(event).encode())
    assert (status, answer) == (
        200,
        {"channels": {"metrics": {"subscription_count": 1}, "empty": {"subscription_count": 0}}},
    )


async def test_trigger_batch(sdk, connect):
    client = await connect()
    await client.subscribe("a")
    await client.subscribe("b")
    batch = [
        {"channel": "a", "name": "one", "data": {"n": 1}},
        {"channel": "b", "name": "two", "data": "plain"},
        {"channel": "a", "name": "three", "data": [3]},
    ]
    assert await call(sdk.trigger_batch, batch) == {}
    frames = [await client.recv() for _ in range(3)]
    assert [(f["channel"], f["event"], f["data"]) for f in frames] == [
        ("a", "one", '{"n": 1}'),
        ("b", "two", "plain"),
        ("a", "three", "[3]"),
    ]


async def test_socket_id_excludes_the_sender(sdk, connect):
    ann, bob = await connect(), await connect()
    for client in (ann, bob):
        await client.subscribe("chat")
    await call(sdk.trigger, "chat", "said", "hi", socket_id=ann.socket_id)
    assert (await bob.recv())["data"] == "hi"
    await ann.nothing_pending()
    batch = [{"channel": "chat", "name": "again", "data": "x", "socket_id": bob.socket_id}]
    await call(sdk.trigger_batch, batch)
    assert (await ann.recv())["event"] == "again"
    await bob.nothing_pending()


# -- queries ------------------------------------------------------------------------------


async def presence_subscribe(sdk, client: Client, channel: str, user_id: str) -> dict:
    # The SDK's own helper signs it: our verification must agree with it byte for byte.
    auth = sdk.authenticate(
        channel, client.socket_id, {"user_id": user_id, "user_info": {"name": user_id}}
    )
    return await client.subscribe(channel, auth["channel_data"], auth=auth["auth"])


async def test_channels_channel_and_users_info(srv, sdk, connect, http):
    ann, bob, ann2, watcher = await connect(), await connect(), await connect(), await connect()
    for client, user in ((ann, "ann"), (bob, "bob"), (ann2, "ann")):
        answer = await presence_subscribe(sdk, client, "presence-room", user)
        assert answer["event"] == "pusher_internal:subscription_succeeded", answer
    assert (await ann.recv())["event"] == "pusher_internal:member_added"  # bob
    await watcher.subscribe("metrics")
    response = await http.get(f"{srv.url}/api/events?channel=metrics")
    await RawStream(response).next()  # connected: the stream is subscribed

    assert await call(sdk.channels_info) == {"channels": {"metrics": {}, "presence-room": {}}}
    assert await call(sdk.channels_info, "presence-", ["user_count"]) == {
        "channels": {"presence-room": {"user_count": 2}}
    }
    assert await call(sdk.channels_info, "met") == {"channels": {"metrics": {}}}
    assert await call(sdk.channel_info, "metrics", ["subscription_count"]) == {
        "occupied": True,
        "subscription_count": 2,  # one Pusher socket and one SSE stream
    }
    assert await call(sdk.channel_info, "presence-room", ["user_count", "subscription_count"]) == {
        "occupied": True,
        "user_count": 2,
        "subscription_count": 3,
    }
    assert await call(sdk.channel_info, "empty") == {"occupied": False}
    assert await call(sdk.users_info, "presence-room") == {"users": [{"id": "ann"}, {"id": "bob"}]}

    with pytest.raises(pusher.errors.PusherBadRequest, match="not_presence"):
        await call(sdk.users_info, "metrics")
    with pytest.raises(pusher.errors.PusherBadRequest, match="filter_by_prefix"):
        await call(sdk.channels_info, None, ["user_count"])
    with pytest.raises(pusher.errors.PusherBadRequest, match="presence"):
        await call(sdk.channel_info, "metrics", ["user_count"])
    with pytest.raises(pusher.errors.PusherBadRequest, match="unknown info"):
        await call(sdk.channel_info, "metrics", ["colour"])

    response.close()
    await bob.ws.close()
    await watcher.ws.close()
    # Bob's last socket left; the notice also orders the server's cleanup before the query.
    assert (await ann.recv())["event"] == "pusher_internal:member_removed"
    assert await call(sdk.users_info, "presence-room") == {"users": [{"id": "ann"}]}
    assert await call(sdk.channels_info) == {"channels": {"presence-room": {}}}


# -- refusals -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "code"),
    [({"secret": "wrong-secret"}, "invalid_signature"), ({"key": "wrong-key"}, "invalid_key")],
)
async def test_bad_credentials_are_401(srv, sdk, connect, overrides, code):
    client = await connect()
    await client.subscribe("alive")
    with pytest.raises(pusher.errors.PusherBadAuth, match=code):
        await call(make_sdk(srv, **overrides).trigger, "alive", "e", "x")
    await assert_alive(sdk, client)  # and the refused event was never published


async def test_wrong_app_id_is_404(srv, sdk):
    with pytest.raises(pusher.errors.PusherBadStatus, match="404"):
        await call(make_sdk(srv, app_id="43").channels_info)
    await assert_alive(sdk)


async def test_old_timestamp_is_401(srv, sdk, http):
    body = json.dumps({"name": "e", "data": "x", "channel": "a"}).encode()
    path = f"/apps/{APP_ID}/events"
    status, answer = await raw_request(http, srv, "POST", path, body, timestamp=time.time() - 1000)
    assert (status, answer["error"]) == (401, "invalid_timestamp")
    status, _ = await raw_request(http, srv, "POST", path, body)  # the same, fresh, is fine
    assert status == 200
    await assert_alive(sdk)


async def test_body_md5_mismatch_and_missing_auth_are_401(srv, sdk, http):
    path = f"/apps/{APP_ID}/events"
    signed = json.dumps({"name": "e", "data": "x", "channel": "a"}).encode()
    tampered = json.dumps({"name": "e", "data": "evil", "channel": "a"}).encode()
    status, answer = await raw_request(http, srv, "POST", path, tampered, sign_body=signed)
    assert (status, answer["error"]) == (401, "invalid_body_md5")
    async with http.post(f"{srv.url}{path}", data=signed) as response:
        assert response.status == 401
        assert (await response.json())["error"] == "missing_auth_params"
    await assert_alive(sdk)


async def test_oversize_data_is_413(sdk, connect):
    client = await connect()
    await client.subscribe("alive")
    at_limit = json.dumps(["x" * 10236])  # JSON text is stored verbatim: exactly 10240 bytes
    await call(sdk.trigger, "alive", "limit", at_limit)
    assert (await client.recv())["data"] == at_limit
    with pytest.raises(pusher.errors.PusherBadStatus, match="413"):
        await call(sdk.trigger, "alive", "big", json.dumps(["x" * 10237]))
    # Other text is stored as a JSON string, and its quotes count against the hub's limit.
    await call(sdk.trigger, "alive", "limit", "x" * 10238)
    assert (await client.recv())["data"] == "x" * 10238
    with pytest.raises(pusher.errors.PusherBadStatus, match="413"):
        await call(sdk.trigger, "alive", "big", "x" * 10239)
    with pytest.raises(pusher.errors.PusherBadStatus, match="413"):
        await call(sdk.trigger, "alive", "big", "é" * 5121)  # bytes, not characters
    await assert_alive(sdk, client)


async def test_too_many_channels_and_batch_events_are_400(srv, sdk, connect, http):
    client = await connect()
    await client.subscribe("alive")
    body = json.dumps({"name": "e", "data": "x", "channels": [f"c{i}" for i in range(101)]})
    status, answer = await raw_request(http, srv, "POST", f"/apps/{APP_ID}/events", body.encode())
    assert (status, answer["error"]) == (400, "too_many_channels")
    batch = [{"channel": "alive", "name": "e", "data": str(i)} for i in range(11)]
    with pytest.raises(pusher.errors.PusherBadRequest, match="batch_too_large"):
        await call(sdk.trigger_batch, batch, already_encoded=True)
    await assert_alive(sdk, client)  # nothing of either was published


async def test_a_bad_batch_publishes_nothing(sdk, connect):
    client = await connect()
    await client.subscribe("alive")
    batch = [
        {"channel": "alive", "name": "first", "data": "1"},
        {"channel": "bad name", "name": "second", "data": "2"},
    ]
    with pytest.raises(pusher.errors.PusherBadRequest, match="invalid_channel"):
        await call(sdk.trigger_batch, batch, already_encoded=True)
    await assert_alive(sdk, client)  # the first event would have arrived before this one


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b"{not json", "invalid_json"),
        (b"[]", "invalid_body"),
        (b'{"name": "e", "channel": "a"}', "missing_field"),
        (b'{"name": "e", "data": {"a": 1}, "channel": "a"}', "invalid_data"),
        (b'{"name": "e", "data": "\\ud800", "channel": "a"}', "invalid_json"),
        (b'{"name": "e", "data": "x"}', "missing_field"),
        (b'{"name": "e", "data": "x", "channel": "a", "channels": ["b"]}', "missing_field"),
        (b'{"name": "pusher:x", "data": "x", "channel": "a"}', "invalid_event"),
        (b'{"name": "e", "data": "x", "channel": "a", "socket_id": "nope"}', "invalid_socket_id"),
        (b'{"name": "e", "data": "x", "channels": []}', "invalid_channel"),
    ],
)
async def test_malformed_events_are_400(srv, sdk, http, body, error):
    status, answer = await raw_request(http, srv, "POST", f"/apps/{APP_ID}/events", body)
    assert (status, answer["error"]) == (400, error)
    await assert_alive(sdk)


async def test_unknown_api_path_is_a_json_404(srv, http):
    status, answer = await raw_request(http, srv, "GET", f"/apps/{APP_ID}/nothing")
    assert (status, answer["error"]) == (404, "not_found")
