"""Cross-origin attacks in a real Chromium: what a foreign page can make the victim's browser do.

The victim is a real DashboardServer on 127.0.0.1; its browser context holds the victim's
cookies. Attacker pages come from a small aiohttp site of our own on other ports, loaded in
that same context, at two distances from the victim:

* same site, another port (``http://127.0.0.1:PORT``): SameSite=Lax cookies ARE sent along,
  so only the server's cross-origin protection stands in the way;
* another site (``http://localhost:PORT``): the cookies stay home as well.

Each attack is judged where it would land: the store, the victim's inbox and name as the
victim's own cookies see them, the AI provider's call count, and the server's access log (each
attempt must have been refused, 403). The very same script run from the victim's own origin
then succeeds, which shows every check here can fail.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import json
import logging
import socket
from collections import Counter
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

import aiohttp
import panel as pn
import pytest
from aiohttp import web

from dashboard.ai import DemoProvider
from dashboard.core.user_tokens import issue_user_token
from dashboard.server import DashboardServer
from tests.waiting import until

WAIT_MS = 10_000  # any one browser wait
PASSWORD = "correct horse battery staple"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# -- the attacker's site -----------------------------------------------------------------

# text/plain encodes a field as "name=value": this name and value make the body
# {"text":"csrf=ed"}, valid JSON that the messages route accepts (the classic trick).
CSRF_PAGE = """<!doctype html><title>attacker</title>
<form method="POST" enctype="text/plain" action="{action}">
<input name="{name}" value="{value}"></form>
<script>document.forms[0].submit()</script>"""


async def _attacker_page(request: web.Request) -> web.Response:
    return web.Response(text="<!doctype html><title>attacker</title>", content_type="text/html")


async def _csrf_page(request: web.Request) -> web.Response:
    page = CSRF_PAGE.format(
        action=html.escape(request.query["action"]),
        name=html.escape('{"text":"csrf'),
        value=html.escape('ed"}'),
    )
    return web.Response(text=page, content_type="text/html")


async def _frame_page(request: web.Request) -> web.Response:
    src = html.escape(request.query["src"])
    return web.Response(
        text=f'<!doctype html><iframe src="{src}"></iframe>', content_type="text/html"
    )


@contextlib.asynccontextmanager
async def attacker_site(ports: Sequence[int]) -> AsyncIterator[None]:
    """The attacker's pages, served on each of ``ports`` of 127.0.0.1."""
    app = web.Application()
    app.router.add_get("/", _attacker_page)
    app.router.add_get("/csrf", _csrf_page)
    app.router.add_get("/frame", _frame_page)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        for port in ports:
            await web.TCPSite(runner, "127.0.0.1", port).start()
        yield
    finally:
        await runner.cleanup()


# -- the victim --------------------------------------------------------------------------


class CountingProvider(DemoProvider):
    """The offline demo model, counting the answers it is asked for."""

    def __init__(self) -> None:
        super().__init__(delay=0)
        self.calls = 0

    def stream(self, messages: Any) -> Any:
        self.calls += 1
        return super().stream(messages)


class AccessLog(logging.Handler):
    """Tornado's access log of the server under test: ``(status, method, path)`` per request."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.entries: list[tuple[int, str, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        status, summary = record.args[0], record.args[1]  # "%d %s %.2fms" in Tornado
        method, uri = summary.split(" ")[:2]
        self.entries.append((status, method, uri.split("?")[0]))

    def since(self, mark: int) -> list[tuple[int, str, str]]:
        return self.entries[mark:]


@pytest.fixture
def access_log() -> Iterator[AccessLog]:
    logger = logging.getLogger("tornado.access")
    handler, level = AccessLog(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(level)


@contextlib.asynccontextmanager
async def victim_server(tmp_path, **options: Any) -> AsyncIterator[DashboardServer]:
    server = DashboardServer(
        port=0,
        store=tmp_path / "db.sqlite3",
        page=lambda: pn.pane.Markdown("victim"),
        **{"ai": CountingProvider(), **options},
    )
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


async def as_victim(context: Any, server: DashboardServer, path: str) -> Any:
    """GET ``path`` with the cookies the victim's browser holds now (a rename would have
    replaced its identity cookie)."""
    cookies = await context.cookies(server.url)
    header = "; ".join(f"{c['name']}={c['value']}" for c in cookies)
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{server.url}{path}", headers={"Cookie": header}) as response,
    ):
        assert response.status == 200, await response.text()
        return await response.json()


async def publish(server: DashboardServer, path: str, body: dict[str, Any]) -> Any:
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            f"{server.url}{path}", json=body, headers={"Authorization": f"Bearer {server.token}"}
        ) as response,
    ):
        assert response.status in (200, 201), await response.text()
        return await response.json()


async def log_in(page: Any, server: DashboardServer) -> list[str]:
    """Log in as ada through Panel's login form; the Set-Cookie values of its answer."""
    await page.goto(f"{server.url}/login")
    await page.fill("input[name=username]", "ada")
    await page.fill("input[name=password]", PASSWORD)
    async with page.expect_response(
        lambda r: r.request.method == "POST" and "/login" in r.url, timeout=WAIT_MS
    ) as answer:
        await page.click("button[type=submit]")
    headers = await (await answer.value).headers_array()
    cookies = [h["value"] for h in headers if h["name"].lower() == "set-cookie"]
    assert any(cookie.startswith("user=") for cookie in cookies), cookies
    return cookies


async def forge_form_post(page: Any, attacker: str, action: str) -> Any:
    """Load the attacker's auto-submitting form; the response to its POST."""
    async with page.expect_response(action, timeout=WAIT_MS) as answer:
        await page.goto(f"{attacker}/csrf?action={action}")
    return await answer.value


async def lobby(server: DashboardServer) -> list[str]:
    """The texts of the lobby's messages, as stored (deleted ones left out)."""
    assert server.ctx.chat is not None
    page = await server.ctx.chat.history("lobby")
    return [message.text for message in page.messages if not message.deleted]


# -- forged requests with the victim's cookies -------------------------------------------

FETCH_JSON = """async ([path, body]) => {
  const response = await fetch(path, {method: "POST", headers: {"Content-Type": "application/json"},
                                      body: JSON.stringify(body)});
  return {status: response.status, body: await response.json()};
}"""

# Everything a page might try with the victim's cookies. Run on an attacker's origin, every
# attempt must fail; run on the victim's own origin, every one succeeds (the control).
ATTACK = """async ({victim, notification, message, user, key}) => {
  const results = {};
  const attempt = async (name, run) => {
    try { results[name] = await run(); } catch (e) { results[name] = "blocked: " + e.name; }
  };
  const text = {"Content-Type": "text/plain"};
  const post = (path, body) =>
    fetch(victim + path, {method: "POST", credentials: "include", headers: text, body});
  const chat = JSON.stringify({messages: [{role: "user", content: "hi"}]});
  await attempt("post_message", async () =>
    (await post("/api/rooms/lobby/messages", JSON.stringify({text: "pwned"}))).status);
  await attempt("post_message_no_cors", async () => {
    await fetch(victim + "/api/rooms/lobby/messages", {method: "POST", mode: "no-cors",
      credentials: "include", headers: text, body: JSON.stringify({text: "pwned no-cors"})});
    return "sent";
  });
  await attempt("post_message_beacon", async () => navigator.sendBeacon(
    victim + "/api/rooms/lobby/messages", JSON.stringify({text: "pwned beacon"})));
  await attempt("read_one", async () =>
    (await post(`/api/notifications/${notification}/read`, "")).status);
  await attempt("read_all", async () => (await post("/api/notifications/read-all", "")).status);
  await attempt("rename", async () =>
    (await post("/api/identity", JSON.stringify({name: "Pwned"}))).status);
  await attempt("ai_chat", async () => (await post("/api/chat", chat)).status);
  await attempt("edit_message", async () => (await fetch(
    victim + `/api/rooms/lobby/messages/${message}`, {method: "PATCH", credentials: "include",
    headers: {"Content-Type": "application/json"}, body: JSON.stringify({text: "pwned"})})).status);
  await attempt("delete_message", async () => (await fetch(
    victim + `/api/rooms/lobby/messages/${message}`,
    {method: "DELETE", credentials: "include"})).status);
  await attempt("read_inbox", async () =>
    (await fetch(victim + "/api/notifications", {credentials: "include"})).status);
  await attempt("inbox_stream", () => new Promise((resolve) => {
    const source = new EventSource(victim + `/api/events?channel=private-user-${user}`,
                                   {withCredentials: true});
    source.onopen = () => { source.close(); resolve("open"); };
    source.onerror = () => { const state = source.readyState; source.close();
                             resolve("error, readyState " + state); };
    setTimeout(() => { source.close(); resolve("timeout"); }, 5000);
  }));
  await attempt("pusher_socket", () => new Promise((resolve) => {
    const socket = new WebSocket(victim.replace("http:", "ws:") + `/app/${key}?protocol=7`);
    socket.onopen = () => { socket.close(); resolve("open"); };
    socket.onclose = () => resolve("closed");
    setTimeout(() => resolve("timeout"), 5000);
  }));
  return results;
}"""

REFUSED = {
    "post_message": "blocked: TypeError",  # the 403 carries no CORS headers either
    "post_message_no_cors": "sent",  # opaque: the page never learns the answer
    "post_message_beacon": True,  # queued; the browser sends it on its own
    "read_one": "blocked: TypeError",
    "read_all": "blocked: TypeError",
    "rename": "blocked: TypeError",
    "ai_chat": "blocked: TypeError",
    "edit_message": "blocked: TypeError",  # the preflight is refused: never sent
    "delete_message": "blocked: TypeError",
    "read_inbox": "blocked: TypeError",  # CORS: the answer is not the page's to read
    "inbox_stream": "error, readyState 2",
    "pusher_socket": "closed",
}

ALLOWED = {
    "post_message": 201,
    "post_message_no_cors": "sent",
    "post_message_beacon": True,
    "read_one": 200,
    "read_all": 200,
    "rename": 200,
    "ai_chat": 200,
    "edit_message": 200,
    "delete_message": 200,
    "read_inbox": 200,
    "inbox_stream": "open",
    "pusher_socket": "open",
}

SITES = {
    "same-site": lambda port: f"http://127.0.0.1:{port}",
    "cross-site": lambda port: f"http://localhost:{port}",
}


@pytest.mark.parametrize("site", SITES)
async def test_a_foreign_page_cannot_act_with_the_victims_cookies(
    browser, tmp_path, access_log, site
):
    attacker_port = free_port()
    attacker = SITES[site](attacker_port)
    async with attacker_site([attacker_port]), victim_server(tmp_path) as server:
        context = await browser.new_context()
        page = await context.new_page()
        # The victim picks a name on the dashboard's own origin, has a notification, a message.
        await page.goto(f"{server.url}/api/health")
        named = await page.evaluate(FETCH_JSON, ["/api/identity", {"name": "Victim"}])
        user = named["body"]["user_id"]
        notification = await publish(
            server, "/api/notifications", {"user": user, "title": "For the victim only"}
        )
        mine = await page.evaluate(FETCH_JSON, ["/api/rooms/lobby/messages", {"text": "mine"}])
        assert mine["status"] == 201
        targets = {
            "victim": server.url,
            "notification": notification["id"],
            "message": mine["body"]["id"],
            "user": user,
            "key": server.ctx.app.key,
        }

        mark = len(access_log.entries)
        await page.goto(f"{attacker}/")
        results = await asyncio.wait_for(page.evaluate(ATTACK, targets), 30)
        assert results == REFUSED
        # The classic CSRF: a top-level form POST, which no CORS rule stops from being sent.
        response = await forge_form_post(page, attacker, f"{server.url}/api/rooms/lobby/messages")
        assert response.status == 403
        assert json.loads(await response.text())["error"] == "forbidden_origin"
        # Same site: the browser DID send the cookie; only the origin check refused it.
        sent_cookie = "cookie" in await response.request.all_headers()
        assert sent_cookie is (site == "same-site")

        # The beacon goes out on the browser's schedule; wait until all four posts were refused.
        posts = ("POST", "/api/rooms/lobby/messages")
        await until(lambda: sum(e[1:] == posts for e in access_log.since(mark)) >= 4, 10)
        api = [e for e in access_log.since(mark) if e[2].startswith(("/api/", "/app/"))]
        # Each attempt reached the server and was refused there as coming from a foreign
        # origin (403), not merely for lack of a cookie; preflights included.
        message = f"/api/rooms/lobby/messages/{targets['message']}"
        refusals = Counter(entry[1:] for entry in api if entry[0] == 403)
        assert refusals >= Counter(
            {
                posts: 4,
                ("POST", f"/api/notifications/{targets['notification']}/read"): 1,
                ("POST", "/api/notifications/read-all"): 1,
                ("POST", "/api/identity"): 1,
                ("POST", "/api/chat"): 1,
                ("OPTIONS", message): 2,
                ("GET", "/api/events"): 1,
                ("GET", f"/app/{server.ctx.app.key}"): 1,
            }
        ), refusals
        answered = [entry for entry in api if entry[0] != 403]
        # Only the inbox GET was answered (CORS kept the answer from the page, see above).
        assert {entry[1:] for entry in answered} <= {("GET", "/api/notifications")}, answered
        assert await lobby(server) == ["mine"]
        inbox = await as_victim(context, server, "/api/notifications")
        assert inbox["unread_count"] == 1 and not inbox["notifications"][0]["read"]
        assert (await as_victim(context, server, "/api/identity"))["name"] == "Victim"
        assert server.ctx.ai.calls == 0

        # The control: the same script on the victim's own origin does it all.
        await page.goto(f"{server.url}/api/health")
        results = await asyncio.wait_for(page.evaluate(ATTACK, targets), 30)
        assert results == ALLOWED
        beaconed = {"pwned", "pwned no-cors", "pwned beacon"}
        for _ in range(100):  # the beacon goes out on the browser's schedule
            if set(await lobby(server)) >= beaconed:
                break
            await asyncio.sleep(0.05)
        assert sorted(await lobby(server)) == sorted(beaconed)  # "mine": edited, then deleted
        inbox = await as_victim(context, server, "/api/notifications")
        assert inbox["unread_count"] == 0
        assert (await as_victim(context, server, "/api/identity"))["name"] == "Pwned"
        assert server.ctx.ai.calls == 1
        await context.close()


async def test_a_cross_site_form_cannot_post_as_a_logged_in_user(browser, tmp_path):
    same_site, cross_site = free_port(), free_port()
    async with (
        attacker_site([same_site, cross_site]),
        victim_server(tmp_path, basic_auth=PASSWORD) as server,
    ):
        context = await browser.new_context()
        page = await context.new_page()
        await log_in(page, server)
        # The login is what the API sees (the control: this post must be stored).
        await page.goto(f"{server.url}/api/health")
        mine = await page.evaluate(FETCH_JSON, ["/api/rooms/lobby/messages", {"text": "mine"}])
        assert mine["status"] == 201 and mine["body"]["user_id"] == "ada"

        action = f"{server.url}/api/rooms/lobby/messages"
        for attacker in (f"http://localhost:{cross_site}", f"http://127.0.0.1:{same_site}"):
            response = await forge_form_post(page, attacker, action)
            assert response.status == 403, attacker
            assert json.loads(await response.text())["error"] == "forbidden_origin"
        assert await lobby(server) == ["mine"]
        await context.close()


async def test_panel_login_cookies_are_samesite_lax(browser, tmp_path):
    # Tornado appends cookies after the output transforms ran; headers.py once missed them.
    cross_site = free_port()
    async with attacker_site([cross_site]), victim_server(tmp_path, basic_auth=PASSWORD) as server:
        context = await browser.new_context()
        page = await context.new_page()
        cookies = await log_in(page, server)
        # (context.cookies() cannot tell: Playwright reports an unset SameSite as "Lax".)
        without = [c for c in cookies if "samesite=lax" not in c.lower().replace(" ", "")]
        # A cross-site form POST must leave the login cookie behind (the second layer under
        # the origin check, which test_a_cross_site_form_cannot_post_as_a_logged_in_user
        # shows refusing it).
        action = f"{server.url}/api/rooms/lobby/messages"
        response = await forge_form_post(page, f"http://localhost:{cross_site}", action)
        sent = (await response.request.all_headers()).get("cookie", "")
        await context.close()
        assert without == [], f"Set-Cookie without SameSite=Lax: {without}"
        assert "user=" not in sent, f"cross-site POST carried the login cookie: {sent[:60]}"


# -- what an allowlisted origin may do, and nobody else ----------------------------------

OPEN_STREAM = """async ([url]) => {
  window.ticks = [];
  const source = new EventSource(url, {withCredentials: true});
  window.source = source;
  source.addEventListener("tick", (e) => window.ticks.push(JSON.parse(e.data).data.n));
  return await new Promise((resolve) => {
    source.onopen = () => resolve(source.readyState);
    source.onerror = () => resolve("error, readyState " + source.readyState);
    setTimeout(() => resolve("timeout"), 10000);
  });
}"""

# Reads an SSE response through fetch: the only way a page can send Authorization or its own
# Last-Event-ID, both of which need the preflight to pass.
RESUME = """async ([url, token, lastEventId, wanted]) => {
  let response;
  try {
    response = await fetch(url, {headers: {"Authorization": "Bearer " + token,
                                           "Last-Event-ID": lastEventId}});
  } catch (e) { return "blocked: " + e.name; }
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  const events = [];
  let buffer = "";
  const timeout = new Promise((resolve) => setTimeout(() => resolve({done: true}), 10000));
  while (events.filter((e) => e.event === "tick").length < wanted) {
    const {value, done} = await Promise.race([reader.read(), timeout]);
    if (done) break;
    buffer += decoder.decode(value, {stream: true});
    let end;
    while ((end = buffer.indexOf("\\n\\n")) >= 0) {
      const event = {event: "message", id: null, data: []};
      for (const line of buffer.slice(0, end).split("\\n")) {
        const colon = line.indexOf(":");
        const field = line.slice(0, colon), value = line.slice(colon + 1).replace(/^ /, "");
        if (field === "event") event.event = value;
        else if (field === "id") event.id = value;
        else if (field === "data") event.data.push(value);
      }
      buffer = buffer.slice(end + 2);
      events.push({...event, data: event.data.join("\\n")});
    }
  }
  await reader.cancel();
  return {status: response.status, events: events.filter((e) => e.event === "tick")
    .map((e) => ({id: e.id, n: JSON.parse(e.data).data.n}))};
}"""


async def test_only_an_allowlisted_origin_reads_streams_across_origins(
    browser, tmp_path, access_log
):
    allowed, other = free_port(), free_port()
    async with (
        attacker_site([allowed, other]),
        victim_server(tmp_path, websocket_origins=[f"127.0.0.1:{allowed}"]) as server,
    ):
        token = issue_user_token(server.ctx.app.secret, "ada", "Ada")
        context = await browser.new_context()
        page = await context.new_page()
        await page.goto(f"http://127.0.0.1:{allowed}/")

        # (i) EventSource with credentials: open, and live events arrive.
        state = await page.evaluate(OPEN_STREAM, [f"{server.url}/api/events?channel=metrics"])
        assert state == 1  # OPEN
        await publish(server, "/api/publish", {"channel": "metrics", "event": "tick", "data": {"n": 1}})  # fmt: skip
        await page.wait_for_function("window.ticks.length === 1", timeout=WAIT_MS)
        assert await page.evaluate("window.ticks") == [1]
        await page.evaluate("window.source.close()")

        # (ii) fetch with a user token and Last-Event-ID: resumes exactly after that id.
        channel = "private-user-ada"
        ids = [
            (await publish(server, "/api/publish", {"channel": channel, "event": "tick", "data": {"n": n}}))["id"]
            for n in (1, 2, 3)
        ]  # fmt: skip
        mark = len(access_log.entries)
        url = f"{server.url}/api/events?channel={channel}"
        resumed = await asyncio.wait_for(page.evaluate(RESUME, [url, token, ids[0], 2]), 20)
        assert resumed == {
            "status": 200,
            "events": [{"id": ids[1], "n": 2}, {"id": ids[2], "n": 3}],
        }
        assert (204, "OPTIONS", "/api/events") in access_log.since(mark)

        # Another port of the same host is not on the allowlist: both are refused.
        # (Tornado logs a stream when it ends, after the server has let go of it: let both
        # streams above end, and be logged, before the mark.)
        streamed = (200, "GET", "/api/events")
        await until(
            lambda: not server.ctx.streams and access_log.entries.count(streamed) >= 2,
            timeout=10,
        )
        mark = len(access_log.entries)
        await page.goto(f"http://127.0.0.1:{other}/")
        state = await page.evaluate(OPEN_STREAM, [f"{server.url}/api/events?channel=metrics"])
        assert state == "error, readyState 2"  # CLOSED: EventSource does not retry a 403
        refused = await asyncio.wait_for(page.evaluate(RESUME, [url, token, ids[0], 2]), 20)
        assert refused == "blocked: TypeError"
        log = access_log.since(mark)
        assert (403, "GET", "/api/events") in log and (403, "OPTIONS", "/api/events") in log
        assert not [entry for entry in log if entry[0] < 400]
        await context.close()


# -- framing ------------------------------------------------------------------------------


async def test_another_site_cannot_frame_the_page(browser, tmp_path):
    attacker_port = free_port()
    async with attacker_site([attacker_port]), victim_server(tmp_path) as server:
        page = await browser.new_page()
        refusals: list[str] = []
        page.on("console", lambda message: refusals.append(message.text))

        # The control: the dashboard may frame itself, and "victim" shows up in the frame.
        await page.goto(f"{server.url}/api/health")
        await page.evaluate(
            """() => { const frame = document.createElement("iframe");
                       frame.src = "/"; document.body.appendChild(frame); }"""
        )
        await until(lambda: len(page.frames) == 2, 5)
        await page.frames[1].get_by_text("victim").wait_for(timeout=20_000)

        await page.goto(f"http://localhost:{attacker_port}/frame?src={server.url}/")
        await until(lambda: any("frame-ancestors" in text for text in refusals), 10)
        refusal = next(text for text in refusals if "frame-ancestors" in text)
        assert "frame-ancestors 'self'" in refusal and "blocked" in refusal
        (frame,) = page.frames[1:]
        # The refusal is reported before the frame commits Chromium's error page in its place.
        await until(lambda: frame.url.startswith("chrome-error://"), 10)
        assert "victim" not in await frame.content()
