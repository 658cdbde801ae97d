"""Two people on the served dashboard in two browser contexts: presence, typing, chat."""

from __future__ import annotations

import asyncio

from playwright.async_api import Page, expect

from tests.browser.conftest import dashboard_serve, requests_elsewhere

TIMEOUT = 30_000  # ms; the first page load compiles Panel's bundles


async def open_as(browser, url: str, name: str, *, via_form: bool) -> Page:
    """A fresh browser context (its own cookies) on the dashboard, named ``name``."""
    context = await browser.new_context(viewport={"width": 1400, "height": 1000})
    if not via_form:
        response = await context.request.post(f"{url}/api/identity", data={"name": name})
        assert response.ok, await response.text()
    page = await context.new_page()
    await page.goto(f"{url}/")
    if via_form:
        # A first visit is a guest, who picks a name; the page reloads as that name.
        await page.locator(".dashboard-me").first.wait_for(timeout=TIMEOUT)
        assert (await page.locator(".dashboard-me").first.inner_text()).startswith("Guest ")
        await page.get_by_placeholder("Your name").fill(name)
        await page.get_by_role("button", name="Set name").click()
        await page.wait_for_load_state()
    await expect(page.locator(".dashboard-me").first).to_have_text(name, timeout=TIMEOUT)
    # In the room: from now on this page's typing and messages reach the others.
    joined = page.locator(".chat-notice").filter(has_text="You joined #lobby")
    await expect(joined).to_have_count(1, timeout=TIMEOUT)
    return page


def presence_rows(page: Page):
    return page.locator(".dashboard-presence [data-user-id]")


async def test_two_viewers_see_each_other_typing_and_chatting(browser, served_dashboard):
    url = served_dashboard
    ada = await open_as(browser, url, "Ada", via_form=False)
    bob = await open_as(browser, url, "Bob", via_form=True)

    for page in (ada, bob):
        await expect(presence_rows(page)).to_have_count(2, timeout=TIMEOUT)
        names = await presence_rows(page).all_inner_texts()
        assert any("Ada" in text for text in names) and any("Bob" in text for text in names)
    await expect(ada.locator(".dashboard-presence").first).to_contain_text("2 people here")

    message_box = bob.get_by_placeholder("Message #lobby")
    await message_box.press_sequentially("hello <b>ada</b>", delay=30)
    typing = ada.locator(".dashboard-typing").first
    await expect(typing).to_have_text("Bob is typing…", timeout=10_000)

    await message_box.press("Enter")
    message = ada.locator(".chat-message").filter(has_text="hello <b>ada</b>")
    await expect(message).to_have_count(1, timeout=10_000)
    assert await message.locator("b").count() == 0  # shown as text, never as markup
    await expect(message.locator(".chat-user")).to_have_text("Bob")
    await expect(typing).to_have_text("", timeout=5_000)  # sending ends typing at once
    await expect(message_box).to_have_value("")

    await bob.context.close()  # the tab goes away
    await expect(presence_rows(ada)).to_have_count(1, timeout=10_000)
    await expect(ada.locator(".chat-notice").filter(has_text="Bob left #lobby")).to_have_count(
        1, timeout=10_000
    )
    await ada.context.close()


async def test_typing_stops_by_itself_after_three_seconds(browser, served_dashboard):
    url = served_dashboard
    ada = await open_as(browser, url, "Ada", via_form=False)
    bob = await open_as(browser, url, "Bob", via_form=False)
    await expect(presence_rows(ada)).to_have_count(2, timeout=TIMEOUT)
    await bob.get_by_placeholder("Message #lobby").press_sequentially("hm", delay=30)
    typing = ada.locator(".dashboard-typing").first
    await expect(typing).to_have_text("Bob is typing…", timeout=10_000)
    started = asyncio.get_running_loop().time()
    await expect(typing).to_have_text("", timeout=10_000)
    assert asyncio.get_running_loop().time() - started >= 2.0  # expiry, not a glitch
    for page in (ada, bob):
        await page.context.close()


async def test_a_panel_login_is_the_viewer_everywhere(browser, tmp_path):
    users = tmp_path / "users.json"
    users.write_text('{"ada": "letmein"}')
    async with dashboard_serve("--basic-auth", str(users), "--no-demo") as url:
        context = await browser.new_context(viewport={"width": 1400, "height": 1000})
        page = await context.new_page()
        outside = requests_elsewhere(page, url)
        await page.goto(f"{url}/")
        # The login page's logo and icon come from the server itself, not Panel's CDN.
        logo = page.locator("img#logo")
        await expect(logo).to_be_visible(timeout=TIMEOUT)
        assert await logo.evaluate("(img) => img.complete && img.naturalWidth > 0")
        assert outside == []
        await page.locator("input[name=username]").fill("ada")
        await page.locator("input[name=password]").fill("letmein")
        await page.locator("input[name=password]").press("Enter")
        await expect(page.locator(".dashboard-me").first).to_have_text("ada", timeout=TIMEOUT)
        await expect(presence_rows(page)).to_have_count(1, timeout=TIMEOUT)
        await expect(presence_rows(page).first).to_contain_text("ada")
        await expect(page.get_by_placeholder("Your name")).to_be_hidden()  # a login is fixed
        await context.close()


async def test_a_guest_keeps_their_id_across_reloads(browser, served_dashboard):
    # A first visit is a guest; a reload used to make a new one (new id: their notifications
    # came back unread, their messages stopped being theirs). The page shows the id, which is
    # what `dashboard notify --user` takes.
    context = await browser.new_context(viewport={"width": 1400, "height": 1000})
    page = await context.new_page()
    await page.goto(f"{served_dashboard}/")
    shown = page.locator(".dashboard-my-id code").first
    await shown.wait_for(timeout=TIMEOUT)
    first = await shown.inner_text()
    assert first.startswith("guest-")
    name = await page.locator(".dashboard-me").first.inner_text()
    for _ in range(50):  # the browser adopts the identity in the background; 5 s at most
        if any(cookie["name"] == "dashboard_user" for cookie in await context.cookies()):
            break
        await asyncio.sleep(0.1)
    await page.reload()
    await expect(page.locator(".dashboard-my-id code").first).to_have_text(first, timeout=TIMEOUT)
    await expect(page.locator(".dashboard-me").first).to_have_text(name)
    await context.close()
