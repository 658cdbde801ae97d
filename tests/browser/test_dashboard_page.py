"""The served dashboard in headless Chromium: it renders offline, connects, and stays live."""

from __future__ import annotations

import asyncio
import socket
import sys

from tests.browser.conftest import BROWSER_TOKEN, requests_elsewhere


async def test_dashboard_renders_offline_and_updates_live(browser, served_dashboard):
    page = await browser.new_page(viewport={"width": 1400, "height": 900})
    external = requests_elsewhere(page, served_dashboard)
    await page.goto(f"{served_dashboard}/")

    badge = page.locator(".connection-status")
    await badge.first.wait_for(timeout=30_000)
    entries = page.locator(".live-feed-entry")
    await entries.first.wait_for(timeout=30_000)
    assert "Connected" in await badge.first.inner_text()

    first = await entries.first.inner_text()
    count = await entries.count()
    # Panel renders into shadow roots, which locators pierce (document.querySelector does not).
    for _ in range(150):
        if await entries.first.inner_text() != first:
            break
        await asyncio.sleep(0.1)
    assert await entries.first.inner_text() != first, "the feed did not change in 15 s"
    assert await entries.count() >= count >= 1
    assert external == []  # no CDN: everything the page loads comes from the server itself


async def test_published_event_appears_in_the_feed(browser, served_dashboard):
    page = await browser.new_page()
    await page.goto(f"{served_dashboard}/")
    await page.locator(".live-feed-entry").first.wait_for(timeout=30_000)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "dashboard", "publish", "alerts", "alert",
        '{"severity": "critical", "service": "api", "message": "<b>boom</b> 🚀"}',
        "--url", served_dashboard, "--token", BROWSER_TOKEN,
    )  # fmt: skip
    assert await asyncio.wait_for(process.wait(), 30) == 0
    entry = page.locator(".live-feed-entry", has_text="boom")
    await entry.first.wait_for(timeout=15_000)
    text = await entry.first.inner_text()
    assert "<b>boom</b> 🚀" in text  # shown as text: never interpreted as HTML
    assert await page.locator(".live-feed-entry b").count() == 0


async def test_serve_with_feed_shows_an_external_sse_source(browser):
    """`dashboard serve --feed URL` subscribes to another server's stream instead of the demo."""
    from dashboard.server import DashboardServer

    upstream = DashboardServer(port=0, token="upstream-token-0123456")
    await upstream.start()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    feed = f"{upstream.url}/api/events?channel=alerts"
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "dashboard", "serve", "--port", str(port), "--feed", feed,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    try:
        while not (await asyncio.wait_for(process.stdout.readline(), 60)).startswith(b"Dashboard:"):
            pass
        page = await browser.new_page()
        await page.goto(f"http://127.0.0.1:{port}/")
        badge = page.locator(".connection-status")
        await badge.first.wait_for(timeout=30_000)
        for _ in range(100):
            if "Connected" in await badge.first.inner_text():
                break
            await asyncio.sleep(0.1)
        assert "Connected" in await badge.first.inner_text()
        await upstream.hub.publish("alerts", "alert", {"message": "from upstream 42"})
        entry = page.locator(".live-feed-entry", has_text="from upstream 42")
        await entry.first.wait_for(timeout=15_000)
        assert await page.locator(".live-feed-entry", has_text="cpu").count() == 0  # no demo
    finally:
        process.terminate()
        await asyncio.wait_for(process.wait(), 20)
        await upstream.stop()
