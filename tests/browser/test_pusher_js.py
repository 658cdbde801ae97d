"""The official ``pusher-js`` client, unmodified, in headless Chromium against a real server.

pusher-js 8 (pinned in ``package.json``, installed by ``npm ci`` from ``make test``) is the
judge of our Pusher Channels protocol 7: it connects to ``/app/{key}``, authorises private and
presence channels through ``/pusher/auth`` with the page's own identity cookie, signs in
through ``/pusher/user-auth``, and receives what the official ``pusher`` PyPI SDK publishes.
Presence is checked from both ends at once: pusher-js and our Python ``PusherClient``.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pusher
import pytest

from dashboard.client import PusherClient, local_authorizer
from dashboard.server import DashboardServer
from tests.conftest import skip_or_fail

REPO = Path(__file__).resolve().parents[2]
PUSHER_JS = REPO / "node_modules" / "pusher-js" / "dist" / "web" / "pusher.min.js"
# Not the defaults: the page must really use the key it is given, and the SDK the secret.
APP_ID, KEY, SECRET = "7", "browser-key", "browser-secret-0123456789"
WAIT_MS = 10_000

# Everything the page's pusher-js sees is recorded on `window`, for the test to poll:
# `received` every channel event (bind_global), `messages` every frame on the connection,
# `errors` the connection's error events.
CONNECT = """
([key, port]) => {
  window.received = [];
  window.messages = [];
  window.errors = [];
  const pusher = new Pusher(key, {
    cluster: "mt1",
    wsHost: "127.0.0.1",
    wsPort: port,
    forceTLS: false,
    enabledTransports: ["ws"],
    disableStats: true,
    channelAuthorization: {endpoint: "/pusher/auth", transport: "ajax"},
    userAuthentication: {endpoint: "/pusher/user-auth", transport: "ajax"},
  });
  pusher.connection.bind("message", (message) => window.messages.push(message));
  pusher.connection.bind("error", (error) => window.errors.push(error));
  window.pusher = pusher;
  window.listen = (name) => {
    const channel = pusher.subscribe(name);
    // A presence channel's subscription_succeeded carries its Members object: not data.
    channel.bind_global((event, data) => window.received.push(
      {channel: name, event, data: event === "pusher:subscription_succeeded" ? null : data}
    ));
  };
}
"""


@pytest.fixture
def pusher_js() -> Path:
    if not PUSHER_JS.exists():
        skip_or_fail(f"pusher-js is not installed at {PUSHER_JS} (run make test, or npm ci)")
    return PUSHER_JS


@pytest.fixture
async def server():
    srv = DashboardServer(
        port=0,
        app_id=APP_ID,
        app_key=KEY,
        app_secret=SECRET,
        channel_rules=["private-orders=*", "presence-room=*"],  # beyond the built-in rules
    )
    await srv.start()
    yield srv
    await srv.stop()


@pytest.fixture
def sdk(server) -> pusher.Pusher:
    app = server.ctx.app
    return pusher.Pusher(
        app_id=app.app_id,
        key=app.key,
        secret=app.secret,
        host="127.0.0.1",
        port=server.port,
        ssl=False,
    )


async def call(method, *args, **kwargs):
    """Run a blocking SDK call off the event loop, which the server needs."""
    return await asyncio.to_thread(method, *args, **kwargs)


async def identify(context, server, name: str) -> str:
    """Pick a display name as a visitor does: the ``dashboard_user`` cookie lands in ``context``."""
    response = await context.request.post(f"{server.url}/api/identity", data={"name": name})
    assert response.status == 200, await response.text()
    return (await response.json())["user_id"]


async def open_pusher(context, server, pusher_js: Path):
    """A page of the server's own origin running pusher-js, connected."""
    page = await context.new_page()
    await page.goto(f"{server.url}/api/health")  # same origin: the socket's Origin is allowed
    await page.add_script_tag(path=str(pusher_js))
    await page.evaluate(CONNECT, [server.ctx.app.key, server.port])
    await page.wait_for_function("window.pusher.connection.state === 'connected'", timeout=WAIT_MS)
    return page


async def subscribe(page, channel: str, outcome: str = "pusher:subscription_succeeded") -> Any:
    await page.evaluate("(name) => window.listen(name)", channel)
    return await wait_for_event(page, channel, outcome)


async def wait_for_event(page, channel: str, event: str) -> Any:
    """The data of the first ``event`` pusher-js received on ``channel``."""
    handle = await page.wait_for_function(
        "([c, e]) => window.received.find((r) => r.channel === c && r.event === e)",
        arg=[channel, event],
        timeout=WAIT_MS,
    )
    return (await handle.json_value())["data"]


async def received(page, channel: str) -> list[tuple[str, Any]]:
    """``(event, data)`` of everything but pusher: notices pusher-js got on ``channel``."""
    entries = await page.evaluate("(c) => window.received.filter((r) => r.channel === c)", channel)
    return [(r["event"], r["data"]) for r in entries if not r["event"].startswith("pusher:")]


async def eventually(check, timeout: float = WAIT_MS / 1000) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def test_sdk_trigger_and_batch_reach_pusher_js(browser, server, sdk, pusher_js):
    context = await browser.new_context()
    page = await open_pusher(context, server, pusher_js)
    await subscribe(page, "metrics")
    await subscribe(page, "alerts")

    payload = {"service": "api", "value": 41.5, "tags": ["a", None, True], "emoji": "🚀 <b>"}
    await call(sdk.trigger, "metrics", "cpu", payload)
    assert await wait_for_event(page, "metrics", "cpu") == payload

    # socket_id excludes that connection (the order of the two triggers proves it skipped).
    socket_id = await page.evaluate("window.pusher.connection.socket_id")
    await call(sdk.trigger, ["metrics"], "cpu", {"value": -1}, socket_id)
    await call(sdk.trigger, ["metrics", "alerts"], "text", "plain, not JSON")
    await wait_for_event(page, "alerts", "text")
    await call(
        sdk.trigger_batch,
        [
            {"channel": "metrics", "name": "cpu", "data": {"value": 2}},
            {"channel": "alerts", "name": "alert", "data": {"severity": "warning"}},
            {"channel": "metrics", "name": "cpu", "data": {"value": 3}},
        ],
    )
    await page.wait_for_function(
        "window.received.filter((r) => r.event === 'cpu').length >= 3", timeout=WAIT_MS
    )
    await wait_for_event(page, "alerts", "alert")
    assert await received(page, "metrics") == [
        ("cpu", payload),
        ("text", "plain, not JSON"),
        ("cpu", {"value": 2}),
        ("cpu", {"value": 3}),
    ]
    assert await received(page, "alerts") == [
        ("text", "plain, not JSON"),
        ("alert", {"severity": "warning"}),
    ]
    assert await page.evaluate("window.errors") == []
    await context.close()


async def test_private_channels_authorise_the_page_user_only(browser, server, sdk, pusher_js):
    ada = await browser.new_context()
    ada_id = await identify(ada, server, "Ada")
    page = await open_pusher(ada, server, pusher_js)
    await subscribe(page, "private-orders")
    await subscribe(page, f"private-user-{ada_id}")
    await call(sdk.trigger, ["private-orders", f"private-user-{ada_id}"], "new", {"id": 1})
    assert await wait_for_event(page, "private-orders", "new") == {"id": 1}
    assert await wait_for_event(page, f"private-user-{ada_id}", "new") == {"id": 1}

    # Someone else's per-user channel: /pusher/auth refuses, pusher-js reports it.
    refused = await subscribe(page, "private-user-bob", "pusher:subscription_error")
    assert refused["type"] == "AuthError" and refused["status"] == 403

    # A visitor who never picked a name gets no signature at all.
    anonymous = await browser.new_context()
    stranger = await open_pusher(anonymous, server, pusher_js)
    refused = await subscribe(stranger, "private-orders", "pusher:subscription_error")
    assert refused["type"] == "AuthError" and refused["status"] == 401
    # Sending pusher:subscribe anyway, with a made-up signature, the server itself refuses.
    await stranger.evaluate(
        """(key) => window.pusher.send_event("pusher:subscribe",
             {channel: "private-orders", auth: key + ":" + "0".repeat(64)})""",
        server.ctx.app.key,
    )
    forged = await stranger.wait_for_function(
        """() => window.messages.find(
          (m) => m.event === "pusher:subscription_error" && m.channel === "private-orders")""",
        timeout=WAIT_MS,
    )
    assert (await forged.json_value())["data"]["status"] == 401
    await call(sdk.trigger, "private-orders", "new", {"id": 2})
    await page.wait_for_function(
        "window.received.filter((r) => r.event === 'new').length === 3", timeout=WAIT_MS
    )
    assert await received(stranger, "private-orders") == []
    assert await stranger.evaluate("window.pusher.connection.state") == "connected"
    await anonymous.close()
    await ada.close()


async def test_presence_between_pusher_js_and_python_client(browser, server, pusher_js):
    app = server.ctx.app
    context = await browser.new_context()
    ada_id = await identify(context, server, "Ada")
    page = await open_pusher(context, server, pusher_js)
    await page.evaluate(
        """() => {
          window.hellos = [];
          window.listen("presence-room");  // the same task: nothing can arrive in between
          window.pusher.channel("presence-room").bind(
            "client-hello", (data, meta) => window.hellos.push({data, meta}));
        }"""
    )
    await wait_for_event(page, "presence-room", "pusher:subscription_succeeded")

    authorizer = local_authorizer(app.key, app.secret, user_id="bob", user_info={"name": "Bob"})
    async with PusherClient(f"127.0.0.1:{server.port}", app.key, authorizer=authorizer) as bob:
        room = await bob.subscribe("presence-room")
        assert room.members == {ada_id: {"name": "Ada"}, "bob": {"name": "Bob"}}
        assert room.me == "bob"

        added = await wait_for_event(page, "presence-room", "pusher:member_added")
        assert added == {"id": "bob", "info": {"name": "Bob"}}
        members = await page.evaluate(
            """() => {
              const members = window.pusher.channel("presence-room").members;
              const all = {};
              members.each((member) => { all[member.id] = member.info; });
              return {all, count: members.count, me: members.me};
            }"""
        )
        assert members == {
            "all": {ada_id: {"name": "Ada"}, "bob": {"name": "Bob"}},
            "count": 2,
            "me": {"id": ada_id, "info": {"name": "Ada"}},
        }

        # A client event from the page reaches Bob, marked with Ada's user id...
        heard = []
        room.bind("client-hello", heard.append)
        sent = await page.evaluate(
            "window.pusher.channel('presence-room').trigger('client-hello', {text: 'hi Bob'})"
        )
        assert sent is True
        await eventually(lambda: heard)
        assert (heard[0].data, heard[0].user_id) == ({"text": "hi Bob"}, ada_id)

        # ...and Bob's answer reaches the page. Ada's own event, had it been echoed, would
        # have arrived before the answer, so one hello here means it was not.
        await room.trigger("client-hello", {"text": "hi Ada"})
        await page.wait_for_function("window.hellos.length >= 1", timeout=WAIT_MS)
        assert await page.evaluate("window.hellos") == [
            {"data": {"text": "hi Ada"}, "meta": {"user_id": "bob"}}
        ]
        assert len(heard) == 1  # nor is Bob's own event echoed to Bob

        await page.close()
        await eventually(lambda: ada_id not in room.members)
        assert room.members == {"bob": {"name": "Bob"}}
    await context.close()


async def test_signin_through_user_auth(browser, server, pusher_js):
    context = await browser.new_context()
    ada_id = await identify(context, server, "Ada")
    page = await open_pusher(context, server, pusher_js)
    await page.evaluate("window.pusher.signin()")
    await page.wait_for_function("window.pusher.user.user_data !== null", timeout=WAIT_MS)
    assert await page.evaluate("window.pusher.user.user_data") == {
        "id": ada_id,
        "user_info": {"name": "Ada"},
    }
    # Signed in, pusher-js subscribes to its server-to-user channel: that must succeed too,
    # without a connection error (it used to be refused as a bad channel name).
    own = f"#server-to-user-{ada_id}"
    await page.wait_for_function(
        """(own) => window.messages.find(
          (m) => m.event === "pusher_internal:subscription_succeeded" && m.channel === own)""",
        arg=own,
        timeout=WAIT_MS,
    )
    events = await page.evaluate("window.messages.map((m) => [m.event, m.channel ?? null])")
    assert events[-2:] == [
        ["pusher:signin_success", None],
        ["pusher_internal:subscription_succeeded", own],
    ]
    assert await page.evaluate("window.errors") == []

    # Without an identity, /pusher/user-auth refuses and pusher-js says why.
    anonymous = await browser.new_context()
    stranger = await open_pusher(anonymous, server, pusher_js)
    await stranger.evaluate(
        """() => {
          window.signinErrors = [];
          window.pusher.user.bind("pusher:signin_error", (e) => window.signinErrors.push(e));
          window.pusher.signin();
        }"""
    )
    await stranger.wait_for_function("window.signinErrors.length === 1", timeout=WAIT_MS)
    error = (await stranger.evaluate("window.signinErrors"))[0]
    assert error["type"] == "AuthError" and error["status"] == 401
    assert await stranger.evaluate("window.pusher.user.user_data") is None
    # Nor may it listen to Ada's server-to-user channel (pusher-js itself never tries).
    await stranger.evaluate(
        "(own) => window.pusher.send_event('pusher:subscribe', {channel: own})", own
    )
    refused = await stranger.wait_for_function(
        """(own) => window.messages.find(
          (m) => m.event === "pusher:subscription_error" && m.channel === own)""",
        arg=own,
        timeout=WAIT_MS,
    )
    assert (await refused.json_value())["data"]["status"] == 403
    await anonymous.close()
    await context.close()
