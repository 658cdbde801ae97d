"""Cluster fan-out: 1,000 SSE subscribers over 2 processes through Redis, against 1 in memory.

Run ``python benchmarks/cluster_fanout.py --redis redis://127.0.0.1:6379/14``. Its last line::

    cluster_fanout: memory=<deliveries/s> redis2=<deliveries/s> per_core_ratio=<r> \
        p99_ms_memory=<ms> p99_ms_redis2=<ms> redis_cpu_pct=<%>

Two variants, in the same run, their phases alternating:

* memory: one real :class:`~dashboard.server.serve.DashboardServer` on the in-process hub,
  with all ``--subscribers`` streams (``GET /api/events``) on it;
* redis2: two such servers on one Redis (``--redis``, a fresh key prefix), half the streams on
  each; the publisher runs in the first, so every event goes through Redis (one Lua script per
  publish, PUB/SUB to both processes) before each process fans it out to its own streams.

The publisher runs inside the (first) server process (``hub.publish``, as in fanout.py, whose
children, client and phases this reuses). Each server has its own load client process. Phases:

* max: at most ``--window`` events ahead of the slowest stream of *both* clients; deliveries/s
  is capacity. ``per_core`` is deliveries per server CPU-second (both servers' CPU summed for
  redis2; Redis' own CPU is shown apart, from ``INFO cpu``), and ``per_core_ratio`` is redis2's
  over memory's: the issue's aim is at least 0.7.
* rate: open loop at ``--load`` (50 % by default) of the memory variant's median capacity of
  the max phases so far; latency is receipt minus the send time taken before ``publish``,
  sampled on every 4th stream. With two clients, p50 is their mean and p99 the larger.

Every wait is bounded (``--seconds`` at most 60, child answers within fixed timeouts) and the
children are killed on exit; the Redis keys of the run are deleted.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import secrets
import statistics
import threading
import time
from typing import Any

import fanout
from _sse_load import run_client
from fanout import CHANNEL, EVENT, HOST, PATH, Child, GcPauses, publish_phase

VARIANTS = ("memory", "redis2")


class MinAcks:
    """The highest ``seq`` that every stream of every client has received (the min over the
    clients' reports): fanout.publish_phase reads ``value`` and waits on ``changed``."""

    def __init__(self) -> None:
        self.reports: dict[int, int] = {}
        self.value = -1
        self.changed = asyncio.Event()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        key = id(writer)
        self.reports[key] = -1
        while line := await reader.readline():
            self.reports[key] = max(self.reports[key], int(line))
            self.value = min(self.reports.values())
            self.changed.set()
        writer.close()


class Server:
    """A DashboardServer on memory or on Redis, publishing like fanout.Ours."""

    def __init__(self, redis: str | None, prefix: str) -> None:
        from dashboard.server.serve import DashboardServer

        options: dict[str, Any] = {"redis_url": redis, "redis_prefix": prefix} if redis else {}
        self.server = DashboardServer(port=0, token="benchmark-token-0123", **options)

    async def start(self) -> int:
        from dashboard.server.serve import freeze_startup_heap

        await self.server.start()
        freeze_startup_heap()
        return self.server.port

    async def publish(self, payload: dict[str, Any]) -> None:
        await self.server.hub.publish(CHANNEL, EVENT, payload)

    async def stop(self) -> None:
        await self.server.stop()


async def serve_main(redis: str | None, prefix: str) -> None:
    target = Server(redis, prefix)
    port = await target.start()
    acks, gc_pauses = MinAcks(), GcPauses()
    ack_server = await asyncio.start_server(acks.handle, HOST, 0)
    fanout._emit({"port": port, "ack_port": ack_server.sockets[0].getsockname()[1]})
    seq = 0
    async for cmd in fanout._commands():
        if cmd["cmd"] == "warm":
            for _ in range(10):
                await target.publish({"seq": seq, "t": time.time(), "pad": ""})
                seq += 1
            fanout._emit({})
        elif cmd["cmd"] == "publish":
            acks.reports = dict.fromkeys(acks.reports, seq - 1)
            seq = await publish_phase(target, acks, gc_pauses, seq, cmd)
        elif cmd["cmd"] == "idle":  # a process that only fans out: its CPU over the window
            await asyncio.sleep(cmd["warmup"])
            began = time.process_time()
            await asyncio.sleep(cmd["seconds"])
            cpu = time.process_time() - began
            await asyncio.sleep(cmd["tail"])
            fanout._emit({"cpu_pct": 100 * cpu / cmd["seconds"]})
    ack_server.close()
    await target.stop()


class ClusterChild(Child):
    SCRIPT = __file__


class RedisCpu:
    """Redis' CPU (``used_cpu_user`` + ``used_cpu_sys`` of ``INFO cpu``) over a window, read
    by a timer thread while the orchestrator waits for the phase."""

    def __init__(self, url: str) -> None:
        import redis

        self.client = redis.Redis.from_url(url)
        self.samples: list[float] = []

    def _sample(self) -> None:
        info = self.client.info("cpu")
        self.samples.append(float(info["used_cpu_user"]) + float(info["used_cpu_sys"]))

    def arm(self, warmup: float, seconds: float) -> None:
        self.samples = []
        threading.Timer(warmup, self._sample).start()
        threading.Timer(warmup + seconds, self._sample).start()

    def percent(self, seconds: float) -> float:
        if len(self.samples) < 2:
            return float("nan")
        return 100 * (self.samples[1] - self.samples[0]) / seconds


def run_phase(
    pairs: list[tuple[Child, Child]], mode: str, rate: float, args: argparse.Namespace
) -> dict[str, Any]:
    timing = {"warmup": args.warmup, "seconds": args.seconds, "tail": 1.0}
    (publisher, _), others = pairs[0], pairs[1:]
    publisher.send(cmd="publish", mode=mode, rate=rate, window=args.window, payload=args.payload,
                   **timing)  # fmt: skip
    for server, _ in others:
        server.send(cmd="idle", **timing)
    for _, client in pairs:
        client.send(cmd="measure", ack=mode == "max", **timing)
    wait = args.warmup + args.seconds + 60
    got = [client.recv(wait) for _, client in pairs]
    cpu = publisher.recv(30)["cpu_pct"] + sum(server.recv(30)["cpu_pct"] for server, _ in others)
    deliveries = sum(g["frames"] / g["elapsed"] for g in got)
    return {
        "deliveries": deliveries,
        "p50_ms": statistics.mean(g["p50_ms"] for g in got),
        "p99_ms": max(g["p99_ms"] for g in got),
        "server_cpu": cpu,
        "client_cpu": sum(g["cpu_pct"] for g in got),
        "per_core": deliveries / max(cpu / 100, 1e-9),
        "lost": sum(g["lost"] for g in got),
    }


ROW = "{:<7} {:<5} {:>8} {:>12} {:>7} {:>7} {:>8} {:>8} {:>10} {:>9} {:>5}"


def _row(variant: str, mode: str, rate: float, r: dict[str, float]) -> str:
    return ROW.format(
        variant, mode, "-" if mode == "max" else f"{rate:,.0f}", f"{r['deliveries']:,.0f}",
        f"{r['p50_ms']:.1f}", f"{r['p99_ms']:.1f}", f"{r['server_cpu']:.0f}%",
        f"{r['client_cpu']:.0f}%", f"{r['per_core']:,.0f}", f"{r.get('redis_cpu', 0):.0f}%",
        f"{r['lost']:.0f}",
    )  # fmt: skip


def start_variant(variant: str, args: argparse.Namespace, prefix: str) -> list[tuple[Child, Child]]:
    """Servers and their clients, streams connected; the publisher's pair first."""
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else [0]
    count = 1 if variant == "memory" else 2
    redis = () if variant == "memory" else ("--redis", args.redis, "--prefix", prefix)
    servers = [
        ClusterChild("--serve", "--cpu", str(cpus[n % len(cpus)]), *redis) for n in range(count)
    ]
    pairs: list[tuple[Child, Child]] = []
    infos = [server.recv(timeout=90) for server in servers]
    ack_port = infos[0]["ack_port"]  # every client acknowledges to the publisher
    for server, info in zip(servers, infos, strict=True):
        server.ask(30, cmd="warm")
        client = ClusterChild("--client", str(info["port"]), str(ack_port))
        pairs.append((server, client))
    share = args.subscribers // count
    for _, client in pairs:
        got = client.ask(120, cmd="connect", count=share, timeout=90)
        if got["connected"] < share:
            raise SystemExit(f"{variant}: only {got['connected']} of {share} streams connected")
    print(f"{variant}: {args.subscribers} streams on {count} process(es)", flush=True)
    return pairs


def run_benchmark(args: argparse.Namespace) -> None:
    print(f"Python {platform.python_version()}, {os.cpu_count()} CPUs; Redis {args.redis}")
    prefix = f"bench-{secrets.token_hex(4)}:"
    redis_cpu = RedisCpu(args.redis)
    children: list[Child] = []
    runs: dict[tuple[str, str], list[dict[str, Any]]] = {}
    rates: list[float] = []
    try:
        variants: dict[str, list[tuple[Child, Child]]] = {}
        for variant in VARIANTS:
            variants[variant] = start_variant(variant, args, prefix)
            children += [child for pair in variants[variant] for child in pair]
        print(ROW.format("variant", "phase", "events/s", "deliveries/s", "p50_ms", "p99_ms",
                         "srv_cpu", "cli_cpu", "per_core", "redis_cpu", "lost"))  # fmt: skip
        for repeat in range(args.repeat):
            order = VARIANTS if repeat % 2 == 0 else VARIANTS[::-1]
            for mode in ("max", "rate"):
                if mode == "rate":
                    capacity = statistics.median(r["deliveries"] for r in runs["memory", "max"])
                    rate = args.load * capacity / args.subscribers
                    rates.append(rate)
                else:
                    rate = 0.0
                for variant in order:
                    redis_cpu.arm(args.warmup, args.seconds)
                    result = run_phase(variants[variant], mode, rate or 1.0, args)
                    time.sleep(0.1)
                    result["redis_cpu"] = redis_cpu.percent(args.seconds)
                    runs.setdefault((variant, mode), []).append(result)
                    print(_row(variant, mode, rate, result), flush=True)
    finally:
        for child in children:
            child.close()
        keys = list(redis_cpu.client.scan_iter(match=f"{prefix}*", count=1000))
        if keys:
            redis_cpu.client.delete(*keys)
    medians = {
        key: {field: statistics.median(r[field] for r in results) for field in results[0]}
        for key, results in runs.items()
    }
    print(f"\nmedians of {args.repeat} runs ({args.subscribers} subscribers, {args.seconds:g}s "
          f"windows, rate phase at {args.load:.0%} of memory's capacity, "
          f"~{statistics.median(rates):,.0f} events/s):")  # fmt: skip
    for (variant, mode), summary in sorted(medians.items(), key=lambda item: item[0][1]):
        print(_row(variant, mode, statistics.median(rates) if mode == "rate" else 0, summary))
    memory, redis2 = medians["memory", "max"], medians["redis2", "max"]
    print(
        f"cluster_fanout: memory={memory['deliveries']:.0f} redis2={redis2['deliveries']:.0f} "
        f"per_core_ratio={redis2['per_core'] / memory['per_core']:.2f} "
        f"p99_ms_memory={medians['memory', 'rate']['p99_ms']:.1f} "
        f"p99_ms_redis2={medians['redis2', 'rate']['p99_ms']:.1f} "
        f"redis_cpu_pct={redis2['redis_cpu']:.0f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--redis", default=os.environ.get("DASHBOARD_BENCH_REDIS",
                        "redis://127.0.0.1:6379/14"), help="Redis URL (default DB 14)")  # fmt: skip
    parser.add_argument("--subscribers", type=int, default=1000, help="streams in all")
    parser.add_argument("--seconds", type=float, default=5.0, help="measured window per phase")
    parser.add_argument("--repeat", type=int, default=3, help="runs per variant and phase")
    parser.add_argument("--window", type=int, default=20, help="max phase: events in flight")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds before each window")
    parser.add_argument("--payload", type=int, default=100, help="padding bytes per event")
    parser.add_argument("--load", type=float, default=0.5, help="rate phase: share of capacity")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--prefix", default="", help=argparse.SUPPRESS)
    parser.add_argument("--client", nargs=2, type=int, metavar="PORT", help=argparse.SUPPRESS)
    parser.add_argument("--cpu", type=int, default=-1, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        redis = args.redis if args.prefix else None
        fanout._child(args.cpu, lambda: asyncio.run(serve_main(redis, args.prefix)))
    elif args.client:
        port, ack_port = args.client
        fanout._child(args.cpu, lambda: run_client(HOST, port, ack_port, PATH, fanout._emit))
    else:
        if not 1 < args.subscribers <= 5000 or not 0 < args.seconds <= 60:
            parser.error("need 1 < subscribers <= 5000 and 0 < seconds <= 60")
        if not 0 < args.load <= 1 or args.repeat < 1:
            parser.error("need 0 < load <= 1 and repeat >= 1")
        run_benchmark(args)


if __name__ == "__main__":
    main()
