"""The notebooks in a real JupyterLab, driven in headless Chromium as a person uses them.

One ``dashboard serve`` and one JupyterLab (copies of ``notebooks/`` in a scratch directory) for
the module. For each notebook: Run > Run All Cells, then the widgets are used by typing and
clicking, and what the page shows is checked. Throughout, no request may leave the machine and
the page may log no console error (:class:`~tests.jupyter.lab.PageWatch`).
"""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from playwright.async_api import Browser, Locator, Page, expect

from dashboard import notify
from tests.jupyter.lab import (
    Lab,
    PageWatch,
    cell_errors,
    jupyter_lab,
    open_notebook,
    report_failure,
    run_all_cells,
)
from tests.processes import dashboard_process

#: The publish token of the dashboard the notebooks talk to (DASHBOARD_TOKEN).
PUBLISH_TOKEN = "jupyterlab-publish-token"
#: ms: generous for a loaded CI machine; what is waited for is visible state, never time.
SEEN = 15_000

pytestmark = [pytest.mark.jupyter, pytest.mark.asyncio(loop_scope="module")]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def served() -> AsyncIterator[str]:
    async with dashboard_process(env={"DASHBOARD_TOKEN": PUBLISH_TOKEN}) as process:
        yield process.url


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def lab(served: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Lab]:
    env = {"DASHBOARD_URL": served, "DASHBOARD_TOKEN": PUBLISH_TOKEN}
    async with jupyter_lab(tmp_path_factory.mktemp("lab"), env) as running:
        yield running


@pytest_asyncio.fixture(loop_scope="module")
async def page(
    lab_browser: Browser, lab: Lab, request: pytest.FixtureRequest
) -> AsyncIterator[Page]:
    """A fresh page; after the test, no request may have left the machine and no console error
    may have been logged. When the test fails, what the page showed and what JupyterLab and
    its kernels logged are printed with the failure, and a screenshot is saved."""
    context = await lab_browser.new_context(viewport={"width": 1400, "height": 1000})
    page = await context.new_page()
    watch = PageWatch()
    await watch.attach(page)
    yield page
    failed = getattr(request.node, "report_call", None)
    if failed is not None and failed.failed:
        await report_failure(page, lab, watch, request.node.name)
    await context.close()
    assert watch.outside == [], "requests left the machine"
    assert watch.errors == [], "the page logged errors"


async def run_notebook(page: Page, lab: Lab, name: str) -> None:
    await open_notebook(page, lab, name)
    await run_all_cells(page)
    assert await cell_errors(page) == [], f"{name}: a cell failed"


async def type_and_enter(box: Locator, text: str) -> None:
    """As a person does: click into the box, type, see the text there, press Enter."""
    await box.click()
    await box.press_sequentially(text, delay=5)
    await expect(box).to_have_value(text)
    await expect(box).to_be_focused()
    await box.press("Enter")


async def test_live_feed_notebook(page, lab):
    await run_notebook(page, lab, "01_live_feed.ipynb")
    printed = page.locator(".jp-OutputArea-output")
    await expect(printed.filter(has_text=re.compile(r"in-kernel hub: \d+ events"))).to_be_visible()
    # The sources stay live after the last cell: both badges say so, the feeds keep moving.
    await expect(page.get_by_text("● Connected")).to_have_count(2, timeout=SEEN)
    await expect(page.get_by_text("published from a notebook cell").first).to_be_visible()


async def test_chat_notebook_enter_sends_and_a_typed_name_creates_a_room(page, lab):
    await run_notebook(page, lab, "02_chat_and_presence.ipynb")
    box = page.get_by_placeholder("Message #lobby")
    text = f"typed in JupyterLab {time.monotonic_ns()}"
    await type_and_enter(box, text)
    await expect(page.get_by_text(text)).to_be_visible(timeout=SEEN)
    await expect(box).to_have_value("")

    new_room = page.get_by_placeholder("new-room (Enter)")
    await type_and_enter(new_room, "lab-room")
    await expect(page.get_by_text("You joined #lab-room")).to_be_visible(timeout=SEEN)
    await expect(page.get_by_placeholder("Message #lab-room")).to_be_visible()
    await expect(new_room).to_have_value("")


async def test_ai_notebook_remote_question_stop_and_ask_again(page, lab):
    await run_notebook(page, lab, "04_ai_chat.ipynb")
    boxes = page.get_by_placeholder("Send a message")  # the in-process chat's, then the remote's
    local_box, remote_box = boxes.nth(0), boxes.nth(1)
    # The notebook's own cells asked, then stopped an answer from code: the box is usable.
    await expect(local_box).to_be_enabled()

    # The remote dashboard answers with its demo provider; its answers are known text.
    await type_and_enter(remote_box, "How do I publish a metric?")
    await expect(remote_box).to_have_value("")
    await expect(page.get_by_text("You have asked me 2 questions so far.")).to_be_visible(
        timeout=SEEN
    )
    await expect(page.get_by_text("Anything can publish into the dashboard")).to_be_visible()
    await expect(remote_box).to_be_enabled()

    await type_and_enter(remote_box, "Which AI model answers here?")
    await expect(page.get_by_text("This answer comes from the offline demo")).to_be_visible(
        timeout=SEEN
    )
    await page.get_by_role("button", name="Stop").click()
    await expect(page.get_by_role("button", name="Stop")).to_have_count(0)
    await expect(remote_box).to_be_enabled()
    await expect(page.get_by_text("You have asked me 3 questions so far.")).to_have_count(0)

    await type_and_enter(remote_box, "And how would I publish a chart?")
    await expect(page.get_by_text("You have asked me 4 questions so far.")).to_be_visible(
        timeout=SEEN
    )
    await expect(page.get_by_text("Anything can publish into the dashboard")).to_have_count(2)
    await expect(remote_box).to_be_enabled()


# The "Mark read" button of a notification's row: the notice is in an HTML pane's shadow root,
# the button in its sibling's, both in the row's.
MARK_READ_BUTTON = """
(id) => {
  const find = (root, test) => {
    for (const el of root.querySelectorAll('*')) {
      if (test(el)) return el;
      if (el.shadowRoot) { const inner = find(el.shadowRoot, test); if (inner) return inner; }
    }
    return null;
  };
  const notice = find(document, (el) => el.matches(`.notice[data-id="${id}"]`));
  const pane = notice && notice.getRootNode().host;
  const row = pane && pane.parentNode;
  return row && find(row, (el) => el.tagName === 'BUTTON' && el.textContent.trim() === 'Mark read');
}
"""


async def test_notifications_notebook_toast_list_and_mark_read(page, lab, served):
    await run_notebook(page, lab, "03_notifications.ipynb")
    title = f"Lab export {time.monotonic_ns()} finished"
    sent = await notify(
        title, "sent by the test", user="analyst", type="success", url=served, token=PUBLISH_TOKEN
    )
    await expect(page.locator(".notyf__toast", has_text=title)).to_be_visible(timeout=SEEN)
    notice = page.locator(f'.notice[data-id="{sent.id}"]')
    await expect(notice).to_be_visible(timeout=SEEN)
    await expect(notice).to_have_class(re.compile(r"\bnotice-unread\b"))

    button = (await page.evaluate_handle(MARK_READ_BUTTON, sent.id)).as_element()
    assert button is not None, "no Mark read button beside the notification"
    await button.click()
    await expect(notice).to_have_class(re.compile(r"\bnotice-read\b"), timeout=SEEN)
    await page.wait_for_function("(button) => !button.checkVisibility()", arg=button)
