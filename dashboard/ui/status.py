"""A badge that says whether the page is receiving events, and why not."""

from __future__ import annotations

import html
from typing import Any

import panel as pn
import param

from ..core.connection import ConnectionState, ConnectionStatus
from .component import Component
from .source import StreamSource

#: (text colour, background) per look of the badge.
_COLORS = {
    "connected": ("#15803d", "#dcfce7"),
    "connecting": ("#b45309", "#fef3c7"),
    "retrying": ("#b45309", "#fef3c7"),
    "disconnected": ("#b91c1c", "#fee2e2"),
}

_CSS = """
.connection-badge { display: flex; flex-direction: column; gap: 2px; }
.connection-status { display: inline-block; padding: 3px 10px; border-radius: 999px;
  font-weight: 600; font-size: 13px; width: fit-content; }
.connection-status-error { font-size: 11px; color: #64748b; word-break: break-word; }
.connection-status-label { font-size: 12px; font-weight: 600; color: #334155;
  overflow-wrap: anywhere; }
"""


def status_kind(status: ConnectionStatus) -> str:
    """One of ``connected``, ``connecting``, ``retrying``, ``disconnected``."""
    if status.state is ConnectionState.OPEN:
        return "connected"
    if status.state is ConnectionState.CLOSED:
        return "disconnected"
    if status.state is ConnectionState.RECONNECTING or status.retries > 0:
        return "retrying"
    return "connecting"


def status_text(status: ConnectionStatus) -> str:
    """The badge text, e.g. ``"● Connected"`` or ``"● Disconnected (Retry 3)"``."""
    kind = status_kind(status)
    if kind == "connected":
        return "● Connected"
    if kind == "connecting":
        return "● Connecting…"
    if status.retries > 0:
        return f"● Disconnected (Retry {status.retries})"
    return "● Disconnected"


def render_status(status: ConnectionStatus, label: str = "") -> str:
    """HTML for ``status``, after ``label`` when given; every text is escaped (an error may
    come from anywhere)."""
    kind = status_kind(status)
    color, background = _COLORS[kind]
    badge = (
        f'<span class="connection-status connection-status-{kind}" data-state="{kind}" '
        f'style="color:{color};background:{background}">{html.escape(status_text(status))}</span>'
    )
    error = ""
    if status.last_error and kind != "connected":
        error = (
            f'<span class="connection-status-error">Last error: '
            f"{html.escape(status.last_error)}</span>"
        )
    heading = f'<span class="connection-status-label">{html.escape(label)}</span>' if label else ""
    return f'<div class="connection-badge">{heading}{badge}{error}</div>'


class ConnectionBadge(Component):
    """Shows the connection status of a :class:`StreamSource`.

    "● Connected" in green, "● Connecting…" while the first connection is made,
    "● Disconnected (Retry n)" in amber while reconnecting and "● Disconnected" in red once
    the stream has ended, with the last error in small text underneath. The badge element has
    the class ``connection-status``.
    """

    source = param.ClassSelector(
        class_=StreamSource, allow_None=True, doc="The source whose status is shown."
    )
    label = param.String(
        default="", doc='Names what the badge is about ("Orders feed"); none when empty.'
    )

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self._pane = pn.pane.HTML(
            render_status(self.status, self.label),
            stylesheets=[_CSS],
            css_classes=["connection-badge-pane"],
        )

    def __panel__(self) -> pn.viewable.Viewable:
        return self._pane

    @property
    def status(self) -> ConnectionStatus:
        """The status shown (``Connecting…`` without a source)."""
        return self.source.status if self.source is not None else ConnectionStatus()

    @property
    def text(self) -> str:
        """The badge text currently shown."""
        return status_text(self.status)

    @property
    def html(self) -> str:
        """The HTML currently rendered."""
        return str(self._pane.object)

    @param.depends("source", "source.status", "label", watch=True)
    def _update(self) -> None:
        self._pane.object = render_status(self.status, self.label)
