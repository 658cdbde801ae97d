"""UI events do not run where the sockets live: the one rule for UI-triggered async work.

**The rule.** Every coroutine that a UI event starts (a widget callback, a button, Enter, a
selector, Panel's chat callback) runs as a *task* on the event loop that *owns the connection it
uses*: :attr:`UserConnection.loop <dashboard.client.UserConnection.loop>`,
:attr:`RemoteChatProvider.loop <dashboard.client.RemoteChatProvider.loop>`. Components never
``await`` such work in the callback, and never start it with the loop that happens to be running
where the callback runs. :func:`schedule` applies the rule: ``loop.create_task`` when the caller
is already on the owning loop, ``asyncio.run_coroutine_threadsafe`` from any other thread.
:class:`BackgroundTasks` keeps what was started that way, so that a component can cancel it.

**Why.** aiohttp sessions, their connections and timeouts belong to the loop they were created
on, and ``asyncio`` objects are not thread-safe. Where a callback runs depends on the host:

* in a served Bokeh session, on the server's loop, under the document lock: the owning loop;
* in a Jupyter kernel (ipykernel 7 with JupyterLab 4), widget messages are handled on a
  *subshell* thread with a loop of its own, while the connections were opened by a cell on the
  kernel's main loop. Work started there fails with ``RuntimeError: Timeout context manager
  should be used inside a task`` (aiohttp finds no task of *its* loop) or ``Future attached to a
  different loop``;
* in a plain script, a callback may run with no loop at all.

Scheduling on the owner makes all three behave as the served page does. Results come back the way
the components already publish them: through ``param`` (Panel forwards the change to the page
from whichever thread sets it).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from collections.abc import Callable, Coroutine
from typing import Any

log = logging.getLogger("dashboard.ui")

#: What :func:`schedule` returns: a task when started on the caller's own loop, else the
#: thread-safe future of a task on the owning loop.
Scheduled = asyncio.Task[Any] | concurrent.futures.Future[Any]


def running_loop() -> asyncio.AbstractEventLoop | None:
    """The loop running in this thread, or ``None``."""
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def owner_loop(owner: object) -> asyncio.AbstractEventLoop | None:
    """The loop that owns ``owner``'s sockets (its ``loop`` attribute), if it has one that is
    still open; ``None`` when it has none yet (not connected) or it is closed."""
    loop = getattr(owner, "loop", None)
    if isinstance(loop, asyncio.AbstractEventLoop) and not loop.is_closed():
        return loop
    return None


def schedule(
    coroutine: Coroutine[Any, Any, Any], loop: asyncio.AbstractEventLoop | None
) -> Scheduled:
    """Run ``coroutine`` as a task on ``loop``, the loop that owns what it uses (see the module
    doc); on the running loop when ``loop`` is ``None`` (nothing connected yet).

    Returns:
        The :class:`asyncio.Task` when the caller is on ``loop``, else the
        :class:`concurrent.futures.Future` of ``asyncio.run_coroutine_threadsafe``.

    Raises:
        RuntimeError: ``loop`` is ``None`` and no loop runs in this thread (the coroutine is
            closed, not leaked).
    """
    here = running_loop()
    target = loop if loop is not None and not loop.is_closed() else here
    if target is None:
        coroutine.close()
        raise RuntimeError("no event loop to run UI work on: start the component first")
    if target is here:
        return target.create_task(coroutine)
    return asyncio.run_coroutine_threadsafe(coroutine, target)


def call_on(loop: asyncio.AbstractEventLoop | None, callback: Callable[[], Any]) -> None:
    """Call ``callback()`` now when on ``loop`` (or ``loop`` is ``None``), else soon on ``loop``
    from its own thread: for the plain functions of asyncio objects (``Task.cancel``,
    ``Event.set``) that are not thread-safe."""
    if loop is None or loop is running_loop() or loop.is_closed():
        callback()
    else:
        loop.call_soon_threadsafe(callback)


class BackgroundTasks:
    """UI-triggered work of one component, scheduled by :func:`schedule`: a reference to each
    (the loop keeps only weak ones), a failure logged instead of lost, all cancellable."""

    def __init__(self) -> None:
        self._lock = threading.Lock()  # callbacks come from several threads
        self._tasks: set[Scheduled] = set()

    def spawn(
        self,
        coroutine: Coroutine[Any, Any, Any],
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> Scheduled:
        """Start ``coroutine`` on ``loop`` (the owning loop; by default the running one)."""
        task = schedule(coroutine, loop)
        with self._lock:
            self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def cancel_all(self) -> None:
        """Cancel everything still running, on whichever loop it runs (thread-safe)."""
        with self._lock:
            tasks = list(self._tasks)
        for task in tasks:
            if isinstance(task, asyncio.Task):
                call_on(task.get_loop(), task.cancel)
            else:
                task.cancel()  # run_coroutine_threadsafe's future cancels its task safely

    def __len__(self) -> int:
        with self._lock:
            return len(self._tasks)

    def _done(self, task: Scheduled) -> None:
        with self._lock:
            self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("background task %r failed", task, exc_info=task.exception())
