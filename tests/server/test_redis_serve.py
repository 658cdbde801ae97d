"""Two real ``dashboard serve --redis`` processes behave as one hub.

Both share the machine's Redis under a key prefix of this module's own (deleted afterwards);
they skip without Redis, except under CI=true.
"""

from __future__ import annotations

import asyncio
import contextlib
import json

import aiohttp
import pytest
import pytest_asyncio

from dashboard.client.pusher import PusherClient
from tests.cursors import offsets_of
from tests.processes import dashboard_process
from tests.redis_server import SHARED_REDIS_URL, delete_prefix, require_shared_redis, unique_prefix
from tests.server.helpers import TOKEN, RawStream, publish

pytestmark = pytest.mark.asyncio(loop_scope="module")

SECRET = "redis-serve-app-secret-0123"
KEY = "dashboard-key"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def pair(tmp_path_factory):
    """Processes A and B on one Redis prefix, with the same token and app secret."""
    await require_shared_redis()
    prefix = unique_prefix()
    env = {"DASHBOARD_TOKEN": TOKEN, "DASHBOARD_APP_SECRET": SECRET}
    directory = tmp_path_factory.mktemp("redis-serve")
    args = ("--no-demo", "--redis", SHARED_REDIS_URL, "--redis-prefix", prefix)
    try:
        async with (
            dashboard_process(*args, "--db", str(directory / "a.sqlite3"), env=env) as a,
            dashboard_process(*args, "--db", str(directory / "b.sqlite3"), env=env) as b,
        ):
            assert any("Hub:        shared through Redis" in line for line in a.startup)
            yield a, b
    finally:
        await delete_prefix(SHARED_REDIS_URL, prefix)


@pytest_asyncio.fixture(loop_scope="module")
async def http():
    async with aiohttp.ClientSession() as session:
        yield session


@contextlib.asynccontextmanager
async def sse(http, base: str, channels: list[str], last_event_id: str | None = None):
    query = "&".join(f"channel={name}" for name in channels)
    headers = {"Last-Event-ID": last_event_id} if last_event_id else {}
    async with http.get(f"{base}/api/events?{query}", headers=headers) as response:
        assert response.status == 200
        stream = RawStream(response)
        connected = await stream.next(10)
        assert connected.event == "connected"
        yield stream


async def test_an_event_published_on_a_reaches_subscribers_on_both_with_one_id(pair, http):
    a, b = pair
    async with sse(http, b.url, ["orders"]) as on_b, sse(http, a.url, ["orders"]) as on_a:
        status, answer = await publish(http, a, "orders", "order", {"n": 1})
        assert status == 200
        got_b, got_a = await on_b.next(10), await on_a.next(10)
        assert got_b.id == got_a.id == answer["id"]
        assert json.loads(got_b.data)["data"] == {"n": 1}
        status, answer = await publish(http, b, "orders", "order", {"n": 2})
        assert (await on_a.next(10)).id == (await on_b.next(10)).id == answer["id"]


async def test_a_stream_read_in_part_on_a_resumes_on_b_with_exactly_the_rest(pair, http):
    a, b = pair
    channels = ["deploys", "alerts"]
    async with sse(http, a.url, channels) as on_a:
        for n in range(6):
            await publish(http, a, channels[n % 2], "e", n)
        seen = [await on_a.next(10) for _ in range(3)]
    kept = seen[-1].id
    assert [json.loads(event.data)["data"] for event in seen] == [0, 1, 2]
    for n in range(6, 8):
        await publish(http, b, channels[n % 2], "e", n)
    async with sse(http, b.url, channels, last_event_id=kept) as on_b:
        rest = [await on_b.next(10) for _ in range(5)]
        assert [event.event for event in rest] == ["e"] * 5  # no reset
        assert [json.loads(event.data)["data"] for event in rest] == [3, 4, 5, 6, 7]
        assert offsets_of(rest[-1].id, channels) == {"deploys": 4, "alerts": 4}
        with pytest.raises(TimeoutError):  # and nothing more
            await on_b.next(0.5)


async def test_a_pusher_client_on_b_receives_what_is_published_on_a(pair, http):
    a, b = pair
    client = PusherClient(f"127.0.0.1:{b.port}", KEY)
    try:
        channel = await asyncio.wait_for(client.subscribe("prices"), 10)
        for n in range(3):
            await publish(http, a, "prices", "tick", {"n": n})
        received = [await asyncio.wait_for(anext(aiter(channel)), 10) for _ in range(3)]
        assert [event.data for event in received] == [{"n": 0}, {"n": 1}, {"n": 2}]
    finally:
        await client.aclose()


async def test_health_names_the_shared_backend(pair, http):
    a, _ = pair
    async with http.get(f"{a.url}/api/health") as response:
        health = await response.json()
    assert health["status"] == "ok"
    assert health["backend"]["kind"] == "redis" and health["backend"]["state"] == "ok"
