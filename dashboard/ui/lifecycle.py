"""One life cycle for every component: ``await start()``, ``await stop()``, and a stop that
comes by itself when a served session ends.

Components that hold something live (a subscription, a room, an inbox, a streaming answer)
have ``async def start()`` and ``async def stop()``; ``stop()`` is idempotent and safe before
``start()``. Started inside a served session (``pn.state.onload`` of ``panel serve app.py``,
or the dashboard's own page), a component registers its ``stop`` with :func:`on_session_end`,
so nothing outlives the page: not an SSE connection, not a room's presence.

A session ends, for this purpose, at the first of:

* its browser leaving: the session has no connection left and a connection has ended (a
  closed tab, a reload, a lost network). Bokeh keeps such a session for
  ``unused_session_lifetime`` (15 s by default, checked every 17 s), so waiting for it would
  keep presence and streams alive for up to half a minute; the session's connection count and
  Bokeh's stamp of its last connection's end are read every :data:`LEAVE_POLL_INTERVAL`
  seconds instead, because Bokeh has no hook for it. The stamp also catches a browser that
  came and went between two looks (a tab closed within half a second).
* Bokeh destroying the session (``Document.on_session_destroyed``), for a session whose
  browser never connected.

Outside a served session (a notebook, a script, a test) nothing ends by itself: the caller
stops what it started.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import Callable
from typing import Any

import panel as pn
from bokeh.document import Document

from .tasks import BackgroundTasks, Scheduled

log = logging.getLogger(__name__)

#: Seconds between two looks at whether the browser is still connected.
LEAVE_POLL_INTERVAL = 0.5

SessionCallback = Callable[[], Any]


def connection_count(document: Document | None) -> int | None:
    """How many browser connections the server session of ``document`` has; ``None`` when
    ``document`` is not shown by a server session (yet)."""
    context = getattr(document, "session_context", None)
    session = getattr(context, "session", None)
    count = getattr(session, "connection_count", None)
    return count if isinstance(count, int) else None


def last_browser_left(document: Document | None) -> float | None:
    """When a browser connection of ``document``'s server session last closed, on the
    ``time.monotonic()`` clock; the session's creation while none has. ``None`` without a
    server session. Bokeh stamps it in milliseconds on that clock
    (``ServerSession.milliseconds_since_last_unsubscribe``)."""
    context = getattr(document, "session_context", None)
    session = getattr(context, "session", None)
    elapsed = getattr(session, "milliseconds_since_last_unsubscribe", None)  # a property
    if not isinstance(elapsed, int | float):
        return None
    return time.monotonic() - elapsed / 1000


def session_detached(document: Document | None) -> bool:
    """Whether ``document`` belongs to a server session that no browser is connected to.

    Writing to such a session only logs "Failed sending message as connection was closed".
    """
    return connection_count(document) == 0


def on_session_end(callback: SessionCallback) -> Callable[[], None]:
    """Call ``callback()`` once when the current served session ends (see the module doc).

    ``callback`` may return a coroutine; it then runs as a task. Outside a served session
    nothing is watched.

    Returns:
        A function that forgets ``callback`` without calling it (e.g. in ``stop()``).
    """
    document = pn.state.curdoc
    if document is None or document.session_context is None:
        return lambda: None
    ending = _ENDINGS.get(document)
    if ending is None:
        ending = _ENDINGS[document] = _SessionEnding(document)
    return ending.add(callback)


def when_browser_leaves(callback: SessionCallback) -> Callable[[], None]:
    """Former name of :func:`on_session_end`, which also covers a session Bokeh destroys."""
    return on_session_end(callback)


class _SessionEnding:
    """The callbacks waiting for one session's end, and the one watcher that calls them."""

    def __init__(self, document: Document) -> None:
        self._callbacks: list[SessionCallback] = []
        self._ended = False
        self._document = weakref.ref(document)
        self._watcher: Scheduled | None = None
        log.debug("watching session %s for its end", _session_id(document))
        try:
            self._watcher = _TASKS.spawn(self._watch())
        except RuntimeError:
            # No running loop (e.g. an app script run from a thread): the session's
            # destruction still ends it, only later.
            log.debug("no running loop: the session ends when Bokeh destroys it")
        document.on_session_destroyed(lambda _context: self._end("destroyed"))

    def add(self, callback: SessionCallback) -> Callable[[], None]:
        if self._ended:
            self._call(callback)
            return lambda: None
        self._callbacks.append(callback)

        def forget() -> None:
            if callback in self._callbacks:
                self._callbacks.remove(callback)

        return forget

    async def _watch(self) -> None:
        # The browser has left once the session has no connection and Bokeh has stamped a
        # connection's end later than at the first look. So a session not loaded yet (no
        # connection either) goes on, and a browser that came and went between two looks (a
        # tab closed within half a second) is caught all the same.
        first_look: float | None = None
        while True:
            document = self._document()
            if document is None:
                return
            count, left = connection_count(document), last_browser_left(document)
            del document  # the session, not this watcher, keeps it alive
            if first_look is None:
                first_look = left
            if count == 0 and _later(left, first_look):
                break
            await asyncio.sleep(LEAVE_POLL_INTERVAL)
        self._end("browser left")

    def _end(self, why: str) -> None:
        if self._ended:
            return
        self._ended = True
        if self._watcher is not None:
            self._watcher.cancel()
        callbacks, self._callbacks = self._callbacks, []
        log.debug(
            "session %s ended (%s): stopping %d component(s)",
            _session_id(self._document()),
            why,
            len(callbacks),
        )
        for callback in callbacks:
            self._call(callback)

    @staticmethod
    def _call(callback: SessionCallback) -> None:
        try:
            result = callback()
            if asyncio.iscoroutine(result):
                _TASKS.spawn(result)
        except Exception:
            log.exception("stopping %r at the end of its session failed", callback)


def _session_id(document: Document | None) -> str:
    context = getattr(document, "session_context", None)
    return str(getattr(context, "id", "?"))[:12]


def _later(when: float | None, than: float | None) -> bool:
    # Two readings of one stamp differ by float rounding: a millisecond apart is later.
    return when is not None and than is not None and when > than + 0.001


_TASKS = BackgroundTasks()
_ENDINGS: weakref.WeakKeyDictionary[Document, _SessionEnding] = weakref.WeakKeyDictionary()
