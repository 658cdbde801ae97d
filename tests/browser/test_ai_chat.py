"""AIChat in headless Chromium: the answer grows in place, and Stop freezes it for good."""

from __future__ import annotations

import asyncio

from playwright.async_api import expect

from dashboard.ai import OpenAIProvider
from dashboard.server import DashboardServer
from dashboard.ui.ai_chat import AIChat
from tests.fake_openai import LEAKY_KEY, FakeOpenAI

TIMEOUT = 30_000  # ms; the first page load compiles Panel's bundles

# The element whose shadow root holds ``text`` itself: the host of the pane that shows it.
SHOWN_IN = """
(text) => {
  const find = (root) => {
    for (const el of root.querySelectorAll('*')) {
      if (!el.shadowRoot) continue;
      if (el.shadowRoot.textContent.includes(text)) return el;
      const inner = find(el.shadowRoot);
      if (inner) return inner;
    }
    return null;
  };
  return find(document);
}
"""


async def test_answer_grows_in_place_then_stop_freezes_it(browser):
    fake = await FakeOpenAI([f"word{i} " for i in range(400)], delay=0.04).start()
    provider = OpenAIProvider("fake-model", api_key=LEAKY_KEY, base_url=fake.base_url)
    server = DashboardServer(port=0, page=lambda: AIChat(provider=provider), ai=provider)
    await server.start()
    try:
        page = await browser.new_page(viewport={"width": 1200, "height": 900})
        await page.goto(f"{server.url}/")
        await expect(page.get_by_text("fake-model at 127.0.0.1")).to_be_visible(timeout=TIMEOUT)
        box = page.locator("textarea").first
        await box.fill("What is this dashboard doing?")
        await box.press("Enter")
        answer = page.get_by_text("word0", exact=False).last
        await expect(answer).to_be_visible(timeout=10_000)
        await expect(box).to_be_disabled()  # no second question while one streams
        # The element that shows the answer (the HTML pane's host) stays; its text grows.
        shown_in = await page.evaluate_handle(SHOWN_IN, "word0")
        lengths = []
        for _ in range(4):
            lengths.append(len(await answer.inner_text()))
            await asyncio.sleep(0.25)
        assert lengths == sorted(lengths) and lengths[-1] > lengths[0], lengths
        assert await shown_in.evaluate("(host) => host.isConnected")
        assert len(await shown_in.evaluate("(host) => host.shadowRoot.textContent")) >= lengths[-1]
        assert (await answer.inner_text()).rstrip().endswith("▌")
        await page.get_by_role("button", name="Stop").click()
        await asyncio.wait_for(fake.closed.wait(), 5)  # the upstream request was closed
        await asyncio.sleep(0.3)
        frozen = await answer.inner_text()
        await asyncio.sleep(1.0)
        assert await answer.inner_text() == frozen
        assert "▌" not in frozen and "word399" not in frozen
        assert fake.sent_before_close is not None and fake.sent_before_close < 100
        await expect(box).to_be_enabled()
        await page.close()
    finally:
        await server.stop()
        await provider.aclose()
        await fake.stop()
