"""Two real servers sharing Redis answer as one: presence over Pusher sockets, occupancy and
the HTTP API (``/apps/{id}/channels``, ``.../channels/{name}``, ``.../users``)."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from dashboard.server import DashboardServer
from dashboard.server.pusher_app import PusherApp
from tests.redis_support import REDIS_URL
from tests.server.helpers import RawStream
from tests.server.test_pusher_api import APP_ID, call, make_sdk
from tests.server.test_pusher_ws import KEY, QUERY, SECRET, Client

ROOM = "presence-room"


@pytest.fixture
async def pair(redis_client, redis_prefix):
    servers = [
        DashboardServer(
            port=0,
            pusher=PusherApp(app_id=APP_ID, key=KEY, secret=SECRET),
            redis_url=REDIS_URL,
            redis_prefix=redis_prefix,
        )
        for _ in range(2)
    ]
    for server in servers:
        await server.start()
    yield servers
    for server in servers:
        await server.stop()


@pytest.fixture
async def connect(http):
    sockets = []

    async def open_client(server) -> Client:
        ws = await http.ws_connect(f"ws://127.0.0.1:{server.port}/app/{KEY}?{QUERY}")
        sockets.append(ws)
        client = Client(ws)
        client.socket_id = (await client.recv())["data"]["socket_id"]
        return client

    yield open_client
    for ws in sockets:
        await ws.close()


async def join(client: Client, user: str) -> dict:
    data = json.dumps({"user_id": user, "user_info": {"name": user.title()}})
    answer = await client.subscribe(ROOM, data)
    assert answer["event"] == "pusher_internal:subscription_succeeded", answer
    return answer["data"]["presence"]


async def test_one_roster_across_processes(pair, connect):
    a, b = pair
    ada = await connect(a)
    assert (await join(ada, "ada"))["ids"] == ["ada"]
    bob = await connect(b)
    roster = await join(bob, "bob")
    assert roster["ids"] == ["ada", "bob"] and roster["hash"]["ada"] == {"name": "Ada"}
    added = await ada.recv()
    assert added["event"] == "pusher_internal:member_added"
    assert added["data"] == {"user_id": "bob", "user_info": {"name": "Bob"}}

    ada_tab2 = await connect(b)  # Ada's second tab, on the other process: no news
    assert (await join(ada_tab2, "ada"))["count"] == 2
    await ada.ws.close()  # her first tab leaves; she is still here through the second
    bob_tab2 = await connect(a)
    assert (await join(bob_tab2, "bob"))["ids"] == ["ada", "bob"]
    await bob.nothing_pending()  # no member_removed, no second member_added
    await ada_tab2.ws.close()  # her last tab
    removed = await bob.recv()
    assert removed == {
        "event": "pusher_internal:member_removed",
        "channel": ROOM,
        "data": {"user_id": "ada"},
    }
    assert (await bob_tab2.recv())["event"] == "pusher_internal:member_removed"  # on A too
    await bob.nothing_pending()
    await bob_tab2.nothing_pending()


async def test_health_says_whether_the_process_hears_the_roster(pair, http):
    async with http.get(f"{pair[0].url}/api/health") as response:
        health = await response.json()
    assert health["status"] == "ok"
    assert health["presence"]["kind"] == "redis" and health["presence"]["state"] == "ok"


async def test_the_http_api_answers_for_the_cluster(pair, connect, http):
    a, b = pair
    await join(await connect(a), "ada")
    await join(await connect(b), "bob")
    watcher = await connect(b)
    await watcher.subscribe("metrics")
    response = await http.get(f"{a.url}/api/events?channel=metrics")
    await RawStream(response).next()  # connected: the stream is subscribed
    sdk_a, sdk_b = make_sdk(a), make_sdk(b)

    expected = {"occupied": True, "subscription_count": 2}  # a socket on B, a stream on A
    for sdk in (sdk_a, sdk_b):

        async def counted(sdk=sdk):
            return await call(sdk.channel_info, "metrics", ["subscription_count"]) == expected

        await until_async(counted)
        assert await call(sdk.channels_info) == {"channels": {"metrics": {}, ROOM: {}}}
        assert await call(sdk.channels_info, "presence-", ["user_count"]) == {
            "channels": {ROOM: {"user_count": 2}}
        }
        assert await call(sdk.channel_info, ROOM, ["user_count", "subscription_count"]) == {
            "occupied": True,
            "user_count": 2,
            "subscription_count": 2,
        }
        assert await call(sdk.users_info, ROOM) == {"users": [{"id": "ada"}, {"id": "bob"}]}
    response.close()
    await watcher.ws.close()

    async def emptied():
        return await call(sdk_a.channel_info, "metrics", ["subscription_count"]) == {
            "occupied": False,
            "subscription_count": 0,
        }

    await until_async(emptied)


async def until_async(check, timeout: float = 5.0) -> None:
    """Return once ``await check()`` is true (another process writes what it reads)."""
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


async def test_a_server_on_redis_stops_promptly_with_subscribers_open(http, redis_prefix):
    # Closing the subscribers wakes the occupancy writer as stop() ends it: the stop must not
    # then wait for a heartbeat (a cancel lost in asyncio.wait_for on Python 3.11 did that).
    server = DashboardServer(port=0, redis_url=REDIS_URL, redis_prefix=redis_prefix)
    await server.start()
    response = await http.get(f"{server.url}/api/events?channel=metrics")
    await RawStream(response).next()
    started = time.monotonic()
    await asyncio.wait_for(server.stop(), 5)
    assert time.monotonic() - started < 3
    response.close()


async def test_sockets_on_one_process_hear_every_later_join(pair, connect):
    # The join's answer and the PUB/SUB copy of the change it made race each other; every
    # socket already on the channel must hear each later member once, whichever comes first.
    a, b = pair
    sockets = []
    for n in range(5):
        client = await connect(a if n % 2 == 0 else b)
        roster = await join(client, f"u{n}")
        assert roster["ids"] == [f"u{k}" for k in range(n + 1)]
        sockets.append(client)
    for n, client in enumerate(sockets):
        for later in range(n + 1, 5):
            added = await client.recv()
            assert added["event"] == "pusher_internal:member_added", added
            assert added["data"]["user_id"] == f"u{later}"
        await client.nothing_pending()
