"""The notification center: a bell with an unread badge, the inbox, and a toast for each new one.

:class:`NotificationCenter` takes a :class:`~dashboard.client.UserConnection`, never a URL; the
inbox it shows is :class:`~dashboard.client.inbox.Inbox` (stored notifications, then live ones,
each announced once per session). Read state is the server's: marking one read here clears it in
the user's other tabs too, and theirs here.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from html import escape
from typing import Any

import panel as pn
import param
from panel.io.notifications import NotificationAreaBase

from ..client.connection import UserConnection
from ..client.inbox import Inbox
from ..core.errors import DashboardError
from ..store.notifications import Notification
from .component import Component
from .lifecycle import on_session_end
from .notification_render import (
    BADGE_CSS,
    NOTIFICATION_CSS,
    render_badge,
    render_notification,
    toast_text,
)
from .source import RenderThrottle
from .tasks import BackgroundTasks, owner_loop

log = logging.getLogger(__name__)

#: Seconds between re-renders that keep "5 min ago" true.
CLOCK_INTERVAL = 30.0

# In the page's header, whose text does not wrap (Bootstrap's template): the list wraps again.
# On a phone it spans the screen below the header rather than hang off its left edge.
_DROPDOWN_CSS = """
:host { position: absolute; right: 12px; top: 52px; width: 380px; max-height: 70vh;
  overflow-y: auto; z-index: 1000; background: #fff; color: #0f172a; border-radius: 8px;
  box-shadow: 0 8px 24px rgba(15, 23, 42, 0.25); padding: 8px; white-space: normal; }
@media (max-width: 767.98px) {
  :host { position: fixed; left: 8px; right: 8px; top: 56px; width: auto; }
}
"""


class NotificationCenter(Component):
    """A bell with the unread count; opening it shows the newest notifications.

    Each notification that arrives while the page is open also pops up as a toast of its type
    (on ``toasts``, the page's notification area). Call :meth:`start` once a loop runs.

    Usage::

        center = NotificationCenter(connection=connection)
        center  # display it
        await center.start()
    """

    connection = param.ClassSelector(
        class_=UserConnection, doc="The user's connection; their inbox is shown."
    )
    sizing_mode = param.Selector(
        default=None,
        objects=Component.param.sizing_mode.objects,
        allow_None=True,
        doc="How the component sizes itself; by default as wide as the bell (a page header).",
    )
    toasts = param.ClassSelector(
        class_=NotificationAreaBase,
        allow_None=True,
        doc="Where toasts go; the session's notification area (pn.state.notifications) when "
        "not given; no toasts when there is none.",
    )
    open = param.Boolean(default=False, doc="Whether the list is shown.")
    dropdown = param.Boolean(
        default=False, doc="Float the list below the bell (for a page header) instead of inline."
    )
    max_shown = param.Integer(default=20, bounds=(1, 200), doc="Notifications listed at most.")
    toast_duration = param.Integer(
        default=5000, bounds=(0, None), doc="Milliseconds a toast stays; 0 keeps it until closed."
    )
    unread = param.Integer(default=0, bounds=(0, None), doc="Unread count (output).")
    error = param.String(default="", doc="The last failure to show the user, if any.")

    def __init__(self, **params: Any) -> None:
        if params.get("connection") is None:
            raise TypeError("NotificationCenter needs a connection=UserConnection(...)")
        if "toasts" not in params:
            params["toasts"] = pn.state.notifications  # captured now: tasks have no session
        super().__init__(**params)
        self.inbox: Inbox | None = None
        self._rows: dict[int, tuple[pn.Row, pn.pane.HTML, pn.widgets.Button]] = {}
        self._tasks = BackgroundTasks()
        self._unlisten: list[Callable[[], None]] = []
        self._forget_session: Callable[[], None] = lambda: None
        self._throttle = RenderThrottle(self._render, 5.0, document=lambda: pn.state.curdoc)
        self.bell = pn.widgets.Toggle(
            label="🔔", value=self.open, width=48, css_classes=["dashboard-bell"]
        )
        self.badge = pn.pane.HTML(
            render_badge(0, loaded=False),
            stylesheets=[BADGE_CSS],
            css_classes=["dashboard-unread"],
        )
        self.mark_all = pn.widgets.Button(label="Mark all read", disabled=True)
        self.entries = pn.Column(sizing_mode="stretch_width", css_classes=["dashboard-notices"])
        self.empty = pn.pane.HTML('<div class="notice-empty">No notifications.</div>')
        self.error_line = pn.pane.HTML("")
        self.panel = pn.Column(
            pn.Row(pn.pane.HTML("<b>Notifications</b>"), self.mark_all),
            self.empty,
            self.entries,
            self.error_line,
            visible=self.open,
            sizing_mode="stretch_width",
            stylesheets=[_DROPDOWN_CSS] if self.dropdown else [],
            css_classes=["dashboard-notification-list"],
        )
        self.bell.link(self, value="open", bidirectional=True)
        self.mark_all.on_click(lambda _event: self._spawn(self.mark_all_read()))
        self._layout = pn.Column(pn.Row(self.bell, self.badge), self.panel)

    def __panel__(self) -> pn.Column:
        return self._layout

    # -- public ------------------------------------------------------------------------

    @property
    def notifications(self) -> list[Notification]:
        """What the inbox holds, newest first."""
        return list(self.inbox.items.values()) if self.inbox is not None else []

    async def start(self) -> None:
        """Read the inbox and follow it live. Failures show in :attr:`error`. In a served
        session it stops by itself when the browser leaves."""
        assert self.connection is not None
        self._forget_session = on_session_end(self.stop)
        try:
            self.inbox = await self.connection.inbox()
        except DashboardError as exc:
            self.error = f"Notifications are unavailable: {exc}"
            return
        self._unlisten = [
            self.inbox.on_change(self._throttle.request),
            self.inbox.on_new(self._toast),
        ]
        self._render()
        self._spawn(self._tick())

    async def stop(self) -> None:
        """Stop following the inbox (the connection stays open: its owner closes it).
        Idempotent."""
        self._forget_session()
        for unlisten in self._unlisten:
            unlisten()
        self._unlisten = []
        self._tasks.cancel_all()
        self._throttle.cancel()

    async def mark_read(self, id: int) -> None:
        if self.inbox is not None:
            await self._guarded(self.inbox.mark_read(id))

    async def mark_all_read(self) -> None:
        if self.inbox is not None:
            await self._guarded(self.inbox.mark_all_read())

    # -- rendering -----------------------------------------------------------------------

    def _render(self) -> None:
        inbox = self.inbox
        if inbox is None:
            return
        shown = list(inbox.items.values())[: self.max_shown]
        rows = [self._row(notification) for notification in shown]
        for id in set(self._rows) - {notification.id for notification in shown}:
            del self._rows[id]
        with pn.io.hold():
            self.entries.objects = rows
            self.empty.visible = not rows
            self.unread = inbox.unread_count
            self.badge.object = render_badge(inbox.unread_count)
            self.mark_all.disabled = inbox.unread_count == 0

    def _row(self, notification: Notification) -> pn.Row:
        markup = render_notification(notification)
        cached = self._rows.get(notification.id)
        if cached is None:
            entry = pn.pane.HTML(
                markup, sizing_mode="stretch_width", stylesheets=[NOTIFICATION_CSS]
            )
            button = pn.widgets.Button(label="Mark read", width=90, margin=(8, 4))
            button.on_click(self._mark_read_on_click(notification.id))
            cached = (pn.Row(entry, button, sizing_mode="stretch_width"), entry, button)
            self._rows[notification.id] = cached
        row, entry, button = cached
        entry.object = markup
        button.visible = not notification.read
        return row

    def _mark_read_on_click(self, id: int) -> Callable[[object], None]:
        def on_click(_event: object) -> None:
            self._spawn(self.mark_read(id))

        return on_click

    def _spawn(self, coroutine: Coroutine[Any, Any, Any]) -> None:
        # Buttons may be clicked on another thread than the connection's (a Jupyter kernel's
        # subshell): the work runs on the connection's loop (dashboard.ui.tasks).
        self._tasks.spawn(coroutine, owner_loop(self.connection))

    def _toast(self, notification: Notification) -> None:
        if self.toasts is None:
            return
        self.toasts.send(
            toast_text(notification), duration=self.toast_duration, type=notification.type
        )

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(CLOCK_INTERVAL)
            self._throttle.request()

    @param.depends("error", watch=True)
    def _show_error(self) -> None:
        self.error_line.object = f"<small>{escape(self.error)}</small>" if self.error else ""

    @param.depends("open", watch=True)
    def _toggle(self) -> None:
        self.panel.visible = self.open

    async def _guarded(self, action: Coroutine[Any, Any, Any]) -> None:
        try:
            await action
            self.error = ""
        except DashboardError as exc:
            self.error = f"Could not update: {exc}"
