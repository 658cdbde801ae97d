"""SSE streams over a Redis hub wait out an outage: nothing duplicated, nothing silently missed;
writes made during it are refused with nothing stored.

Each test runs a private ``redis-server`` that it kills and starts again.
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import time

import aiohttp
import pytest

from dashboard.core.user_tokens import issue_user_token
from dashboard.hub import Hub
from dashboard.hub.backends.redis import RedisBackend
from dashboard.server import DashboardServer
from dashboard.store import SQLiteStore
from tests.redis_server import private_redis
from tests.server.helpers import TOKEN, RawStream, publish
from tests.waiting import until


@pytest.fixture
async def redis_server():
    async with private_redis() as server:
        yield server


@pytest.fixture
async def web(redis_server, tmp_path):
    server = DashboardServer(
        Hub(RedisBackend(redis_server.url, prefix="p:")),
        port=0,
        token=TOKEN,
        heartbeat=0.3,
        redis_url=redis_server.url,
        store=SQLiteStore(tmp_path / "dashboard.sqlite3"),
    )
    await server.start()
    yield server
    await server.stop()


async def test_a_stream_whose_history_was_lost_ends_and_resumes_with_a_reset(redis_server, web):
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{web.url}/api/events?channel=orders") as response:
            stream = RawStream(response)
            assert (await stream.next(5)).event == "connected"
            await publish(http, web, "orders", "order", 1)
            kept = (await stream.next(5)).id
            await redis_server.kill()
            await until(lambda: web.hub.backend.health()["state"] == "down")
            await asyncio.sleep(1)  # heartbeats keep the stream open meanwhile
            assert not response.content.at_eof()
            await redis_server.start()  # empty: orders' history is gone
            with pytest.raises(EOFError):  # the server ends the stream: resume to learn more
                await stream.next(15)
        await publish(http, web, "orders", "order", 2)
        headers = {"Last-Event-ID": kept}
        async with http.get(f"{web.url}/api/events?channel=orders", headers=headers) as response:
            stream = RawStream(response)
            assert (await stream.next(5)).event == "connected"
            reset = await stream.next(5)
            assert reset.event == "reset" and json.loads(reset.data)["reason"] == "epoch"
            assert json.loads((await stream.next(5)).data)["data"] == 2  # the new history


async def test_a_stream_opened_during_an_outage_waits_for_redis(redis_server, web):
    await redis_server.kill()
    await until(lambda: web.hub.backend.health()["state"] == "down")
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{web.url}/api/events?channel=orders") as response,
    ):
        assert response.status == 200  # not a 503: an EventSource would give up for good
        first = await asyncio.wait_for(response.content.readany(), 5)
        assert first.startswith(b": waiting for the hub's backend")
        await redis_server.start()
        stream = RawStream(response)
        assert (await stream.next(15)).event == "connected"
        status, answer = await publish(http, web, "orders", "order", 1)
        assert status == 200
        assert (await stream.next(5)).id == answer["id"]


async def test_a_pusher_client_comes_back_after_redis_restarts_empty(redis_server, web):
    from dashboard.client.pusher import PusherClient

    client = PusherClient(f"127.0.0.1:{web.port}", web.ctx.app.key)
    try:
        channel = await asyncio.wait_for(client.subscribe("prices"), 10)
        await web.hub.publish("prices", "tick", 1)
        assert (await asyncio.wait_for(anext(aiter(channel)), 5)).data == 1
        first_socket = client.socket_id
        await redis_server.kill()
        await until(lambda: web.hub.backend.health()["state"] == "down")
        await redis_server.start()  # empty: the server closes the socket (4200), it reconnects
        await until(lambda: client.socket_id != first_socket and channel.subscribed, timeout=15)
        async with aiohttp.ClientSession() as http:
            status, _ = await publish(http, web, "prices", "tick", 2)
        assert status == 200
        assert (await asyncio.wait_for(anext(aiter(channel)), 5)).data == 2
    finally:
        await client.aclose()


# Writes during an outage: a stored write whose live event could not be published would reach
# no open page, so each is refused before anything is written. (who, method, path, body)
WRITES = [
    ("user", "/api/rooms/lobby/messages", {"text": "during the outage"}),
    ("user", "/api/notifications/read-all", {}),
    ("publisher", "/api/notifications", {"title": "during the outage", "user": "ada"}),
    ("publisher", "/api/publish", {"channel": "alerts", "event": "alert", "data": 1}),
]


async def test_writes_during_an_outage_are_503s_with_nothing_stored(redis_server, web):
    token = issue_user_token(web.ctx.app.secret, "ada", "Ada")
    headers = {
        "user": {"Authorization": f"Bearer {token}"},
        "publisher": {"Authorization": f"Bearer {TOKEN}"},
    }
    async with aiohttp.ClientSession() as http:
        await redis_server.kill()
        await until(lambda: web.hub.backend.health()["state"] == "down")
        for who, path, body in WRITES:
            async with http.post(web.url + path, json=body, headers=headers[who]) as response:
                assert response.status == 503, (path, await response.text())
                assert response.headers["Retry-After"] == "1"
                assert (await response.json())["error"] == "backend_unavailable"
        await redis_server.start()
        await until(lambda: web.hub.backend.health()["state"] == "ok", timeout=15)
        async with http.get(f"{web.url}/api/rooms/lobby/messages") as response:
            assert (await response.json())["messages"] == []
        async with http.get(f"{web.url}/api/notifications", headers=headers["user"]) as response:
            assert (await response.json())["notifications"] == []
        path, body = WRITES[0][1:]
        async with http.post(web.url + path, json=body, headers=headers["user"]) as response:
            assert response.status == 201  # and service resumes


async def test_an_outage_is_logged_once_not_once_a_retry(redis_server, web, caplog):
    # Presence's listener retries every 0.1-2 s and occupancy every heartbeat: a line each
    # time would bury the one that matters ("docs/redis.md: retries are quiet").
    caplog.set_level(logging.DEBUG, logger="dashboard")
    await redis_server.kill()
    await until(lambda: web.hub.backend.health()["state"] == "down")
    await asyncio.sleep(4)  # several retries of each
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    retries = [r for r in caplog.records if "presence listener lost Redis" in r.getMessage()]
    assert len(retries) >= 2, "the listener did not retry: the test shows nothing"
    assert sum("presence listener lost Redis" in w for w in warnings) <= 1, warnings
    assert sum("occupancy update failed" in w for w in warnings) <= 1, warnings
    await redis_server.start()
    await until(lambda: web.hub.backend.health()["state"] == "ok", timeout=15)


async def test_a_publish_to_a_hung_redis_known_down_is_refused_at_once(redis_server, web):
    # SIGSTOP: no RST, the connection just goes silent. Once the listener's check has found
    # Redis gone, a publish must not wait out a command timeout before its 503.
    assert redis_server.process is not None
    redis_server.process.send_signal(signal.SIGSTOP)
    try:
        await until(lambda: web.hub.backend.health()["state"] == "down", timeout=20)
        async with aiohttp.ClientSession() as http:
            started = time.monotonic()
            status, _ = await publish(http, web, "orders", "order", 1)
            assert status == 503 and time.monotonic() - started < 1.0
    finally:
        redis_server.process.send_signal(signal.SIGCONT)
    await until(lambda: web.hub.backend.health()["state"] == "ok", timeout=20)
