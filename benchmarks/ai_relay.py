"""AI relay overhead: added latency per token through ``POST /api/chat`` vs reading upstream.

Run ``python benchmarks/ai_relay.py --requests 20 --tokens 200``. Its last line reads::

    ai_relay: added_p50_ms=<ms> added_p99_ms=<ms> direct_p99_ms=<ms> relay_p99_ms=<ms>

Three processes on loopback:

* upstream: a fake OpenAI-compatible server (aiohttp) whose ``POST /v1/chat/completions``
  streams ``--tokens`` chunks, one every ``--interval`` seconds; each chunk's content is the
  ``time.monotonic()`` at which it was written (CLOCK_MONOTONIC is shared by all processes).
* server: the real :class:`~dashboard.server.serve.DashboardServer` with an
  :class:`~dashboard.ai.OpenAIProvider` pointed at the upstream (the real ``openai`` SDK);
  ``freeze_startup_heap()`` runs after start, as in ``dashboard serve``. Its per-user rate
  limit is lifted so the benchmark is not refused.
* client (this process): alternates, request by request, between reading the upstream
  directly (baseline: aiohttp + :class:`~dashboard.core.sse.SSEDecoder`) and reading
  ``/api/chat`` (ours: aiohttp + the same decoder), recording receipt time minus the embedded
  send time for every token.

Both variants run in the same invocation and see the same upstream. "Added" is ours minus the
baseline, per percentile. Every wait has a timeout and the children are killed on exit.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import time

import aiohttp

from dashboard.core.ai_stream import ChatDelta, ChatDone, ChatFailure, parse_chat_event
from dashboard.core.sse import SSEDecoder

HOST = "127.0.0.1"
ASK = {"messages": [{"role": "user", "content": "benchmark"}]}

# -- child processes ------------------------------------------------------------------------


async def run_upstream(tokens: int, interval: float) -> None:
    from aiohttp import web

    async def completions(request: web.Request) -> web.StreamResponse:
        await request.read()
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        start = time.monotonic()
        for index in range(tokens):
            # Paced against a fixed schedule, so a late token does not shift the rest.
            await asyncio.sleep(max(0.0, start + index * interval - time.monotonic()))
            delta = {"content": f"{time.monotonic():.9f} "}
            body = {
                "id": "bench", "object": "chat.completion.chunk", "created": 1, "model": "bench",
                "choices": [{"index": 0, "delta": delta, "finish_reason": None}],
            }  # fmt: skip
            await response.write(f"data: {json.dumps(body)}\n\n".encode())
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_post("/v1/chat/completions", completions)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, HOST, 0)
    await site.start()
    print(site._server.sockets[0].getsockname()[1], flush=True)  # type: ignore[union-attr]
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)  # until the parent exits


async def run_server(upstream: str) -> None:
    from dashboard.ai import OpenAIProvider
    from dashboard.core.user_limits import KeyedRateLimiter
    from dashboard.core.user_tokens import issue_user_token
    from dashboard.server.serve import DashboardServer, freeze_startup_heap

    provider = OpenAIProvider("bench", api_key="bench", base_url=upstream)
    server = DashboardServer(port=0, address=HOST, token="benchmark-token-0123", ai=provider)
    server.ctx.rate_limits.chat = KeyedRateLimiter(rate=1e6, burst=1_000_000)
    await server.start()
    freeze_startup_heap()
    print(server.port, issue_user_token(server.ctx.app.secret, "bench"), flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)


# -- the client ---------------------------------------------------------------------------


async def read_direct(session: aiohttp.ClientSession, url: str) -> list[float]:
    latencies = []
    body = {"model": "bench", "stream": True, **ASK}
    async with session.post(url, json=body) as response:
        decoder = SSEDecoder()
        async for data in response.content.iter_any():
            now = time.monotonic()
            for event in decoder.feed(data):
                if event.data == "[DONE]":
                    return latencies
                content = json.loads(event.data)["choices"][0]["delta"].get("content")
                if content:
                    latencies.append(now - float(content))
    raise RuntimeError("upstream stream ended without [DONE]")


async def read_relay(session: aiohttp.ClientSession, url: str, token: str) -> list[float]:
    latencies = []
    headers = {"Authorization": f"Bearer {token}"}
    async with session.post(url, json=ASK, headers=headers) as response:
        if response.status != 200:
            raise RuntimeError(f"/api/chat answered {response.status}: {await response.text()}")
        decoder = SSEDecoder()
        async for data in response.content.iter_any():
            now = time.monotonic()
            for event in decoder.feed(data):
                item = parse_chat_event(event)
                if isinstance(item, ChatDone):
                    return latencies
                if isinstance(item, ChatFailure):
                    raise RuntimeError(f"relay failed: {item}")
                if isinstance(item, ChatDelta):
                    # A coalesced read may hold several tokens; each carries its own time.
                    latencies.extend(now - float(t) for t in item.content.split())
    raise RuntimeError("relay stream ended without [DONE]")


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def start_child(*args: str) -> tuple[subprocess.Popen[str], list[str]]:
    child = subprocess.Popen(
        [sys.executable, __file__, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert child.stdout is not None
    for _ in range(100):  # Panel prints its own "Launching server" line first
        line = child.stdout.readline().split()
        if not line:
            break
        if line[0].isdigit():
            return child, line
    child.kill()
    raise RuntimeError(f"child {args[1]} did not start")


async def bench(args: argparse.Namespace) -> None:
    upstream, (port,) = start_child("--role", "upstream", "--tokens", str(args.tokens),
                                    "--interval", str(args.interval))  # fmt: skip
    base = f"http://{HOST}:{port}/v1"
    server, (server_port, token) = start_child("--role", "server", "--upstream", base)
    print(f"Python {platform.python_version()}, {os.cpu_count()} CPUs; {args.requests} requests "
          f"x {args.tokens} tokens every {args.interval * 1000:g} ms per variant")  # fmt: skip
    results: dict[str, list[float]] = {"direct": [], "relay": []}
    per_run: dict[str, list[float]] = {"direct": [], "relay": []}
    try:
        timeout = aiohttp.ClientTimeout(total=args.tokens * args.interval + 30)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            chat_url = f"http://{HOST}:{server_port}/api/chat"
            await read_relay(session, chat_url, token)  # warm-up: imports, connections
            await read_direct(session, f"{base}/chat/completions")
            for index in range(args.requests):
                order = ("direct", "relay") if index % 2 == 0 else ("relay", "direct")
                for variant in order:
                    if variant == "direct":
                        values = await read_direct(session, f"{base}/chat/completions")
                    else:
                        values = await read_relay(session, chat_url, token)
                    assert len(values) == args.tokens, (variant, len(values))
                    results[variant].extend(values)
                    per_run[variant].append(pct(values, 0.99))
    finally:
        for child in (upstream, server):
            child.kill()
            child.wait(timeout=10)
    print(f"{'variant':8} {'tokens':>7} {'p50_ms':>8} {'p90_ms':>8} {'p99_ms':>8} {'max_ms':>8}"
          f" {'median_run_p99_ms':>18}")  # fmt: skip
    for variant, values in results.items():
        print(f"{variant:8} {len(values):7d} {pct(values, 0.5):8.3f} {pct(values, 0.9):8.3f} "
              f"{pct(values, 0.99):8.3f} {max(values) * 1000:8.3f} "
              f"{statistics.median(per_run[variant]):18.3f}")  # fmt: skip
    direct, relay = results["direct"], results["relay"]
    print(
        f"ai_relay: added_p50_ms={pct(relay, 0.5) - pct(direct, 0.5):.3f} "
        f"added_p99_ms={pct(relay, 0.99) - pct(direct, 0.99):.3f} "
        f"direct_p99_ms={pct(direct, 0.99):.3f} relay_p99_ms={pct(relay, 0.99):.3f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20, help="requests per variant")
    parser.add_argument("--tokens", type=int, default=200, help="tokens per answer")
    parser.add_argument("--interval", type=float, default=0.002, help="seconds between tokens")
    parser.add_argument("--role", choices=("client", "upstream", "server"), default="client")
    parser.add_argument("--upstream", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if not (1 <= args.requests <= 1000 and 1 <= args.tokens <= 10_000 and args.interval > 0):
        parser.error("--requests 1..1000, --tokens 1..10000, --interval > 0")
    if args.role == "upstream":
        asyncio.run(run_upstream(args.tokens, args.interval))
    elif args.role == "server":
        asyncio.run(run_server(args.upstream))
    else:
        asyncio.run(bench(args))


if __name__ == "__main__":
    main()
