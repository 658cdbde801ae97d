"""Fan-out benchmark: one publisher, N Server-Sent Events subscribers on loopback.

Run ``python benchmarks/fanout.py --subscribers 1000 --seconds 10``. Its last line reads::

    fanout: ours=<deliveries/s> baseline=<deliveries/s> ratio=<r> p99_ms=<ms> rss_kb_per_conn=<kb>

Two servers run, each in its own process pinned to the first CPU:

* ours: the real :class:`~dashboard.server.serve.DashboardServer` (no page) over a :class:`Hub`;
  events go through ``hub.publish`` and ``GET /api/events`` exactly as in production.
* baseline: a bare Tornado application whose one handler keeps a set of open requests and, per
  event, writes the frame to each and flushes (with TCP_NODELAY). It builds the frames with
  :mod:`dashboard.core.event_stream`, so both send the same bytes; it has no queues, history,
  validation, batching or heartbeats, and does not import Panel.

A publisher inside each server process publishes ``{"seq": n, "t": send_time, "pad": ...}``, so
the HTTP publish endpoint is not measured. Each server has its own client process, pinned to the
second CPU, reading N streams on one epoll loop (``_sse_load.py``). Each repeat runs two phases
per variant, alternating which variant goes first:

* max (capacity): the publisher keeps at most ``--window`` events ahead of the slowest stream,
  which the client reports over a side socket every 2 ms. Deliveries/s is then what one server
  core sustains; ``ours``, ``baseline`` and ``ratio`` in the last line are medians of this phase.
* rate (latency): the publisher publishes ``--rate`` events/s, open loop. Latency is client
  receipt minus the send time taken just before ``publish``, sampled on every 4th stream;
  ``p99_ms`` in the last line is ours' median p99 of this phase.

A phase warms up for ``--warmup`` seconds, counts what arrives in the next ``--seconds``, then
reads on until the streams are quiet. Also reported per phase: server and client CPU over the
window (the client must stay well below 100% for the figures to be the server's), deliveries per
server CPU-second and the longest garbage-collection pause in the server. RSS per connection is
(server RSS with N idle streams - RSS before they connected) / N, from ``/proc/self/status``.
Every wait has a timeout, and the children are killed on exit.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import platform
import select
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import tornado.httpserver
import tornado.netutil
import tornado.web
from _sse_load import run_client

from dashboard.core.event_stream import connected_frame, event_frame
from dashboard.core.events import Event, encode_payload
from dashboard.hub import Hub

HOST = "127.0.0.1"
CHANNEL, EVENT = "bench", "tick"
PATH = f"/api/events?channel={CHANNEL}"
VARIANTS = ("ours", "baseline")

# -- inside a child process ---------------------------------------------------------------------


def _rss_kb() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS in /proc status")


class Ours:
    """The real server; events take the production path, ``hub.publish`` to ``/api/events``."""

    def __init__(self, **options: Any) -> None:
        # Imported here: it brings in Panel, whose heap would also slow the baseline's GC.
        from dashboard.server.serve import DashboardServer

        self.server = DashboardServer(Hub(), port=0, token="benchmark-token-0123", **options)

    async def start(self) -> int:
        from dashboard.server.serve import freeze_startup_heap

        await self.server.start()
        freeze_startup_heap()  # as `dashboard serve` does once it is up
        return self.server.port

    async def publish(self, payload: dict[str, Any]) -> None:
        await self.server.hub.publish(CHANNEL, EVENT, payload)

    async def stop(self) -> None:
        await self.server.stop()


class _BareStream(tornado.web.RequestHandler):
    """Sends the connected frame, then stays open until the client leaves."""

    def initialize(self, streams: set[_BareStream], first: bytes) -> None:
        self.streams = streams
        self.first = first
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def get(self) -> None:
        # Tornado leaves Nagle's algorithm on while a response streams; small frames would wait
        # for the ACK of the previous ones.
        self.request.connection.stream.set_nodelay(True)  # type: ignore[union-attr]
        self.set_header("Content-Type", "text/event-stream; charset=utf-8")
        self.set_header("Cache-Control", "no-cache")
        self.write(self.first)
        await self.flush()
        self.streams.add(self)
        await self.done

    def on_connection_close(self) -> None:
        self.streams.discard(self)
        if not self.done.done():
            self.done.set_result(None)


class Baseline:
    """The least a Tornado SSE server can do: write each event's frame to every open request."""

    def __init__(self) -> None:
        self.epoch = Hub().epoch  # same length, so the same frame sizes as ours
        self.streams: set[_BareStream] = set()
        self.offset = 0

    async def start(self) -> int:
        first = connected_frame(f"{self.epoch}|{CHANNEL}:0", [CHANNEL], self.epoch, 15.0, 3000)
        app = tornado.web.Application(
            [("/api/events", _BareStream, {"streams": self.streams, "first": first})]
        )
        sockets = tornado.netutil.bind_sockets(0, HOST)
        self.server = tornado.httpserver.HTTPServer(app)
        self.server.add_sockets(sockets)
        return int(sockets[0].getsockname()[1])

    async def publish(self, payload: dict[str, Any]) -> None:
        self.offset += 1
        data_json = encode_payload(payload)
        frame = event_frame(Event(CHANNEL, EVENT, data_json, self.offset, self.epoch, time.time()))
        for stream in tuple(self.streams):
            stream.write(frame)
            stream.flush()

    async def stop(self) -> None:
        self.server.stop()


class GcPauses:
    """Durations of the garbage collections that run while ``recording``."""

    def __init__(self) -> None:
        self.recording = False
        self.pauses: list[float] = []
        self._began = 0.0
        gc.callbacks.append(self._on_gc)

    def _on_gc(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._began = time.perf_counter()
        elif self.recording:
            self.pauses.append(time.perf_counter() - self._began)


class Acks:
    """The highest ``seq`` every subscriber has received, as reported by the client process."""

    def __init__(self) -> None:
        self.value = -1
        self.changed = asyncio.Event()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while line := await reader.readline():
            self.value = max(self.value, int(line))
            self.changed.set()
        writer.close()


async def publish_phase(
    target: Ours | Baseline, acks: Acks, gc_pauses: GcPauses, seq: int, cmd: dict[str, Any]
) -> int:
    """Publish for warmup + seconds + tail; returns the next seq. Reports CPU of the window."""
    loop = asyncio.get_running_loop()
    pad = "x" * cmd["payload"]
    start = loop.time()
    window_start = start + cmd["warmup"]
    cpu: list[float] = []

    def mark(recording: bool) -> None:
        cpu.append(time.process_time())
        gc_pauses.recording = recording

    gc_pauses.pauses.clear()
    loop.call_at(window_start, mark, True)
    loop.call_at(window_start + cmd["seconds"], mark, False)
    end = window_start + cmd["seconds"] + cmd["tail"]
    first, acks.value = seq, seq - 1
    while (now := loop.time()) < end:
        if cmd["mode"] == "max":
            if seq - acks.value > cmd["window"]:
                acks.changed.clear()
                try:
                    async with asyncio.timeout(end - now):
                        await acks.changed.wait()
                except TimeoutError:
                    pass
                continue
        elif (due := start + (seq - first) / cmd["rate"]) > now:
            await asyncio.sleep(due - now)
            continue
        await target.publish({"seq": seq, "t": time.time(), "pad": pad})
        seq += 1
        await asyncio.sleep(0)  # let the streams run between events, as a real publisher would
    pauses = gc_pauses.pauses
    _emit(
        {
            "published": seq - first,
            "cpu_pct": 100 * (cpu[1] - cpu[0]) / cmd["seconds"],
            "gc_max_ms": 1000 * max(pauses, default=0.0),
        }
    )
    return seq


async def serve_main(variant: str, payload: int) -> None:
    target = Ours() if variant == "ours" else Baseline()
    port = await target.start()
    acks, gc_pauses = Acks(), GcPauses()
    ack_server = await asyncio.start_server(acks.handle, HOST, 0)
    _emit({"port": port, "ack_port": ack_server.sockets[0].getsockname()[1], "pid": os.getpid()})
    seq = 0
    async for cmd in _commands():
        if cmd["cmd"] == "warm":  # so lazily created state (the channel, caches) predates the RSS
            for _ in range(10):
                await target.publish({"seq": seq, "t": time.time(), "pad": "x" * payload})
                seq += 1
            _emit({})
        elif cmd["cmd"] == "rss":
            gc.collect()
            _emit({"rss_kb": _rss_kb()})
        elif cmd["cmd"] == "publish":
            seq = await publish_phase(target, acks, gc_pauses, seq, cmd)
    ack_server.close()
    await target.stop()


_OUT: Any = None


def _emit(message: dict[str, Any]) -> None:
    _OUT.write(json.dumps(message) + "\n")
    _OUT.flush()


async def _commands() -> AsyncIterator[dict[str, Any]]:
    """JSON commands from stdin, one per line, until EOF or ``quit``."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := await reader.readline():
        cmd = json.loads(line)
        if cmd["cmd"] == "quit":
            return
        yield cmd


def _child(cpu: int, main: Callable[[], Any], profile: str | None = None) -> None:
    global _OUT
    # Protocol messages go to the real stdout; anything else printed goes to stderr.
    _OUT = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    if cpu >= 0 and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {cpu})
    if profile is None:
        main()
        return
    import cProfile

    cProfile.runctx("main()", globals(), {"main": main}, profile)


# -- the orchestrating process ------------------------------------------------------------------


class Child:
    """A child process running ``SCRIPT``, spoken to in JSON lines with timeouts."""

    #: The benchmark script the child runs (``ws_fanout.py`` sets its own).
    SCRIPT = __file__

    def __init__(self, *args: str) -> None:
        self.name = " ".join(args)
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the child
        self.proc = subprocess.Popen(
            [sys.executable, self.SCRIPT, *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log,
        )
        self._buf = b""

    def send(self, **cmd: Any) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(cmd).encode() + b"\n")
        self.proc.stdin.flush()

    def recv(self, timeout: float) -> dict[str, Any]:
        assert self.proc.stdout is not None
        fd, deadline = self.proc.stdout.fileno(), time.monotonic() + timeout
        while b"\n" not in self._buf:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
                raise TimeoutError(f"child {self.name} silent for {timeout}s{self._tail()}")
            chunk = os.read(fd, 65536)
            if not chunk:
                raise RuntimeError(f"child {self.name} exited{self._tail()}")
            self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        return json.loads(line)

    def ask(self, wait: float, **cmd: Any) -> dict[str, Any]:
        self.send(**cmd)
        return self.recv(wait)

    def close(self) -> None:
        try:
            self.send(cmd="quit")
            self.proc.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait(timeout=5)

    def _tail(self) -> str:
        self.log.seek(0)
        return "; stderr: " + self.log.read()[-2000:].decode(errors="replace")


def run_phase(server: Child, client: Child, mode: str, args: argparse.Namespace) -> dict[str, Any]:
    timing = {"warmup": args.warmup, "seconds": args.seconds, "tail": 1.0}
    server.send(
        cmd="publish", mode=mode, rate=args.rate, window=args.window, payload=args.payload,
        **timing,
    )  # fmt: skip
    got = client.ask(args.warmup + args.seconds + 60, cmd="measure", ack=mode == "max", **timing)
    published = server.recv(timeout=30)
    rate = got["frames"] / got["elapsed"]
    return {
        "deliveries": rate,
        "p50_ms": got["p50_ms"],
        "p99_ms": got["p99_ms"],
        "server_cpu": published["cpu_pct"],
        "client_cpu": got["cpu_pct"],
        "per_core": rate / max(published["cpu_pct"] / 100, 1e-9),
        "gc_max_ms": published["gc_max_ms"],
        "lost": got["lost"],
    }


ROW = "{:<9} {:<5} {:>12} {:>7} {:>7} {:>8} {:>8} {:>11} {:>10} {:>5}"


def _row(variant: str, mode: str, r: dict[str, float]) -> str:
    return ROW.format(
        variant, mode, f"{r['deliveries']:,.0f}", f"{r['p50_ms']:.1f}", f"{r['p99_ms']:.1f}",
        f"{r['server_cpu']:.0f}%", f"{r['client_cpu']:.0f}%", f"{r['per_core']:,.0f}",
        f"{r['gc_max_ms']:.1f}", f"{r['lost']:.0f}",
    )  # fmt: skip


def _profile_to(args: argparse.Namespace, name: str) -> tuple[str, ...]:
    if not args.profile:
        return ()
    return ("--profile-to", os.path.join(os.path.abspath(args.profile), f"{name}.prof"))


def run_benchmark(
    args: argparse.Namespace,
    child: type[Child] | None = None,
    unit: str = "stream",
    label: str = "fanout",
) -> None:
    """Run both variants' phases and print the table, medians and the last line.

    ``child`` launches the script that serves the variants (``ws_fanout.py`` passes its own),
    ``unit`` names a connection in the output and ``label`` starts the last line.
    """
    child = child or Child
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else [0]
    server_cpu, client_cpu = str(cpus[0]), str(cpus[1] if len(cpus) > 1 else -1)
    print(f"Python {platform.python_version()}, {os.cpu_count()} CPUs: servers pinned to CPU "
          f"{server_cpu}, clients to CPU {client_cpu}")  # fmt: skip
    children: list[Child] = []
    pairs: dict[str, tuple[Child, Child]] = {}
    rss: dict[str, float] = {}
    try:
        for variant in VARIANTS:
            server = child(
                "--serve", variant, "--cpu", server_cpu, "--payload", str(args.payload),
                *_profile_to(args, variant),
            )  # fmt: skip
            children.append(server)
            info = server.recv(timeout=60)
            server.ask(30, cmd="warm")
            before = server.ask(30, cmd="rss")["rss_kb"]
            client = child(
                "--client", str(info["port"]), str(info["ack_port"]), "--cpu", client_cpu,
                *_profile_to(args, f"client-{variant}"),
            )  # fmt: skip
            children.append(client)
            got = client.ask(90, cmd="connect", count=args.subscribers, timeout=60)
            if got["connected"] < args.subscribers:
                raise SystemExit(f"{variant}: only {got['connected']} {unit}s connected")
            time.sleep(1.0)
            rss[variant] = (server.ask(30, cmd="rss")["rss_kb"] - before) / got["connected"]
            print(f"{variant}: {got['connected']} {unit}s in {got['seconds']:.1f}s, "
                  f"{rss[variant]:.1f} KB RSS per {unit}")  # fmt: skip
            pairs[variant] = (server, client)

        print(ROW.format("variant", "phase", "deliveries/s", "p50_ms", "p99_ms", "srv_cpu",
                         "cli_cpu", "per_core/s", "gc_max_ms", "lost"))  # fmt: skip
        runs: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for repeat in range(args.repeat):
            order = VARIANTS if repeat % 2 == 0 else VARIANTS[::-1]
            for mode in ("max", "rate"):
                for variant in order:
                    result = run_phase(*pairs[variant], mode, args)
                    runs.setdefault((variant, mode), []).append(result)
                    print(_row(variant, mode, result), flush=True)
    finally:
        for child in children:
            child.close()

    print(f"\nmedians of {args.repeat} runs ({args.subscribers} subscribers, {args.seconds:g}s "
          f"windows, rate phase at {args.rate:g} events/s, max phase window {args.window}):")  # fmt: skip
    medians = {
        key: {field: statistics.median(r[field] for r in results) for field in results[0]}
        for key, results in runs.items()
    }
    for (variant, mode), summary in sorted(medians.items(), key=lambda item: item[0][1]):
        print(_row(variant, mode, summary))
    if any(r["server_cpu"] < 90 for v in VARIANTS for r in runs[v, "max"]):
        print("warning: a max-phase server was below 90% CPU, so not the bottleneck there")
    ours, base = medians["ours", "max"]["deliveries"], medians["baseline", "max"]["deliveries"]
    print(
        f"server RSS per idle {unit}: ours {rss['ours']:.1f} KB, baseline {rss['baseline']:.1f} KB"
    )
    print(
        f"{label}: ours={ours:.0f} baseline={base:.0f} ratio={ours / base:.2f} "
        f"p99_ms={medians['ours', 'rate']['p99_ms']:.1f} rss_kb_per_conn={rss['ours']:.1f}"
    )


def add_arguments(parser: argparse.ArgumentParser, unit: str = "SSE streams") -> None:
    """The options both fan-out benchmarks take."""
    parser.add_argument("--subscribers", type=int, default=1000, help=f"{unit} per server")
    parser.add_argument("--seconds", type=float, default=10.0, help="measured window per phase")
    parser.add_argument("--rate", type=float, default=20.0, help="events/s in the rate phase")
    parser.add_argument("--repeat", type=int, default=3, help="runs per variant and phase")
    parser.add_argument("--window", type=int, default=20, help="max phase: events in flight")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds before each window")
    parser.add_argument("--payload", type=int, default=100, help="padding bytes per event")
    parser.add_argument("--profile", metavar="DIR", help="cProfile each process into DIR/")
    parser.add_argument("--profile-to", help=argparse.SUPPRESS)
    parser.add_argument("--serve", choices=VARIANTS, help=argparse.SUPPRESS)
    parser.add_argument("--client", nargs=2, type=int, metavar="PORT", help=argparse.SUPPRESS)
    parser.add_argument("--cpu", type=int, default=-1, help=argparse.SUPPRESS)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    args = parser.parse_args()
    if args.serve:
        _child(args.cpu, lambda: asyncio.run(serve_main(args.serve, args.payload)), args.profile_to)
    elif args.client:
        port, ack_port = args.client
        _child(args.cpu, lambda: run_client(HOST, port, ack_port, PATH, _emit), args.profile_to)
    else:
        if not 0 < args.subscribers <= 5000 or not 0 < args.seconds <= 600 or args.rate <= 0:
            parser.error("need 0 < subscribers <= 5000, 0 < seconds <= 600 and rate > 0")
        run_benchmark(args)


if __name__ == "__main__":
    main()
