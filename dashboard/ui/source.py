"""One subscription per session, shared by every component that shows it.

A :class:`StreamSource` consumes one :class:`~dashboard.core.connection.EventStream` in one
asyncio task and hands batches of events to its listeners, so the feed, the chart and the status
badge of a page cost one subscription, not three. Where the stream says a channel has a gap
(a :class:`~dashboard.core.cursor.Reset`), the listeners hear of it in order with the events.
:class:`RenderThrottle` is the coalescing policy the components share: however fast events
arrive, a component renders at most ``max_per_second`` times.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Callable
from typing import Any

import panel as pn
import param
from bokeh.document import Document
from panel.io.state import set_curdoc

from ..core.connection import ConnectionState, ConnectionStatus, EventStream
from ..core.cursor import Reset
from ..core.events import Event
from .component import Component
from .lifecycle import on_session_end, session_detached

logger = logging.getLogger(__name__)

Listener = Callable[[list[Event]], None]
ResetListener = Callable[[Reset], None]

#: Largest batch handed to listeners at once. A stream that never yields to the event loop
#: would otherwise grow the pending batch without bound; at this size it is delivered at once.
MAX_BATCH = 1000


class StreamSource(param.Parameterized):
    """Consumes one event stream and fans batches of events out to listeners.

    Events are delivered in batches: everything the stream has ready without waiting is
    collected, then each listener is called once with the list. A listener that raises is logged
    and keeps its subscription. A reset (a channel that could not resume exactly, e.g. after
    the server restarted) goes to the reset listeners once the events before it have been
    delivered; a stream without ``watch_resets`` reports none.

    Args:
        stream: the subscription to consume (a ``HubStream`` in-process, a ``HubEventStream``
            over the network). The source owns it from now on and closes it in :meth:`stop`.

    Usage::

        source = StreamSource(HubStream(hub, ["metrics"]))
        unsubscribe = source.subscribe(lambda events: print(len(events)))
        await source.start()  # in a served session: pn.state.onload(source.start)
        ...
        await source.stop()      # a served session's source also stops when the browser leaves
    """

    status = param.ClassSelector(
        class_=ConnectionStatus,
        default=ConnectionStatus(),
        doc="Latest connection status reported by the stream.",
    )
    events_received = param.Integer(
        default=0, bounds=(0, None), doc="Events delivered to listeners since the source started."
    )
    running = param.Boolean(
        default=False, doc="Whether the consuming task is alive (started and not yet ended)."
    )
    resets_received = param.Integer(
        default=0, bounds=(0, None), doc="Resets handed to reset listeners since the start."
    )

    def __init__(self, stream: EventStream, **params: Any) -> None:
        super().__init__(**params)
        self.stream = stream
        self._listeners: list[Listener] = []
        self._reset_listeners: list[ResetListener] = []
        self._pending: list[Event] = []
        self._flush_handle: asyncio.Handle | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopped = False
        self._forget_session: Callable[[], None] = lambda: None
        self.status = stream.status
        self._unwatch: Callable[[], None] | None = stream.watch_status(self._on_status)
        watch_resets = getattr(stream, "watch_resets", None)
        self._unwatch_resets: Callable[[], None] | None = (
            watch_resets(self._on_reset) if watch_resets is not None else None
        )

    def subscribe(
        self, callback: Listener, *, on_reset: ResetListener | None = None
    ) -> Callable[[], None]:
        """Call ``callback(events)`` with every batch from now on, and ``on_reset(reset)``
        for every gap the stream reports, after the events that came before it.

        Returns:
            A function that removes both callbacks again.
        """
        self._listeners.append(callback)
        if on_reset is not None:
            self._reset_listeners.append(on_reset)

        def unsubscribe() -> None:
            if callback in self._listeners:
                self._listeners.remove(callback)
            if on_reset is not None and on_reset in self._reset_listeners:
                self._reset_listeners.remove(on_reset)

        return unsubscribe

    async def start(self) -> None:
        """Start consuming on the running event loop. Idempotent.

        Await it where a loop runs: ``pn.state.onload(source.start)`` in a served session (or
        under ``panel serve``), a notebook cell, a coroutine. In a served session the source
        stops by itself when the browser leaves (:func:`~dashboard.ui.session.on_session_end`).

        Raises:
            RuntimeError: after :meth:`stop`.
        """
        if self._stopped:
            raise RuntimeError("this StreamSource was stopped; create a new one")
        if self._task is not None:
            return
        self._task = asyncio.get_running_loop().create_task(
            self._run(), name="dashboard-stream-source"
        )
        self.running = True
        self._forget_session = on_session_end(self.stop)

    async def stop(self) -> None:
        """Cancel the consuming task and close the stream; returns once it is closed.
        Idempotent, and safe before :meth:`start`."""
        if self._stopped:
            return
        self._stopped = True
        self._forget_session()
        if self._unwatch is not None:
            self._unwatch()
            self._unwatch = None
        if self._unwatch_resets is not None:
            self._unwatch_resets()
            self._unwatch_resets = None
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        self._pending.clear()
        self.running = False
        await self.stream.aclose()
        final = self.stream.status
        if final.state is not ConnectionState.CLOSED:
            final = ConnectionStatus(ConnectionState.CLOSED, final.retries, final.last_error)
        self.status = final

    #: ``contextlib.aclosing(source)`` and other closers call this name.
    aclose = stop

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        iterator = aiter(self.stream)
        try:
            async for event in iterator:
                self._pending.append(event)
                if len(self._pending) >= MAX_BATCH:
                    self._flush()
                elif self._flush_handle is None:
                    # Runs once the stream has nothing ready and the task yields: one batch
                    # holds every event that was available without waiting.
                    self._flush_handle = loop.call_soon(self._flush)
            self._flush()
        except Exception:
            logger.exception("event stream failed; the source stops")
        finally:
            aclose = getattr(iterator, "aclose", None)
            if aclose is not None:
                with contextlib.suppress(Exception):
                    await aclose()
            self.running = False

    def _flush(self) -> None:
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        batch, self._pending = self._pending, []
        if not batch:
            return
        self.events_received += len(batch)
        for listener in list(self._listeners):
            try:
                listener(batch)
            except Exception:
                logger.exception("StreamSource listener %r failed", listener)

    def _on_status(self, status: ConnectionStatus) -> None:
        self.status = status

    def _on_reset(self, reset: Reset) -> None:
        # Called by the stream inside the iteration, so this runs in the consuming task: the
        # events before the gap go out first, then the reset, then whatever follows it.
        if self._stopped:
            return
        self._flush()
        self.resets_received += 1
        for listener in list(self._reset_listeners):
            try:
                listener(reset)
            except Exception:
                logger.exception("StreamSource reset listener %r failed", listener)


class SourceView(Component):
    """Base of the components that show a :class:`StreamSource`'s events (a
    :class:`~dashboard.ui.component.Component`: layout parameters welcome).

    Keeps :meth:`push` subscribed to whatever ``source`` currently is. Subclasses call
    :meth:`_subscribe` at the end of their ``__init__``, once their buffers exist.
    """

    source = param.ClassSelector(
        class_=StreamSource, allow_None=True, doc="Where the events come from."
    )

    def __init__(self, **params: Any) -> None:
        self._unsubscribe: Callable[[], None] | None = None
        super().__init__(**params)

    def push(self, events: list[Event]) -> None:
        """Take a batch of events from the source (called by the source's task)."""
        raise NotImplementedError

    def push_reset(self, reset: Reset) -> None:
        """Take a gap in the stream (called by the source's task); ignored unless overridden."""

    @param.depends("source", watch=True)
    def _subscribe(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        if self.source is not None:
            self._unsubscribe = self.source.subscribe(self.push, on_reset=self.push_reset)


class RenderThrottle:
    """Coalesces render requests: at most ``max_per_second`` renders, the last one never lost.

    :meth:`request` schedules one render on the running loop unless one is already pending,
    spacing renders at least ``1 / max_per_second`` apart. Without a running loop (a plain
    script), it renders at once. While the page's browser connection is gone (a closed tab whose
    session Bokeh has not yet destroyed), renders are skipped: the component keeps its bounded
    buffer and the next request tries again.

    Args:
        render: what to call; it should render everything accumulated since the last call.
        max_per_second: the rate cap.
        document: returns the Bokeh document the component is shown in, if known.
    """

    def __init__(
        self,
        render: Callable[[], None],
        max_per_second: float,
        document: Callable[[], Document | None] | None = None,
    ) -> None:
        self._render = render
        self.max_per_second = max_per_second
        self._document = document
        self._handle: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._last = -math.inf

    @property
    def pending(self) -> bool:
        return self._handle is not None

    def request(self) -> None:
        if self._handle is not None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._fire()
            return
        self._loop = loop
        delay = self._last + 1.0 / self.max_per_second - loop.time()
        self._handle = loop.call_later(max(delay, 0.0), self._fire)

    def cancel(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _fire(self) -> None:
        self._handle = None
        if self._document is not None and session_detached(self._document()):
            return
        self._last = self._loop.time() if self._loop is not None else -math.inf
        try:
            self._render()
        except Exception:
            logger.exception("render failed")


def run_in_document(document: Document | None, callback: Callable[[], None]) -> None:
    """Run ``callback``, which modifies Bokeh models of ``document`` directly.

    In a served session Bokeh models may only change while the document lock is held, so the
    callback is scheduled as a next-tick callback of the document; elsewhere (notebook, tests,
    not yet displayed) it runs at once.
    """
    if document is not None and document.session_context is not None:
        with set_curdoc(document):
            pn.state.execute(callback, schedule=True)
    else:
        callback()
