"""A subscriber whose network vanishes is dropped within the documented bound.

The server and the subscriber run in a network namespace of the test's own (its loopback is
private), and the namespace's loopback is then taken down: every packet is dropped, as on a
network that vanished. Without ``TCP_USER_TIMEOUT`` the server would keep the stream until
the kernel gives up retransmitting (about 15 minutes); with it, within heartbeat + timeout.
Needs root (``ip netns``); it may skip on a laptop, never under CI=true.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import skip_or_fail

ROOT = Path(__file__).resolve().parents[2]
HEARTBEAT = 0.5  # seconds
DEAD_PEER_TIMEOUT = 2.0  # seconds

SERVER = f"""
import asyncio, sys
from dashboard.server import DashboardServer, Limits

async def main():
    server = DashboardServer(
        port=5006, heartbeat={HEARTBEAT}, limits=Limits(dead_peer_timeout={DEAD_PEER_TIMEOUT})
    )
    await server.start()
    while True:
        print("streams", len(server.ctx.streams), flush=True)
        await asyncio.sleep(0.1)

asyncio.run(main())
"""

SUBSCRIBER = """
import asyncio, aiohttp

async def main():
    async with aiohttp.ClientSession() as http:
        async with http.get("http://127.0.0.1:5006/api/events?channel=metrics") as response:
            print("connected", response.status, flush=True)
            while await response.content.readany():
                pass

asyncio.run(main())
"""


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=10)


@pytest.fixture
def namespace():
    if shutil.which("ip") is None:
        skip_or_fail("no `ip` command (iproute2) to make a network namespace")
    if os.geteuid() != 0:
        skip_or_fail("making a network namespace needs root")
    name = f"dash-{secrets.token_hex(4)}"
    try:
        _ip("netns", "add", name)
    except subprocess.CalledProcessError as exc:
        skip_or_fail(f"cannot make a network namespace: {exc.stderr.decode().strip()}")
    try:
        _ip("netns", "exec", name, "ip", "link", "set", "lo", "up")
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=10)


async def _spawn(namespace: str, code: str) -> asyncio.subprocess.Process:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    return await asyncio.create_subprocess_exec(
        "ip", "netns", "exec", namespace, sys.executable, "-c", code,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, env=env, cwd=ROOT,
    )  # fmt: skip


async def _line_starting(process: asyncio.subprocess.Process, prefix: str, deadline: float) -> str:
    assert process.stdout is not None
    while True:
        timeout = deadline - time.monotonic()
        assert timeout > 0, f"no line starting {prefix!r} in time"
        line = (await asyncio.wait_for(process.stdout.readline(), timeout)).decode()
        assert line, f"the process ended before {prefix!r}"
        if line.startswith(prefix):
            return line.strip()


async def test_a_vanished_subscriber_is_dropped_within_heartbeat_plus_timeout(namespace):
    server = await _spawn(namespace, SERVER)
    subscriber = None
    try:
        await _line_starting(server, "streams 0", time.monotonic() + 60)
        subscriber = await _spawn(namespace, SUBSCRIBER)
        assert await _line_starting(subscriber, "connected", time.monotonic() + 30) == (
            "connected 200"
        )
        await _line_starting(server, "streams 1", time.monotonic() + 10)
        _ip("netns", "exec", namespace, "ip", "link", "set", "lo", "down")  # the network goes
        vanished = time.monotonic()
        await _line_starting(server, "streams 0", vanished + 30)
        took = time.monotonic() - vanished
        bound = HEARTBEAT + DEAD_PEER_TIMEOUT
        assert took <= bound + 2.0, f"dropped after {took:.1f} s; the bound is {bound} s"
    finally:
        for process in (subscriber, server):
            if process is not None and process.returncode is None:
                process.kill()
                await process.wait()
