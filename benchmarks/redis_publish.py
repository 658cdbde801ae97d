"""Publishes per second into a hub on the memory backend and on the Redis backend.

    python benchmarks/redis_publish.py [--redis redis://127.0.0.1:6379/0] [--events 5000]

For each backend: one process, one local subscriber on the channel; ``--events`` publishes
one after another (each waits for its offset), then the same number 64 at a time; the clock
stops when the subscriber has received every event. Then, for Redis, two hubs as two
processes would have them (in one process here, so that both read one clock): one publishes
at 500 events/s, the other's subscriber receives through pub/sub; publish-to-receive p50/p99.
Redis keys go under a fresh prefix that is deleted afterwards. The multi-process figure (1,000 subscribers over 2 processes) belongs
to benchmarks/cluster_fanout.py.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import statistics
import time

from dashboard.hub import Hub
from dashboard.hub.backends.redis import RedisBackend

CONCURRENCY = 64


async def run(hub: Hub, events: int) -> dict[str, float]:
    subscription = await hub.subscribe(["bench"], queue_size=events * 2 + 10)
    latencies: list[float] = []
    started = time.perf_counter()
    for n in range(events):
        sent = time.perf_counter()
        await hub.publish("bench", "tick", n)
        latencies.append(time.perf_counter() - sent)
    received = 0
    while received < events:
        received += len(await asyncio.wait_for(subscription.next_batch(), 30))
    sequential = events / (time.perf_counter() - started)

    started = time.perf_counter()
    for first in range(0, events, CONCURRENCY):
        batch = range(first, min(first + CONCURRENCY, events))
        await asyncio.gather(*(hub.publish("bench", "tick", n) for n in batch))
    received = 0
    while received < events:
        received += len(await asyncio.wait_for(subscription.next_batch(), 30))
    concurrent = events / (time.perf_counter() - started)
    subscription.close()
    latencies.sort()
    return {
        "sequential/s": sequential,
        f"{CONCURRENCY} at a time/s": concurrent,
        "publish p50 ms": statistics.median(latencies) * 1000,
        "publish p99 ms": latencies[int(len(latencies) * 0.99)] * 1000,
    }


async def across(url: str, prefix: str, events: int) -> tuple[float, float]:
    """p50 and p99 in ms from publish on one hub to receipt on another, at 500 events/s."""
    async with (
        Hub(RedisBackend(url, prefix=prefix)) as publisher,
        Hub(RedisBackend(url, prefix=prefix)) as receiver,
    ):
        subscription = await receiver.subscribe(["across"], queue_size=events + 10)
        delays: list[float] = []

        async def receive() -> None:
            while len(delays) < events:
                for event in await subscription.next_batch():
                    delays.append(time.time() - event.published_at)

        receiving = asyncio.ensure_future(receive())
        for n in range(events):
            await publisher.publish("across", "tick", n)
            await asyncio.sleep(0.002)
        await asyncio.wait_for(receiving, 30)
        delays.sort()
        return delays[len(delays) // 2] * 1000, delays[int(len(delays) * 0.99)] * 1000


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--events", type=int, default=5000)
    args = parser.parse_args()
    events = max(1, min(args.events, 100_000))  # bounded
    prefix = f"bench-{secrets.token_hex(4)}:"
    results = {}
    async with Hub() as hub:
        results["memory"] = await run(hub, events)
    backend = RedisBackend(args.redis, prefix=prefix)
    try:
        async with Hub(backend) as hub:
            results["redis"] = await run(hub, events)
            p50, p99 = await across(args.redis, prefix, min(events, 2000))
            keys = [key async for key in backend._redis.scan_iter(match=f"{prefix}*")]
            if keys:
                await backend._redis.delete(*keys)
    finally:
        await backend.stop()
    names = list(results["memory"])
    print(f"{events} events, one local subscriber")
    print(f"{'':>10}" + "".join(f"{name:>20}" for name in names))
    for kind, figures in results.items():
        print(f"{kind:>10}" + "".join(f"{figures[name]:>20.2f}" for name in names))
    print(f"Redis, publish on one hub -> receive on another: p50 {p50:.2f} ms, p99 {p99:.2f} ms")


if __name__ == "__main__":
    asyncio.run(main())
