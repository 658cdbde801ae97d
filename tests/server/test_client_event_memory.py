"""Client events cost no memory once relayed: a burst leaves the server's RSS near baseline.

(They were once kept in history: 20 guests sending 10/s x 9.9 KB for 20 s grew it by ~40 MB,
still held after every socket closed.)
"""

from __future__ import annotations

import asyncio
import json
import time

import aiohttp
import psutil

from dashboard.core.user_tokens import issue_user_token
from tests.processes import dashboard_process

SOCKETS = 20
SECONDS = 6.0
PAYLOAD = "x" * 9_800  # just under the 10 KB frame limit
MB = 1024 * 1024


async def flood(url: str, key: str, secret: str, n: int, deadline: float) -> int:
    """One guest's socket: join a room's presence channel, send 10 client events a second."""
    token = issue_user_token(secret, f"guest-{n}", guest=True)
    channel = f"presence-room-flood-{n}"
    sent = 0
    headers = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession(headers=headers) as http:
        ws_url = url.replace("http", "ws", 1) + f"/app/{key}?protocol=7"
        async with http.ws_connect(ws_url) as ws:
            socket_id = json.loads(json.loads(await ws.receive_str(timeout=10))["data"])[
                "socket_id"
            ]
            body = {"socket_id": socket_id, "channel_name": channel}
            async with http.post(f"{url}/pusher/auth", data=body) as response:
                auth = await response.json()
            await ws.send_json({"event": "pusher:subscribe", "data": {"channel": channel, **auth}})
            await ws.receive_str(timeout=10)
            while time.monotonic() < deadline:
                await ws.send_json({"event": "client-burst", "channel": channel, "data": PAYLOAD})
                sent += 1
                await asyncio.sleep(0.1)
    return sent


async def test_a_burst_of_client_events_leaves_memory_near_baseline(tmp_path):
    secret = "memory-test-secret-0123"
    env = {"DASHBOARD_APP_SECRET": secret, "DASHBOARD_TOKEN": "memory-test-token-0123"}
    args = ("--db", str(tmp_path / "x.sqlite3"), "--no-demo")
    async with dashboard_process(*args, env=env) as served:
        process = psutil.Process(served.pid)
        await asyncio.sleep(1.0)  # settle after start-up
        baseline = process.memory_info().rss
        deadline = time.monotonic() + SECONDS
        floods = [flood(served.url, "dashboard-key", secret, n, deadline) for n in range(SOCKETS)]
        sent = sum(await asyncio.wait_for(asyncio.gather(*floods), SECONDS + 30))
        await asyncio.sleep(1.0)  # the sockets are closed; let the server notice
        grown = (process.memory_info().rss - baseline) / MB
    assert sent >= SOCKETS * SECONDS * 5  # the burst really happened (~10/s per socket)
    kept_if_stored = sent * len(PAYLOAD) / MB
    # Stored, the payloads alone would pin `kept_if_stored` MB; relayed, only transient buffers.
    assert grown < max(3.0, kept_if_stored / 4), (grown, kept_if_stored)
