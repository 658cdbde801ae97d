"""A Panel developer's own app under ``panel serve``: the components let go when the tab closes.

The app below is what the README shows: components started with ``pn.state.onload`` and the
connection handed to ``on_session_end``. Nothing else stops them, so once the browser has gone
the dashboard server (a separate process's client) must see the app's SSE stream and Pusher
socket close within about a second, not when Bokeh reaps the session (15-30 s) or the process
dies (the bug this guards against: an SSE connection open until the process died).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import textwrap
import time

import aiohttp
from playwright.async_api import expect

from dashboard.core.user_tokens import issue_user_token
from tests.processes import free_port

LOAD = 30_000  # ms; the first page load compiles Panel's bundles
GONE_WITHIN = 4.0  # seconds: typically 0.2 s; headroom for a loaded 2-core CI machine, Bokeh alone takes 15-32 s

APP = textwrap.dedent(
    """
    import logging
    import os

    import panel as pn

    # What the test prints if the components do not let go: when the session ended, and why.
    log = logging.getLogger("dashboard")
    if not log.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.DEBUG)

    from dashboard.client import HubEventStream, UserConnection
    from dashboard.ui import ChatRoom, LiveFeed, StreamSource, on_session_end

    url = os.environ["DASHBOARD_URL"]
    source = StreamSource(HubEventStream(url, ["metrics"]))
    connection = UserConnection(url, os.environ["DASHBOARD_KEY"], os.environ["USER_TOKEN"])
    chat = ChatRoom(connection=connection, room="lobby", sizing_mode="stretch_width")
    pn.state.onload(source.start)
    pn.state.onload(chat.start)
    on_session_end(connection.aclose)  # the app owns its connection
    pn.Column(LiveFeed(source=source, height=200), chat).servable()
    """
)


@contextlib.asynccontextmanager
async def panel_serve(app_file, env: dict[str, str], log: list[str]):
    """``panel serve app_file`` until the block ends; what it prints goes to ``log``."""
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "panel", "serve", str(app_file), "--port", str(port),
        "--address", "127.0.0.1", "--allow-websocket-origin", f"127.0.0.1:{port}", "--liveness",
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    assert process.stdout is not None
    drain = asyncio.ensure_future(_keep(process.stdout, log))
    url = f"http://127.0.0.1:{port}/{app_file.stem}"
    try:
        deadline = time.monotonic() + 60
        async with aiohttp.ClientSession() as http:
            while True:
                assert process.returncode is None, "panel serve exited"
                with contextlib.suppress(aiohttp.ClientError):
                    async with http.get(f"http://127.0.0.1:{port}/liveness") as response:
                        if response.status == 200:
                            break
                assert time.monotonic() < deadline, "panel serve did not start within 60 s"
                await asyncio.sleep(0.3)
        yield url
    finally:
        if process.returncode is None:
            process.terminate()
        await asyncio.wait_for(process.wait(), 20)
        await asyncio.wait_for(drain, 5)


async def _keep(stream: asyncio.StreamReader, log: list[str]) -> None:
    while line := await stream.readline():
        log.append(line.decode(errors="replace"))


async def test_a_panel_serve_app_releases_its_stream_and_socket_when_the_tab_closes(
    browser, start_server, tmp_path
):
    server = await start_server()
    app_file = tmp_path / "my_app.py"
    app_file.write_text(APP)
    token = issue_user_token(server.ctx.app.secret, "ada", "Ada")
    env = {
        **os.environ,
        "DASHBOARD_URL": server.url,
        "DASHBOARD_KEY": server.ctx.app.key,
        "USER_TOKEN": token,
    }
    log: list[str] = []
    async with panel_serve(app_file, env, log) as url:
        tab = await browser.new_page()
        await tab.goto(url)
        await expect(tab.locator(".chat-notice").filter(has_text="You joined")).to_have_count(
            1, timeout=LOAD
        )
        await server.hub.publish("metrics", "cpu", {"service": "api", "value": 1})
        await expect(tab.locator(".live-feed-entry").first).to_be_attached(timeout=LOAD)
        assert len(server.ctx.streams) == 1 and len(server.ctx.pusher_sockets) == 1

        await tab.close()
        closed = time.monotonic()
        while server.ctx.streams or server.ctx.pusher_sockets:
            assert time.monotonic() - closed < GONE_WITHIN, (
                f"after {GONE_WITHIN} s: {len(server.ctx.streams)} SSE stream(s) and "
                f"{len(server.ctx.pusher_sockets)} socket(s) still open; panel serve printed:\n"
                + "".join(log[-40:])
            )
            await asyncio.sleep(0.05)
        print(f"\nreleased {time.monotonic() - closed:.2f} s after the tab closed")
