"""The served dashboard on a phone and on a desktop, in headless Chromium.

On a phone (390 x 844, mobile emulation) the page is laid out at the device's width: nothing
runs off the right edge (inside shadow roots too), every panel gets the screen's width, and the
sidebar is a drawer that starts closed. On a desktop the sidebar stays open beside the panels,
two by two. Long unbroken names, messages, alerts and notification titles wrap; the AI chat is
drawn opaque and readable; the charts' time axes show clock times whose labels never touch.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

import aiohttp
from playwright.async_api import Page, expect

from tests.browser.conftest import BROWSER_TOKEN
from tests.contrast import AA, contrast_ratio, over

TIMEOUT = 30_000  # ms; the first page load compiles Panel's bundles
PHONE: dict[str, Any] = {
    "viewport": {"width": 390, "height": 844},
    "device_scale_factor": 3,
    "is_mobile": True,
    "has_touch": True,
}
DESKTOP: dict[str, Any] = {"viewport": {"width": 1280, "height": 800}}
#: No space, no hyphen: the browser may only break it where the page allows.
LONG = "Unbroken" * 16
CLOCK = re.compile(r"\d\d:\d\d(:\d\d)?")
#: The sidebar's classes once Bootstrap has finished opening it.
OPEN = re.compile(r"(^|\s)collapse show(\s|$)")

# Elements (through every shadow root) that reach past the viewport's right edge where they are
# not clipped by an ancestor, and scroll boxes that scroll sideways.
OVERFLOW_JS = """
() => {
  const width = document.documentElement.clientWidth;
  const result = {scrollWidth: document.documentElement.scrollWidth, past: [], sideways: []};
  const parent = (el) => el.parentElement || el.getRootNode().host || null;
  const clipped = (el) => {
    let right = Infinity;
    for (let up = parent(el); up; up = parent(up)) {
      if (getComputedStyle(up).overflowX !== 'visible') {
        right = Math.min(right, up.getBoundingClientRect().right);
      }
    }
    return right;
  };
  const name = (el) => el.tagName + '.' + String(el.className).slice(0, 60);
  const walk = (root) => {
    for (const el of root.querySelectorAll('*')) {
      const box = el.getBoundingClientRect();
      const style = getComputedStyle(el);
      if (box.width > 0 && box.height > 0 && style.visibility !== 'hidden') {
        const right = Math.min(box.right, clipped(el));
        if (right > width + 0.5) result.past.push([name(el), Math.round(right)]);
        const scrolls = style.overflowX === 'auto' || style.overflowX === 'scroll';
        if (scrolls && el.scrollWidth > el.clientWidth + 1) {
          result.sideways.push([name(el), el.scrollWidth, el.clientWidth]);
        }
      }
      if (el.shadowRoot) walk(el.shadowRoot);
    }
  };
  walk(document);
  return result;
}
"""

# Rendered widths of the elements matching each selector, through every shadow root.
WIDTHS_JS = """
(selectors) => {
  const result = Object.fromEntries(selectors.map((s) => [s, []]));
  const walk = (root) => {
    for (const s of selectors) {
      for (const el of root.querySelectorAll(s)) {
        const width = el.getBoundingClientRect().width;
        if (width > 0) result[s].push(Math.round(width));
      }
    }
    for (const el of root.querySelectorAll('*')) if (el.shadowRoot) walk(el.shadowRoot);
  };
  walk(document);
  return result;
}
"""

# What BokehJS draws on every time axis: the tick labels, their x and their width.
AXES_JS = """
() => [...Bokeh.index.all_views()]
  .filter((view) => view.model && view.model.type === 'DatetimeAxis')
  .map((view) => {
    const coords = view.tick_coords.major;
    const labels = view.compute_labels(coords[view.dimension]);
    labels.visuals = view.visuals.major_label_text.values();
    labels.base_font_size = view.plot_view.base_font_size;
    return {
      text: view.model.formatter.doFormat(coords[view.dimension], view),
      x: [...view.scoords(coords)[0]],
      width: labels.items.map((label) => label.size().width),
    };
  })
"""

# How an element is drawn: its opacity times its ancestors', cursor, colour and the
# backgrounds behind it (nearest first, down to the first opaque one).
LOOK_JS = """
(el) => {
  const parse = (css) => {
    const [r, g, b, a] = css.match(/[\\d.]+/g).map(Number);
    return [r, g, b, a === undefined ? 1 : a];
  };
  const parent = (e) => e.parentElement || e.getRootNode().host || null;
  let opacity = 1;
  const backgrounds = [];
  for (let up = el; up; up = parent(up)) {
    const style = getComputedStyle(up);
    opacity *= Number(style.opacity);
    const background = parse(style.backgroundColor);
    if (background[3] > 0 && (backgrounds.length === 0 || backgrounds.at(-1)[3] < 1)) {
      backgrounds.push(background);
    }
  }
  const style = getComputedStyle(el);
  return {opacity, cursor: style.cursor, color: parse(style.color), backgrounds};
}
"""


def readable(look: dict[str, Any]) -> float:
    """The contrast ratio of an element's text (from ``LOOK_JS``) on what is behind it."""
    behind: tuple[float, float, float] = (255, 255, 255)
    for background in reversed(look["backgrounds"]):
        behind = over(tuple(background), behind)  # type: ignore[arg-type]
    return contrast_ratio(over(tuple(look["color"]), behind), behind)  # type: ignore[arg-type]


async def widths(page: Page, *selectors: str) -> dict[str, list[int]]:
    return await page.evaluate(WIDTHS_JS, list(selectors))


async def assert_nothing_runs_off(page: Page) -> None:
    width = page.viewport_size["width"]  # type: ignore[index]
    found = await page.evaluate(OVERFLOW_JS)
    assert found["scrollWidth"] <= width, found
    assert found["past"] == [], found["past"][:10]
    assert found["sideways"] == [], found["sideways"][:10]


async def assert_time_axes_read(page: Page) -> None:
    """Both charts have time axes whose labels are clock times that do not touch."""
    for _ in range(100):
        axes = await page.evaluate(AXES_JS)
        if len(axes) >= 2 and all(len(axis["text"]) >= 2 for axis in axes):
            break
        await asyncio.sleep(0.1)
    assert len(axes) >= 2, axes
    for axis in axes:
        assert all(CLOCK.fullmatch(text) for text in axis["text"]), axis["text"]
        ticks = sorted(zip(axis["x"], axis["width"], strict=True))
        for (x, width), (next_x, next_width) in zip(ticks, ticks[1:], strict=False):
            gap = (next_x - next_width / 2) - (x + width / 2)
            assert gap >= 4, f"tick labels {axis['text']} touch: {gap:.1f} px apart"


async def publish(url: str, channel: str, event: str, data: dict[str, Any]) -> None:
    headers = {"Authorization": f"Bearer {BROWSER_TOKEN}"}  # the token of `dashboard_serve`
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            f"{url}/api/publish",
            json={"channel": channel, "event": event, "data": data},
            headers=headers,
        ) as response,
    ):
        assert response.status == 200, await response.text()


async def notify(url: str, title: str) -> int:
    headers = {"Authorization": f"Bearer {BROWSER_TOKEN}"}
    body = {"user": "*", "type": "warning", "title": title, "message": "disk 91%"}
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{url}/api/notifications", json=body, headers=headers) as response,
    ):
        assert response.status == 201, await response.text()
        return int((await response.json())["id"])


async def open_page(browser, url: str, options: dict[str, Any], name: str | None = None):
    """A page of the dashboard as a visitor named ``name``, and the console's warnings."""
    context = await browser.new_context(**options)
    if name is not None:
        answer = await context.request.post(f"{url}/api/identity", data={"name": name})
        assert answer.ok, await answer.text()
    page = await context.new_page()
    console: list[str] = []
    page.on("console", lambda message: console.append(message.text))
    await page.goto(f"{url}/")
    await page.locator(".live-feed-entry").first.wait_for(timeout=TIMEOUT)
    await page.locator("textarea").first.wait_for(timeout=TIMEOUT)  # the AI chat's input
    return page, console


async def test_on_a_phone_every_panel_gets_the_screens_width(browser, served_dashboard):
    url = served_dashboard
    page, console = await open_page(browser, url, PHONE, name="Name" + LONG[:100])
    assert await page.locator('meta[name="viewport"]').get_attribute("content") == (
        "width=device-width, initial-scale=1"
    )
    # Long unbroken text everywhere the page shows what people write.
    await publish(url, "alerts", "alert", {"severity": "warning", "message": "Alert" + LONG})
    await page.locator(".live-feed-entry", has_text="AlertUnbroken").first.wait_for(timeout=TIMEOUT)
    box = page.get_by_placeholder("Message #lobby")
    await box.fill("Chat" + LONG)
    await box.press("Enter")
    await page.locator(".chat-message", has_text="ChatUnbroken").wait_for(timeout=TIMEOUT)

    sidebar = page.locator("#sidebar")
    await expect(sidebar).to_be_hidden()  # a drawer, closed: the panels get the screen
    await assert_time_axes_read(page)
    await assert_nothing_runs_off(page)
    shown = await widths(
        page,
        "#main",
        ".bk-Figure",
        ".live-feed",
        ".live-feed-entry",
        ".chat-timeline",
        ".dashboard-ai-label",
        "textarea",
    )
    assert shown["#main"] == [390], shown
    for selector in (".bk-Figure", ".live-feed", ".chat-timeline", ".dashboard-ai-label"):
        assert shown[selector] and min(shown[selector]) >= 300, (selector, shown[selector])
    assert min(shown[".live-feed-entry"]) > 250, shown  # a line of text, not a letter a line
    assert min(shown["textarea"]) >= 300, shown  # the whole "Send a message"

    # The AI chat's Send, at the end of the page, is tapped as a person does: the link badge
    # (fixed in the bottom corner) must not cover it.
    await page.locator("textarea").last.fill("What is this dashboard doing?")
    await page.get_by_role("button", name="Send").last.click(timeout=10_000)
    await expect(page.get_by_text("shows live events as they happen").first).to_be_visible(
        timeout=TIMEOUT
    )

    await page.locator("#sidebar-toggle").click()  # the drawer opens over the page
    # Open, not still sliding in (Bootstrap ignores a hide while it moves).
    await expect(sidebar).to_have_class(OPEN)
    await expect(page.locator(".dashboard-presence-name")).to_be_visible()
    drawer = await sidebar.bounding_box()
    assert drawer is not None and drawer["x"] >= 0 and drawer["width"] <= 0.9 * 390
    assert (await widths(page, "#main"))["#main"] == [390]  # not squeezed beside it
    await assert_nothing_runs_off(page)
    await page.mouse.click(380, 600)  # a tap on the page behind closes it
    await expect(sidebar).to_be_hidden()
    assert not [text for text in console if "could not set initial ranges" in text]
    await page.context.close()


async def test_on_a_desktop_the_sidebar_stays_open_beside_panels_in_pairs(
    browser, served_dashboard
):
    page, console = await open_page(browser, served_dashboard, DESKTOP)
    sidebar = await page.locator("#sidebar").bounding_box()
    main = await page.locator("#main").bounding_box()
    assert sidebar is not None and main is not None
    assert 290 <= sidebar["width"] <= 310 and main["x"] >= sidebar["x"] + sidebar["width"] - 1
    charts = [await page.locator(".bk-Figure").nth(i).bounding_box() for i in range(2)]
    assert charts[0] and charts[1]
    assert charts[0]["y"] == charts[1]["y"] and charts[0]["x"] < charts[1]["x"]  # side by side
    assert min(chart["width"] for chart in charts) >= 400
    chat = await page.locator(".chat-timeline").bounding_box()
    ask = await page.locator("textarea").bounding_box()
    assert chat and ask and chat["x"] + chat["width"] <= ask["x"]  # team chat, then the AI
    await assert_time_axes_read(page)
    await assert_nothing_runs_off(page)

    # A window just wider than a tablet: the sidebar stays, the pairs stack, nothing touches.
    await page.set_viewport_size({"width": 980, "height": 800})
    await expect(page.locator("#sidebar")).to_be_visible()
    for _ in range(50):
        charts = [await page.locator(".bk-Figure").nth(i).bounding_box() for i in range(2)]
        if charts[0] and charts[1] and charts[1]["y"] > charts[0]["y"]:
            break
        await asyncio.sleep(0.1)
    assert charts[0] and charts[1] and charts[1]["y"] > charts[0]["y"]  # one under the other
    await asyncio.sleep(0.5)  # Bokeh lays the axes out again
    await assert_time_axes_read(page)
    await assert_nothing_runs_off(page)
    assert not [text for text in console if "could not set initial ranges" in text]
    await page.context.close()


async def test_the_ai_chat_is_drawn_opaque_and_its_label_reads(browser, served_dashboard):
    page, _console = await open_page(browser, served_dashboard, DESKTOP)
    box = page.locator("textarea").first
    await box.fill("What is this dashboard doing?")
    await box.press("Enter")
    # Not "This dashboard": has_text ignores case, so the question itself would match.
    answer = page.locator(".message", has_text="shows live events as they happen")
    await answer.first.wait_for(timeout=TIMEOUT)
    messages = page.locator(".message")
    assert await messages.count() >= 2  # the question and the answer
    for index in range(await messages.count()):
        look = await messages.nth(index).evaluate(LOOK_JS)
        assert look["opacity"] == 1, look  # Bootstrap's .placeholder made it 0.5
        assert look["cursor"] != "wait", look
        assert readable(look) >= AA, look  # dark text on a light bubble, not grey on grey
    for selector in (".dashboard-ai-label", ".dashboard-ai-demo"):
        look = await page.locator(selector).first.evaluate(LOOK_JS)
        assert readable(look) >= AA, (selector, look, readable(look))
    # The text box has a line of its own: the whole "Send a message" shows.
    assert (await box.bounding_box() or {"width": 0})["width"] >= 300
    await page.context.close()


async def test_a_long_notification_title_wraps_beside_mark_read(browser, served_dashboard):
    url = served_dashboard
    for options in (PHONE, DESKTOP):
        page, _console = await open_page(browser, url, options)
        await expect(page.locator(".unread-badge")).to_have_attribute(
            "data-loaded", "true", timeout=TIMEOUT
        )
        id = await notify(url, "Title" + LONG)
        await page.locator(".dashboard-bell button").first.click()
        title = page.locator(f'.notice[data-id="{id}"] .notice-title')
        await expect(title).to_be_visible(timeout=TIMEOUT)
        shown = await title.bounding_box()
        assert shown is not None
        assert shown["height"] > 40  # it wrapped onto several lines
        buttons = page.get_by_role("button", name="Mark read")
        beside = []
        for index in range(await buttons.count()):
            button = await buttons.nth(index).bounding_box()
            if (
                button
                and button["y"] < shown["y"] + shown["height"]
                and shown["y"] < (button["y"] + button["height"])
            ):
                beside.append(button)
        assert beside, "no Mark read button beside the title"
        for button in beside:
            assert shown["x"] + shown["width"] <= button["x"], (shown, button)
        await assert_nothing_runs_off(page)
        await page.context.close()
