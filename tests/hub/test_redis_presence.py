"""What only a presence shared by processes has to survive: a crashed process, a lost key."""

from __future__ import annotations

import asyncio
import time

import pytest

from dashboard.hub.redis_presence import RedisPresence
from tests.redis_server import private_redis
from tests.waiting import until

CH = "presence-room"


async def until_async(read, expected, timeout: float = 2.0) -> None:
    deadline = time.monotonic() + timeout
    while await read() != expected:
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


async def test_a_crashed_processs_members_are_removed_within_the_timeout(
    redis_client, redis_prefix
):
    timeout = 1.5
    crashed = RedisPresence(redis_client, prefix=redis_prefix, timeout=timeout)
    alive = RedisPresence(redis_client, prefix=redis_prefix, timeout=timeout)
    told: list[tuple[str, bool]] = []
    await crashed.start(lambda change: None)
    await alive.start(lambda change: told.append((change.user_id, change.added)))
    try:
        await crashed.join(CH, "1.1", "ada")
        await alive.join(CH, "2.1", "bob")
        await alive.join(CH, "2.2", "ada")  # ada has a tab on the live process too
        await crashed.join(CH, "1.2", "cy")
        await crashed.stop()  # no leave: its entries stay in Redis, as after kill -9
        stopped = time.monotonic()
        await until(lambda: ("cy", False) in told, timeout=timeout + 2)
        assert time.monotonic() - stopped <= timeout + 0.3  # the sweep runs at a heartbeat
        assert list(await alive.members(CH)) == ["ada", "bob"]  # ada still has her tab
        assert ("ada", False) not in told
    finally:
        await alive.stop()


async def test_a_heartbeat_puts_back_what_redis_lost(redis_client, redis_prefix):
    presence = RedisPresence(redis_client, prefix=redis_prefix, timeout=0.6)
    told: list[tuple[str, bool]] = []
    await presence.start(lambda change: told.append((change.user_id, change.added)))
    try:
        await presence.join(CH, "1.1", "ada")
        await redis_client.delete(f"{redis_prefix}presence:{CH}")  # a restart with no data
        assert await presence.members(CH) == {}
        await until_async(lambda: presence.members(CH), {"ada": None})
        assert told == [("ada", True)]  # put back, not news: nobody is told she came back
    finally:
        await presence.stop()


async def test_without_redis_joins_and_reads_are_503s_not_crashes():
    from dashboard.core.errors import BackendUnavailable
    from dashboard.hub import Hub
    from dashboard.hub.backends.redis import connect
    from dashboard.hub.occupancy import RedisOccupancy

    gone = connect("redis://127.0.0.1:1/0", socket_timeout=0.5)
    presence = RedisPresence(gone, prefix="gone:", timeout=3)
    occupancy = RedisOccupancy(Hub(), gone, prefix="gone:", timeout=3)
    await presence.start(lambda change: None)
    await occupancy.start()
    try:
        with pytest.raises(BackendUnavailable, match="presence: Redis is unreachable"):
            await presence.join(CH, "1.1", "ada")
        assert presence.user_id(CH, "1.1") is None  # not half-joined
        with pytest.raises(BackendUnavailable):
            await presence.members(CH)
        with pytest.raises(BackendUnavailable, match="occupancy"):
            await occupancy.count("metrics")
        presence.leave(CH, "1.1")  # a no-op: never joined
    finally:
        await occupancy.stop()
        await presence.stop()
        await gone.aclose()


async def test_after_redis_restarts_empty_rosters_recover_without_flicker():
    # Redis dies and comes back empty; meanwhile one process died too. The others put their
    # members back (heartbeat) without telling anyone they left and came back, and each tells
    # its sockets, once, that the dead process's member is gone (the messages it missed).
    from dashboard.hub.backends.redis import connect

    async with private_redis() as server:
        client = connect(server.url, socket_timeout=0.5)
        timeout = 0.9
        a, b, c = (RedisPresence(client, prefix="p:", timeout=timeout) for _ in range(3))
        told: dict[str, list[tuple[str, bool]]] = {"a": [], "b": []}
        await a.start(lambda change: told["a"].append((change.user_id, change.added)))
        await b.start(lambda change: told["b"].append((change.user_id, change.added)))
        await c.start(lambda change: None)
        try:
            await a.join(CH, "1.1", "ada")
            await b.join(CH, "2.1", "bob")
            await c.join(CH, "3.1", "cy")
            everyone = [("ada", True), ("bob", True), ("cy", True)]
            await until(lambda: told["a"] == everyone and told["b"] == everyone)
            await server.kill()
            await c.stop()  # gone while Redis was down: nothing of it is left anywhere
            await server.start()  # empty
            for name in ("a", "b"):
                await until(lambda name=name: ("cy", False) in told[name], timeout=10)
            await asyncio.sleep(2 * timeout)  # heartbeats have put ada and bob back by now
            assert told["a"] == told["b"] == [*everyone, ("cy", False)]
            assert sorted(await a.members(CH)) == ["ada", "bob"]  # join order went with Redis
        finally:
            for presence in (a, b, c):
                await presence.stop()
            await client.aclose()
