"""What only the Redis backend has to prove: several processes agree, and outages lose nothing
silently. The shared promises run in test_backend_conformance.py on every backend.

Tests that kill, restart or flush Redis do it to a private ``redis-server`` of their own.
"""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest
import redis.asyncio as aioredis

from dashboard.core.cursor import Position
from dashboard.core.errors import BackendUnavailable
from dashboard.core.history import HistoryLimits
from dashboard.hub import Hub
from dashboard.hub.backends.redis import RedisBackend, check_url, redact
from dashboard.hub.subscription import RESYNC
from tests.redis_server import (
    SHARED_REDIS_URL,
    delete_prefix,
    private_redis,
    require_shared_redis,
    unique_prefix,
)
from tests.server.helpers import TOKEN
from tests.waiting import until


@pytest.fixture
async def prefix():
    await require_shared_redis()
    prefix = unique_prefix()
    yield prefix
    await delete_prefix(SHARED_REDIS_URL, prefix)


@pytest.fixture
async def hubs():
    """``hubs(url, prefix, **backend options)``: started hubs, each as if in its own process."""
    made: list[Hub] = []

    async def make(url: str, prefix: str, **options) -> Hub:
        hub = Hub(RedisBackend(url, prefix=prefix, **options))
        await hub.start()
        made.append(hub)
        return hub

    yield make
    for hub in made:
        await hub.stop()


async def drain(subscription, count: int, within: float = 10.0, settle: float = 0.2) -> list:
    """Take ``count`` events (fails after ``within`` seconds), and whatever else arrives in
    the next ``settle`` seconds (the caller checks that nothing did)."""
    events: list = []
    deadline = time.monotonic() + within
    while len(events) < count:
        left = deadline - time.monotonic()
        assert left > 0, f"got {len(events)} of {count} events"
        try:
            events += await asyncio.wait_for(subscription.next_batch(), left)
        except TimeoutError:
            continue
    await asyncio.sleep(settle)
    events += subscription.next_nowait()
    return events


async def test_two_processes_publishing_at_once_get_distinct_consecutive_offsets(prefix, hubs):
    # Small pools on purpose: 150 concurrent publishes per process wait for a connection
    # (BlockingConnectionPool) instead of failing.
    a = await hubs(SHARED_REDIS_URL, prefix, max_connections=4)
    b = await hubs(SHARED_REDIS_URL, prefix, max_connections=4)
    reader = await hubs(SHARED_REDIS_URL, prefix)
    live = await reader.subscribe(["orders"])
    sent = await asyncio.gather(
        *(hub.publish("orders", "order", {"by": name, "n": n})
          for n in range(150) for hub, name in ((a, "a"), (b, "b")))
    )  # fmt: skip
    assert sorted(event.offset for event in sent) == list(range(1, 301))
    assert len({event.epoch for event in sent}) == 1
    received = await drain(live, 300)
    assert [event.offset for event in received] == list(range(1, 301))  # in order, once each
    by_offset = {event.offset: event.data for event in sent}
    assert all(event.data == by_offset[event.offset] for event in received)
    # Each publisher's own events are in the order it published them.
    for name in "ab":
        mine = [event.data["n"] for event in received if event.data["by"] == name]
        assert sorted(mine) == list(range(150))


async def test_any_process_resumes_a_cursor_from_another(prefix, hubs):
    a = await hubs(SHARED_REDIS_URL, prefix)
    b = await hubs(SHARED_REDIS_URL, prefix)
    reader = await a.subscribe(["orders", "alerts"])
    for n in range(3):
        await a.publish("orders", "order", n)
    await drain(reader, 3)
    kept = reader.cursor_id()
    reader.close()
    for n in range(3, 6):
        await a.publish("orders", "order", n)
    await a.publish("alerts", "alert", "x")
    resumed = await b.subscribe(["orders", "alerts"], last_event_id=kept)
    assert resumed.resets == ()
    assert [event.data for event in resumed.next_nowait()] == [3, 4, 5, "x"]


async def test_a_process_subscribes_only_to_channels_it_has_subscribers_for(prefix, hubs):
    hub = await hubs(SHARED_REDIS_URL, prefix)
    client = aioredis.Redis.from_url(SHARED_REDIS_URL)
    topic = f"{prefix}{{orders}}"

    async def subscribers() -> int:
        return dict(await client.pubsub_numsub(topic))[topic.encode()]

    try:
        await hub.publish("orders", "order", 1)
        assert await subscribers() == 0
        first = await hub.subscribe(["orders"])
        second = await hub.subscribe(["orders"])
        assert await subscribers() == 1  # one per process, however many local subscribers
        first.close()
        await asyncio.sleep(0.1)
        assert await subscribers() == 1
        second.close()
        for _ in range(50):
            if await subscribers() == 0:
                break
            await asyncio.sleep(0.05)
        assert await subscribers() == 0
    finally:
        await client.aclose()


async def test_losing_a_channels_keys_starts_a_new_epoch(prefix, hubs):
    hub = await hubs(SHARED_REDIS_URL, prefix)
    client = aioredis.Redis.from_url(SHARED_REDIS_URL)
    meta, stream = f"{prefix}{{orders}}:meta", f"{prefix}{{orders}}:stream"
    try:
        first = await hub.publish("orders", "order", 1)
        await client.delete(stream)  # evicted alone: the meta knows events were published
        second = await hub.publish("orders", "order", 2)
        assert second.offset == 1 and second.epoch == f"{first.epoch}_1"
        await client.delete(meta, stream)  # everything forgotten
        third = await hub.publish("orders", "order", 3)
        assert third.offset == 1 and third.epoch not in (first.epoch, second.epoch)
        assert await hub.backend.after("orders", Position(first.epoch, 1)) is None
        assert await hub.backend.after("orders", Position(second.epoch, 0)) is None
        assert [e.data for e in await hub.backend.after("orders", Position(third.epoch, 0))] == [3]
        await client.delete(meta, stream)
        fourth = await hub.publish("orders", "order", 4)  # and again: never an old epoch
        assert fourth.epoch not in (first.epoch, second.epoch, third.epoch)
        assert len(fourth.epoch) <= 24
    finally:
        await client.aclose()


async def test_flushdb_resets_a_resume_and_live_subscribers_carry_on(hubs):
    async with private_redis() as server:
        hub = await hubs(server.url, "p:")
        live = await hub.subscribe(["orders"])
        await hub.publish("orders", "order", 1)
        kept = (await drain(live, 1)) and live.cursor_id()
        client = aioredis.Redis.from_url(server.url)
        await client.flushdb()
        await client.aclose()
        await hub.publish("orders", "order", 2)
        assert [event.data for event in await drain(live, 1)] == [2]
        resumed = await hub.subscribe(["orders"], last_event_id=kept)
        assert [(r.reason, r.offset) for r in resumed.resets] == [("epoch", 0)]
        assert [event.data for event in resumed.next_nowait()] == [2]


async def test_a_gap_while_the_listener_reconnects_is_filled_from_the_stream(hubs):
    async with private_redis() as server:
        reader = await hubs(server.url, "p:")
        writer = await hubs(server.url, "p:")
        live = await reader.subscribe(["orders"])
        await writer.publish("orders", "order", 0)
        assert [event.data for event in await drain(live, 1)] == [0]
        admin = aioredis.Redis.from_url(server.url)
        # New connections are refused for a while (connected clients stay authenticated),
        # and every subscriber connection drops: the reader cannot be back before we publish.
        await admin.config_set("requirepass", "not-yet")
        await admin.client_kill_filter(_type="pubsub")
        await until(lambda: reader.backend.health()["state"] == "down")
        for n in range(1, 21):
            await writer.publish("orders", "order", n)  # missed by the broken connection
        await admin.config_set("requirepass", "")
        await admin.aclose()
        received = await drain(live, 20)
        assert [event.data for event in received] == list(range(1, 21))  # once each, in order
        assert live.closed_reason is None


async def test_redis_restarted_empty_resets_subscribers_and_publishes_answer_503(hubs, tmp_path):
    from dashboard.server import DashboardServer

    async with private_redis() as server:
        hub = await hubs(server.url, "p:")
        web = DashboardServer(hub, port=0, token=TOKEN, redis_url=server.url)
        await web.start()
        try:
            live = await hub.subscribe(["orders"])
            await hub.publish("orders", "order", 1)
            await drain(live, 1)
            kept = live.cursor_id()
            await server.kill()
            async with aiohttp.ClientSession() as http:
                await until(lambda: hub.backend.health()["state"] == "down", timeout=5)
                async with http.post(
                    f"{web.url}/api/publish",
                    json={"channel": "orders", "event": "order", "data": 2},
                    headers={"Authorization": f"Bearer {TOKEN}"},
                ) as response:
                    assert response.status == 503
                    assert response.headers["Retry-After"] == "1"
                    assert (await response.json())["error"] == "backend_unavailable"
                async with http.get(f"{web.url}/api/health") as response:
                    health = await response.json()
                assert health["status"] == "degraded"
                assert health["backend"]["kind"] == "redis"
                assert health["backend"]["state"] == "down"
                with pytest.raises(BackendUnavailable):
                    await hub.subscribe(["alerts"])
                assert live.closed_reason is None  # connected subscribers are kept
                await server.start()  # back, empty: orders' history is gone
                await until(lambda: live.closed_reason is not None, timeout=10)
                assert live.closed_reason == RESYNC
                async with http.get(f"{web.url}/api/health") as response:
                    assert (await response.json())["status"] == "ok"
            await hub.publish("orders", "order", 3)
            resumed = await hub.subscribe(["orders"], last_event_id=kept)
            assert [(r.reason, r.offset) for r in resumed.resets] == [("epoch", 0)]
            assert [event.data for event in resumed.next_nowait()] == [3]
        finally:
            await web.stop()


async def test_redis_down_at_start_is_one_clear_error():
    async with private_redis() as server:
        url = server.url
        await server.kill()
        backend = RedisBackend(url, prefix="p:")
        with pytest.raises(BackendUnavailable, match="127.0.0.1"):
            await Hub(backend).start()
        await backend.stop()


async def test_age_is_checked_when_reading(prefix, hubs):
    now = [time.time()]
    hub = await hubs(
        SHARED_REDIS_URL, prefix, limits=HistoryLimits(max_age=60), clock=lambda: now[0]
    )
    first = await hub.publish("orders", "order", 1)
    now[0] += 120
    assert await hub.backend.after("orders", Position(first.epoch, 0)) is None
    assert await hub.backend.after("orders", Position(first.epoch, 1)) == []


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:6379", "redis://", "redis://host:notaport/0", "redis://host:6379/zero"],
)
def test_bad_urls_are_refused(url):
    with pytest.raises(ValueError):
        check_url(url)


def test_passwords_stay_out_of_logs():
    assert redact("redis://:s3cret@host:6379/0") == "redis://:***@host:6379/0"
    assert redact("redis://ada:s3cret@host/1") == "redis://ada:***@host/1"
    assert redact("redis://host:6379/0") == "redis://host:6379/0"


async def test_channels_lists_this_prefix_only(hubs):
    await require_shared_redis()
    prefix = f"test-[{unique_prefix()}]*:"  # glob characters are literal
    other = unique_prefix()
    try:
        hub = await hubs(SHARED_REDIS_URL, prefix)
        neighbour = await hubs(SHARED_REDIS_URL, other)
        await hub.publish("orders", "order", 1)
        await hub.publish("alerts", "alert", 1)
        await neighbour.publish("elsewhere", "x", 1)
        assert sorted(await hub.backend.channels()) == ["alerts", "orders"]
    finally:
        await delete_prefix(
            SHARED_REDIS_URL, prefix.replace("[", "\\[").replace("]", "\\]").replace("*", "\\*")
        )
        await delete_prefix(SHARED_REDIS_URL, other)


async def test_quick_watch_and_unwatch_cycles_never_leave_a_subscriber_deaf(prefix, hubs):
    hub = await hubs(SHARED_REDIS_URL, prefix)
    writer = await hubs(SHARED_REDIS_URL, prefix)
    for n in range(30):  # bounded
        brief = await hub.subscribe(["orders"])
        brief.close()  # unwatch, then at once watch again below
        kept = await hub.subscribe(["orders"])
        await writer.publish("orders", "order", n)  # from another process: via pub/sub only
        assert [event.data for event in await drain(kept, 1, within=5, settle=0.02)] == [n]
        kept.close()


async def test_the_longest_epochs_stay_within_the_cursor_format(prefix, hubs):
    from dashboard.core.cursor import MAX_EPOCH_LENGTH, decode_cursor, encode_cursor
    from dashboard.hub.backends.redis_scripts import MAX_BUMPS

    hub = await hubs(SHARED_REDIS_URL, prefix)
    backend = hub.backend
    generations = backend._generations
    generations._round = 36**6 - 2  # the longest round number
    generations._new_round()
    generations._floor["orders"] = 36**2 - 1  # the longest variant
    client = aioredis.Redis.from_url(SHARED_REDIS_URL)
    meta, stream = f"{prefix}{{orders}}:meta", f"{prefix}{{orders}}:stream"
    try:
        first = await hub.publish("orders", "order", 1)
        await client.hset(meta, "n", MAX_BUMPS - 1)
        await client.delete(stream)
        longest = await hub.publish("orders", "order", 2)  # the longest loss counter
        assert longest.epoch.startswith(first.epoch + "_")
        assert len(longest.epoch) <= MAX_EPOCH_LENGTH
        cursor = encode_cursor(["orders", "x"], {"orders": Position(longest.epoch, 1),
                                                 "x": Position(first.epoch, 0)})  # fmt: skip
        assert decode_cursor(cursor, ["orders", "x"]).positions["orders"].epoch == longest.epoch
        await client.delete(stream)
        after = await hub.publish("orders", "order", 3)  # counter exhausted: a new generation
        assert after.offset == 1 and "_" not in after.epoch[8:]
        assert after.epoch not in (first.epoch, longest.epoch)
    finally:
        await client.aclose()


async def test_a_hub_stream_waits_out_a_restart_and_reports_the_reset(hubs):
    from dashboard.hub import HubStream

    async with private_redis() as server:
        hub = await hubs(server.url, "p:")
        stream = HubStream(hub, ["orders"])
        resets, received = [], []
        stream.watch_resets(resets.append)

        async def consume():
            async for event in stream:
                received.append(event.data)

        consumer = asyncio.create_task(consume())
        try:
            await until(lambda: stream.status.state.value == "open")
            await hub.publish("orders", "order", 1)
            await until(lambda: received == [1])
            await server.kill()
            await until(lambda: hub.backend.health()["state"] == "down")
            await server.start()  # empty
            await until(lambda: resets, timeout=15)
            assert resets[0].channel == "orders" and resets[0].reason == "epoch"
            await until(lambda: stream.status.state.value == "open")
            await hub.publish("orders", "order", 2)
            await until(lambda: received == [1, 2])
        finally:
            await stream.aclose()
            consumer.cancel()


async def test_a_malformed_message_is_dropped_and_the_listener_stays_up(prefix, hubs):
    hub = await hubs(SHARED_REDIS_URL, prefix)
    live = await hub.subscribe(["orders"])
    client = aioredis.Redis.from_url(SHARED_REDIS_URL)
    try:
        await client.publish(f"{prefix}{{orders}}", "not an event")  # anyone may PUBLISH
        await hub.publish("orders", "order", 1)
        writer = await hubs(SHARED_REDIS_URL, prefix)
        await writer.publish("orders", "order", 2)  # arrives through the same listener
        assert [event.data for event in await drain(live, 2)] == [1, 2]
        assert hub.backend.health()["state"] == "ok" and hub.backend.health()["reconnects"] == 0
    finally:
        await client.aclose()


def test_a_generation_is_never_offered_twice_to_one_channel_that_may_have_started_in_it():
    from dashboard.hub.backends.redis_client import Generations

    generations = Generations()
    first = generations.offer("a")
    assert first.generation == generations.first
    concurrent = generations.offer("a")  # in flight together: either may start it
    assert concurrent.generation != first.generation
    other = generations.offer("b")  # another channel shares the round's generation
    assert other.generation == first.generation
    generations.done("a", first, started=True)
    generations.done("a", concurrent, started=False)
    generations.done("b", other, started=False)
    assert generations.offer("b").generation == first.generation  # b never started in it
    taken = {first.generation}
    for _ in range(50):  # bounded; every later offer for a avoids what may have started it
        offer = generations.offer("a")
        assert offer.generation not in taken
        generations.done("a", offer, started=True)
        taken.add(offer.generation)
    assert all(len(generation) <= 17 for generation in taken)


async def test_a_channel_only_read_keeps_its_key_while_watched_and_not_long_after(prefix, hubs):
    # An anonymous reader of random channel names used to leave a meta hash per name for an
    # hour (100,000 keys in 32 s from one client); a channel read but never published to
    # now lives while some process watches it, and read_ttl after.
    hub = await hubs(SHARED_REDIS_URL, prefix, read_ttl=0.6)
    client = aioredis.Redis.from_url(SHARED_REDIS_URL)
    quiet, busy = f"{prefix}{{quiet}}:meta", f"{prefix}{{busy}}:meta"
    try:
        subscription = await hub.subscribe(["quiet"])
        assert 0 < await client.pttl(quiet) <= 600
        await asyncio.sleep(1.5)  # past read_ttl, still watched: kept
        assert await client.exists(quiet)
        # A quiet channel keeps its epoch while watched: a late event is no reset.
        event = await hub.publish("quiet", "tick", 1)
        assert [e.data for e in await drain(subscription, 1)] == [1]
        assert subscription.resets == () and event.offset == 1
        assert await client.pttl(quiet) > 600  # published: max_age now
        subscription.close()

        reader = await hub.subscribe(["busy"])
        reader.close()  # read once, never published to, nobody watching
        await asyncio.sleep(1.0)
        assert not await client.exists(busy)
    finally:
        await client.aclose()
