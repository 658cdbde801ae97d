"""Three real ``dashboard serve`` processes on one Redis and one PostgreSQL, behind real nginx.

The cluster of ``scripts/cluster.py`` (``make cluster``), started once for this module, with a
presence timeout of 3 s so that a crash is seen quickly. What must hold:

* pusher-js (in Chromium, through nginx) and the Python client (on each process) see one
  presence roster, with one ``member_added`` / ``member_removed`` per user however many
  processes the user's sockets are on;
* a chat message posted on A is in B's history and arrives live on C;
* ``kill -9`` of the process holding an SSE stream and a presence member: the member leaves
  everywhere within the presence timeout, the other processes keep serving, and the stream
  reconnects through nginx and resumes exactly (``Last-Event-ID``), on another process.

Needs Redis, PostgreSQL and nginx (and Chromium for the browser part): each missing one skips
on a laptop with the reason, and fails under CI=true.
"""

from __future__ import annotations

import asyncio
import importlib.util
import itertools
import json
import os
import secrets
import shutil
import sys
import time
from pathlib import Path

import aiohttp
import pytest
import pytest_asyncio

from dashboard.client import PusherClient, SSESubscription, local_authorizer
from dashboard.core.user_tokens import issue_user_token
from tests.conftest import skip_or_fail
from tests.postgres import scratch_database, unavailable_reason
from tests.redis_server import delete_prefix, require_shared_redis
from tests.redis_support import REDIS_URL

ROOT = Path(__file__).resolve().parents[2]
SECRET = "cluster-test-secret-0123456789"
TOKEN = "cluster-test-publish-token"
KEY = "dashboard-key"
ROOM = "presence-room"
PRESENCE_TIMEOUT = 3.0
PUSHER_JS = ROOT / "node_modules" / "pusher-js" / "dist" / "web" / "pusher.min.js"

pytestmark = pytest.mark.asyncio(loop_scope="module")


def _load_cluster_module():
    spec = importlib.util.spec_from_file_location("cluster_script", ROOT / "scripts/cluster.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def cluster():
    cluster_script = _load_cluster_module()
    if not os.path.exists(cluster_script.NGINX):
        skip_or_fail(f"no nginx at {cluster_script.NGINX} (apt-get install nginx)")
    reason = unavailable_reason()
    if reason:
        skip_or_fail(reason)
    await require_shared_redis()
    prefix = f"cluster-{secrets.token_hex(4)}:"
    try:
        with scratch_database() as db:
            async with cluster_script.Cluster(
                redis=REDIS_URL,
                db=db,
                processes=3,
                prefix=prefix,
                presence_timeout=PRESENCE_TIMEOUT,
                extra=["--no-demo", "--allow-channel", f"{ROOM}=*"],
                env={"DASHBOARD_APP_SECRET": SECRET, "DASHBOARD_TOKEN": TOKEN},
            ) as running:
                yield running
    finally:
        await delete_prefix(REDIS_URL, prefix)


@pytest_asyncio.fixture(loop_scope="module")
async def http():
    async with aiohttp.ClientSession() as session:
        yield session


def python_client(url: str, user: str) -> PusherClient:
    authorizer = local_authorizer(KEY, SECRET, user_id=user, user_info={"name": user.title()})
    return PusherClient(url, KEY, authorizer=authorizer, reconnect_delay=0.2)


def bearer(user: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {issue_user_token(SECRET, user, user.title())}"}


async def eventually(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


class Roster:
    """What one Python client was told about the room, in order."""

    def __init__(self, channel) -> None:
        self.events: list[tuple[str, str]] = []
        channel.bind("pusher:member_added", lambda e: self.events.append(("+", e.data["user_id"])))
        channel.bind(
            "pusher:member_removed", lambda e: self.events.append(("-", e.data["user_id"]))
        )


async def test_one_presence_roster_for_pusher_js_and_python_across_processes(cluster):
    if not PUSHER_JS.exists():
        skip_or_fail(f"pusher-js is not installed at {PUSHER_JS} (npm ci)")
    from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS

    if not (os.path.exists(CHROMIUM) or shutil.which(CHROMIUM)):
        skip_or_fail(f"no Chromium at {CHROMIUM}")
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        skip_or_fail("the playwright package is not installed")
    a, b, c = cluster.nodes
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        try:
            context = await browser.new_context()
            # The page, its identity and its socket all go through nginx.
            response = await context.request.post(
                f"{cluster.url}/api/identity", data={"name": "Cy"}
            )
            assert response.status == 200, await response.text()
            cy = (await response.json())["user_id"]
            page = await context.new_page()
            await page.goto(f"{cluster.url}/api/health")
            await page.add_script_tag(path=str(PUSHER_JS))
            await page.evaluate(
                """([key, port, room]) => {
                  window.told = [];
                  const pusher = new Pusher(key, {
                    cluster: "mt1", wsHost: "127.0.0.1", wsPort: port, forceTLS: false,
                    enabledTransports: ["ws"], disableStats: true,
                    channelAuthorization: {endpoint: "/pusher/auth", transport: "ajax"},
                  });
                  const channel = pusher.subscribe(room);
                  channel.bind("pusher:subscription_succeeded", () => window.told.push("ok"));
                  channel.bind("pusher:member_added", (m) => window.told.push("+" + m.id));
                  channel.bind("pusher:member_removed", (m) => window.told.push("-" + m.id));
                  window.pusher = pusher;
                }""",
                [KEY, cluster.port, ROOM],
            )
            await page.wait_for_function("window.told.includes('ok')", timeout=10_000)

            async with (
                python_client(a.url, "ada") as ada_on_a,
                python_client(b.url, "ada") as ada_on_b,
                python_client(c.url, "bob") as bob_on_c,
            ):
                bob_room = await bob_on_c.subscribe(ROOM)
                bob_told = Roster(bob_room)
                await ada_on_a.subscribe(ROOM)
                ada_b_room = await ada_on_b.subscribe(ROOM)  # Ada's second socket, on B
                assert set(ada_b_room.members) == {cy, "ada", "bob"}
                await eventually(lambda: bob_told.events == [("+", "ada")])
                await page.wait_for_function(
                    "window.told.includes('+ada') && window.told.includes('+bob')"
                )
                members = await page.evaluate(
                    """() => { const all = [];
                      window.pusher.channel('presence-room').members.each((m) => all.push(m.id));
                      return all.sort(); }"""
                )
                assert members == sorted([cy, "ada", "bob"])

                await ada_on_a.aclose()  # one of Ada's sockets: she is still here
                await asyncio.sleep(0.5)
                assert bob_told.events == [("+", "ada")]
                await ada_on_b.aclose()  # her last one
                await eventually(lambda: bob_told.events == [("+", "ada"), ("-", "ada")])
                await page.wait_for_function("window.told.includes('-ada')")
                await asyncio.sleep(0.3)  # nothing else trails in
                assert await page.evaluate("window.told") == ["ok", "+bob", "+ada", "-ada"]
                assert bob_told.events == [("+", "ada"), ("-", "ada")]
                assert set(bob_room.members) == {cy, "bob"}
        finally:
            await browser.close()


async def test_a_chat_message_posted_on_a_is_in_bs_history_and_live_on_c(cluster, http):
    a, b, c = cluster.nodes
    room = f"lobby{secrets.token_hex(3)}"
    async with SSESubscription(f"{c.url}/api/events?channel=room-{room}") as live:
        events = aiter(live)
        assert (await anext(events)).event == "connected"
        async with http.post(
            f"{a.url}/api/rooms/{room}/messages",
            json={"text": "hello from A"},
            headers=bearer("ada"),
        ) as response:
            assert response.status == 201, await response.text()
            posted = await response.json()
        async with http.get(f"{b.url}/api/rooms/{room}/messages") as response:
            history = (await response.json())["messages"]
        assert [(m["id"], m["text"]) for m in history] == [(posted["id"], "hello from A")]
        event = await asyncio.wait_for(anext(events), 5)
        assert event.event == "INSERT"
        payload = json.loads(event.data)["data"]  # the hub's envelope, then the row change
        assert payload["message"]["id"] == posted["id"]
        assert payload["message"]["text"] == "hello from A"


async def test_kill_9_members_leave_others_serve_streams_resume_exactly(cluster, http):
    token = {"Authorization": f"Bearer {TOKEN}"}

    async def publish(node, n: int) -> None:
        body = {"channel": "ticks", "event": "tick", "data": n}
        async with http.post(f"{node.url}/api/publish", json=body, headers=token) as response:
            assert response.status == 200, await response.text()

    fast = lambda _initial: itertools.repeat(0.2)  # noqa: E731 - reconnect at once
    stream = SSESubscription(f"{cluster.url}/api/events?channel=ticks", backoff=fast)
    events = aiter(stream)
    ticks: list[int] = []

    async def read_ticks(count: int) -> None:
        while len(ticks) < count:
            event = await asyncio.wait_for(anext(events), 10)
            if event.event == "tick":
                ticks.append(json.loads(event.data)["data"])

    try:
        assert (await asyncio.wait_for(anext(events), 10)).event == "connected"
        # The process nginx gave the stream to is the one to crash.
        victim = None
        for node in cluster.nodes:
            async with http.get(f"{node.url}/api/health") as response:
                if (await response.json())["connections"]["sse"] == 1:
                    victim = node
        assert victim is not None
        survivors = [node for node in cluster.nodes if node is not victim]
        for n in range(1, 4):
            await publish(survivors[0], n)
        await read_ticks(3)

        async with (
            python_client(victim.url, "dan") as dan,
            python_client(survivors[1].url, "eve") as eve,
        ):
            eve_room = await eve.subscribe(ROOM)
            eve_told = Roster(eve_room)
            await dan.subscribe(ROOM)
            await eventually(lambda: ("+", "dan") in eve_told.events)

            cluster.kill(cluster.nodes.index(victim))
            killed = time.monotonic()
            for n in range(4, 9):  # published while the stream is down
                await publish(survivors[0], n)
            await read_ticks(8)  # it reconnected through nginx, to a survivor
            assert ticks == list(range(1, 9))  # exactly: nothing lost, nothing twice
            await publish(survivors[1], 9)
            await read_ticks(9)
            assert ticks == list(range(1, 10))

            await eventually(lambda: ("-", "dan") in eve_told.events, PRESENCE_TIMEOUT + 3)
            gone_after = time.monotonic() - killed
            print(f"dan left {gone_after:.2f} s after kill -9 (timeout {PRESENCE_TIMEOUT} s)")
            assert gone_after <= PRESENCE_TIMEOUT + 1.0  # polling and loaded CPUs: 1 s slack
            assert eve_told.events == [("+", "dan"), ("-", "dan")]
            assert "dan" not in eve_room.members
        for node in survivors:
            async with http.get(f"{node.url}/api/health") as response:
                assert response.status == 200
        async with http.get(f"{cluster.url}/api/rooms") as response:  # nginx skips the dead one
            assert response.status == 200
    finally:
        await stream.aclose()
