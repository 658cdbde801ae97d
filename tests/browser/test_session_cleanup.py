"""A closed tab lets go of its server side at once, not when Bokeh reaps the session.

Bokeh destroys an unused session only after ``unused_session_lifetime`` (15 s, checked every
17 s): until then a closed tab's stream subscription, presence and render callbacks would live
on. The page watches the session's connection count instead (``when_browser_leaves``).
"""

from __future__ import annotations

import asyncio
import time

from playwright.async_api import expect

from dashboard.app import create_dashboard, session_viewer
from dashboard.hub import HubStream
from dashboard.server import DashboardServer

CHANNELS = ("metrics", "alerts")
LOAD = 30_000  # ms; the first page load compiles Panel's bundles
GONE_WITHIN = 4.0  # seconds: typically 0.2 s; headroom for a loaded 2-core CI machine, Bokeh alone takes 15-32 s


async def test_closing_the_tab_stops_its_stream_and_team_within_two_seconds(browser, start_server):
    pages = []

    def page():
        template = create_dashboard(HubStream(server.hub, CHANNELS), viewer=session_viewer(server))
        pages.append(template)
        return template

    server: DashboardServer = await start_server(page=page)
    baseline = server.hub.stats().subscribers
    stop = asyncio.Event()

    async def publish() -> None:
        value = 0
        while not stop.is_set():
            value += 1
            await server.hub.publish("metrics", "cpu", {"service": "api", "value": value})
            await asyncio.sleep(0.05)

    publisher = asyncio.create_task(publish())
    try:
        tab = await browser.new_page()
        await tab.goto(f"{server.url}/")
        await expect(tab.locator(".live-feed-entry").first).to_be_attached(timeout=LOAD)
        await expect(tab.locator(".chat-notice").filter(has_text="You joined")).to_have_count(
            1, timeout=LOAD
        )
        (dashboard,) = pages
        source = dashboard.source
        assert source.running
        assert server.hub.stats().subscribers > baseline  # the stream, the team's socket

        await tab.close()
        closed = time.monotonic()
        while source.running or server.hub.stats().subscribers > baseline:
            assert time.monotonic() - closed < GONE_WITHIN, (
                f"after {GONE_WITHIN} s: source running={source.running}, "
                f"subscribers {server.hub.stats().subscribers} (baseline {baseline})"
            )
            await asyncio.sleep(0.05)
        released = time.monotonic() - closed
        # Nothing reaches the page's components any more, though events keep coming.
        received = source.events_received
        await asyncio.sleep(0.5)
        assert source.events_received == received
        print(f"\nthe closed tab's stream and team were released after {released:.2f} s")
    finally:
        stop.set()
        await publisher
