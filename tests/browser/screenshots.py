"""Take the README's screenshots of a real ``dashboard serve`` in headless Chromium.

    python -m tests.browser.screenshots          # writes docs/screenshot.png, docs/screenshot-phone.png

Two visitors, Ada and Grace, on a fresh database with the demo feed: Grace says something in
the team chat, Ada asks the AI chat a question and gets a notification; then Ada's desktop
(1440 x 1250) and phone (390 x 844, mobile emulation) are photographed.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from pathlib import Path

import aiohttp
from playwright.async_api import BrowserContext, Page, async_playwright

from tests.browser.conftest import BROWSER_TOKEN, CHROMIUM, CHROMIUM_ARGS
from tests.processes import ROOT, dashboard_process

DOCS = ROOT / "docs"
TIMEOUT = 60_000  # ms


async def visit(context: BrowserContext, url: str, name: str) -> Page:
    answer = await context.request.post(f"{url}/api/identity", data={"name": name})
    assert answer.ok, await answer.text()
    page = await context.new_page()
    await page.goto(f"{url}/")
    await page.locator(".live-feed-entry").first.wait_for(timeout=TIMEOUT)
    await page.locator(".chat-notice, .chat-message").first.wait_for(timeout=TIMEOUT)
    return page


async def main() -> None:
    with tempfile.TemporaryDirectory() as scratch:
        env = {"DASHBOARD_TOKEN": BROWSER_TOKEN, "DASHBOARD_DB": str(Path(scratch) / "db.sqlite3")}
        for key in [key for key in os.environ if key.startswith("OPENAI_")]:
            del os.environ[key]  # the offline demo model, labelled DEMO
        async with dashboard_process(env=env) as served, async_playwright() as playwright:
            url = served.url
            browser = await playwright.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
            )
            desktop = await browser.new_context(viewport={"width": 1440, "height": 1250})
            grace = await browser.new_context(viewport={"width": 1280, "height": 800})
            ada = await visit(desktop, url, "Ada Lovelace")
            other = await visit(grace, url, "Grace Hopper")
            box = other.get_by_placeholder("Message #lobby")
            await box.fill("Deploy of api 2.4 looks good, latency is back under 100 ms")
            await box.press("Enter")
            question = ada.locator("textarea").first
            await question.fill("What is this dashboard doing?")
            await question.press("Enter")
            answer = ada.locator(".message", has_text="shows live events as they happen")
            await answer.first.wait_for(timeout=TIMEOUT)
            await asyncio.sleep(8)  # the demo model types at a reading pace; the charts fill
            headers = {"Authorization": f"Bearer {BROWSER_TOKEN}"}
            body = {"user": "*", "type": "warning", "title": "Maintenance at 18:00"}
            body["message"] = "The dashboard restarts briefly."
            async with (
                aiohttp.ClientSession() as http,
                http.post(f"{url}/api/notifications", json=body, headers=headers) as response,
            ):
                assert response.status == 201, await response.text()
            await asyncio.sleep(1.5)  # the toast slides in
            await ada.screenshot(path=DOCS / "screenshot.png")

            phone = await browser.new_context(
                viewport={"width": 390, "height": 844},
                device_scale_factor=2,
                is_mobile=True,
                has_touch=True,
            )
            small = await visit(phone, url, "Ada Lovelace")
            await asyncio.sleep(6)  # a few seconds of lines in the charts
            await small.screenshot(path=DOCS / "screenshot-phone.png")
            await browser.close()
    print(f"wrote {DOCS / 'screenshot.png'} and {DOCS / 'screenshot-phone.png'}")


if __name__ == "__main__":
    asyncio.run(main())
