"""Notifications on the served dashboard in headless Chromium: toast, list, badge, read sync."""

from __future__ import annotations

import aiohttp
import pytest
from playwright.async_api import Page, expect

from tests.browser.conftest import BROWSER_TOKEN, dashboard_serve

TIMEOUT = 30_000  # ms; the first page load compiles Panel's bundles


def badge(page: Page):
    return page.locator(".unread-badge").first


async def send(url: str, body: dict) -> dict:
    """What a CI job does: POST /api/notifications with the server's publish token."""
    headers = {"Authorization": f"Bearer {BROWSER_TOKEN}"}  # the token of `dashboard_serve`
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{url}/api/notifications", json=body, headers=headers) as response,
    ):
        assert response.status == 201, await response.text()
        return await response.json()


@pytest.fixture
async def quiet_dashboard(tmp_path):
    """Its own database and no demo: every notification it holds is one this test sent."""
    async with dashboard_serve("--no-demo", "--db", str(tmp_path / "inbox.sqlite3")) as url:
        yield url


async def test_a_notification_toasts_lists_and_read_state_syncs(browser, quiet_dashboard):
    url = quiet_dashboard
    context = await browser.new_context(viewport={"width": 1400, "height": 900})
    me = await (await context.request.post(f"{url}/api/identity", data={"name": "Ada"})).json()
    first, second = await context.new_page(), await context.new_page()  # two tabs, one user
    for page in (first, second):
        await page.goto(f"{url}/")
        await expect(badge(page)).to_have_attribute("data-loaded", "true", timeout=TIMEOUT)
        await expect(badge(page)).to_have_attribute("data-count", "0")

    sent = await send(
        url,
        {
            "user": me["user_id"],
            "type": "error",
            "title": "Deploy <b>failed</b>",
            "message": "api v2 rolled back",
            "link": "/api/health",
        },
    )
    toast = first.locator(".notyf__toast").filter(has_text="Deploy <b>failed</b>: api v2")
    await expect(toast).to_have_count(1, timeout=10_000)  # as text: no markup got through
    assert await toast.locator("b").count() == 0
    for page in (first, second):
        await expect(badge(page)).to_have_attribute("data-count", "1", timeout=10_000)

    await send(url, {"user": "*", "type": "success", "title": "Backup done"})
    await expect(badge(second)).to_have_attribute("data-count", "2", timeout=10_000)

    await first.locator(".dashboard-bell button").first.click()
    entry = first.locator(f'.notice[data-id="{sent["id"]}"]')
    await expect(entry).to_contain_text("api v2 rolled back", timeout=10_000)
    await expect(entry).to_have_class("notice notice-unread")
    await first.get_by_role("button", name="Mark all read").click()

    for page in (first, second):  # the other tab hears it from the server
        await expect(badge(page)).to_have_attribute("data-count", "0", timeout=10_000)
    await expect(entry).to_have_class("notice notice-read")

    await second.reload()  # read state is stored, not just pushed
    await second.locator(".dashboard-bell button").first.click()
    await expect(second.locator(".notice-read")).to_have_count(2, timeout=TIMEOUT)
    await expect(second.locator(".notice-unread")).to_have_count(0)
    await expect(badge(second)).to_have_attribute("data-count", "0")
    await expect(second.locator(".notyf__toast")).to_have_count(0)  # old ones do not toast
    await context.close()
