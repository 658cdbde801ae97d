"""When a served session ends for the components (dashboard/ui/lifecycle.py), with a stand-in
for Bokeh's server session: its connection count and the stamp of its last connection's end."""

from __future__ import annotations

import asyncio
import time
import weakref

from bokeh.document import Document
from panel.io.state import set_curdoc

from dashboard.ui import lifecycle
from dashboard.ui.lifecycle import on_session_end

#: Seconds: a few looks at the session.
LOOKS = 4 * lifecycle.LEAVE_POLL_INTERVAL


class ServerSession:
    """Bokeh's ``ServerSession`` as the lifecycle sees it: stamps on ``time.monotonic()``."""

    def __init__(self) -> None:
        self.connection_count = 0
        self._last_unsubscribe = time.monotonic() * 1000  # Bokeh stamps the creation too

    @property
    def milliseconds_since_last_unsubscribe(self) -> float:
        return time.monotonic() * 1000 - self._last_unsubscribe

    def browser_connects(self) -> None:
        self.connection_count += 1

    def browser_leaves(self) -> None:
        self.connection_count -= 1
        self._last_unsubscribe = time.monotonic() * 1000


class SessionContext:
    def __init__(self) -> None:
        self.session = ServerSession()


def served_document() -> tuple[Document, SessionContext]:
    document, context = Document(), SessionContext()
    document._session_context = weakref.ref(context)  # as Bokeh's server sets it
    return document, context


async def ended_within(ended: asyncio.Event, seconds: float) -> bool:
    try:
        await asyncio.wait_for(ended.wait(), seconds)
    except TimeoutError:
        return False
    return True


async def test_the_session_ends_once_its_browser_has_come_and_gone():
    document, context = served_document()
    ended = asyncio.Event()
    with set_curdoc(document):
        on_session_end(ended.set)
    await asyncio.sleep(0.05)
    context.session.browser_connects()
    await asyncio.sleep(LOOKS)
    assert not ended.is_set()  # the browser is there
    context.session.browser_leaves()
    assert await ended_within(ended, LOOKS)


async def test_a_browser_that_leaves_between_two_looks_still_ends_the_session():
    # The CI failure: the page opened and closed within one poll interval, so the count was
    # never seen above zero and the components stayed until Bokeh destroyed the session.
    document, context = served_document()
    ended = asyncio.Event()
    with set_curdoc(document):
        on_session_end(ended.set)
    await asyncio.sleep(0.05)  # the first look: nobody yet
    context.session.browser_connects()
    context.session.browser_leaves()
    assert await ended_within(ended, LOOKS)


async def test_a_session_whose_browser_has_not_come_yet_does_not_end():
    document, _context = served_document()
    ended = asyncio.Event()
    with set_curdoc(document):
        on_session_end(ended.set)
    assert not await ended_within(ended, LOOKS)
