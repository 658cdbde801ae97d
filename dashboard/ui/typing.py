"""A "Ada is typing…" line that clears itself after a few seconds of silence."""

from __future__ import annotations

import asyncio
import html
import time
from typing import Any

import panel as pn
import param

from ..core.typing import TYPING_TIMEOUT, TypingTracker, typing_text
from .component import Component

#: Names longer than this are cut (with "…") so one user cannot push the line off screen.
MAX_NAME_LENGTH = 40

_CSS = """
.dashboard-typing { min-height: 1.4em; line-height: 1.4em; font-size: 12px; color: #64748b;
  font-style: italic; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
"""


def short_name(name: str, limit: int = MAX_NAME_LENGTH) -> str:
    """``name`` cut to ``limit`` characters, the last of them ``…`` when it was cut."""
    name = " ".join(name.split())
    return name if len(name) <= limit else name[: limit - 1] + "…"


def render_typing(text: str) -> str:
    """HTML for the indicator line; ``text`` (made of user-chosen names) is escaped.

    The element is always there, empty when nobody types, so the layout does not jump.
    """
    return f'<div class="dashboard-typing" aria-live="polite">{html.escape(text)}</div>'


class TypingIndicator(Component):
    """Shows who is typing: ``"Ada is typing…"``, ``"Ada and Bob are typing…"``,
    ``"3 people are typing…"``.

    Feed it typing notices with :meth:`typing` (e.g. from a ``client-typing`` binding of a
    presence channel) and :meth:`stopped` when someone sends their message. Someone who sends
    no notice for ``timeout`` seconds drops off by themselves: the indicator keeps one timer on
    the running event loop, set to the next expiry. Without a running loop (a plain script)
    there is no timer and :meth:`refresh` brings the line up to date.

    The line is a ``div.dashboard-typing`` with a fixed minimum height, empty when nobody
    types.

    Usage::

        indicator = TypingIndicator(timeout=3.0)
        channel.bind("client-typing", lambda e: indicator.typing(e.user_id, e.data["name"]))
    """

    timeout = param.Number(
        default=TYPING_TIMEOUT,
        bounds=(0, None),
        inclusive_bounds=(False, True),
        doc="Seconds of silence after which someone no longer counts as typing.",
    )
    text = param.String(
        default="",
        doc="The sentence currently shown, plain text (output: set by the indicator, not by you).",
    )

    def __init__(self, **params: Any) -> None:
        params.setdefault("margin", (0, 5))
        super().__init__(**params)
        self._tracker = TypingTracker(self.timeout)
        self._timer: asyncio.TimerHandle | None = None
        self._pane = pn.pane.HTML(
            render_typing(self.text),
            css_classes=["dashboard-typing-pane"],
            stylesheets=[_CSS],
        )

    def __panel__(self) -> pn.viewable.Viewable:
        return self._pane

    @property
    def names(self) -> list[str]:
        """Display names of those typing, in the order they started (as of now)."""
        return self._tracker.active(time.monotonic())

    @property
    def html(self) -> str:
        """The HTML currently rendered."""
        return str(self._pane.object)

    def typing(self, user_id: str, name: str) -> None:
        """Mark ``user_id`` as typing now, or keep them typing for another ``timeout``.

        Args:
            user_id: who is typing (the key: a new name for the same id replaces the old).
            name: what to show; user input, escaped when rendered and cut when very long.
        """
        self._tracker.typing(str(user_id), short_name(str(name)), time.monotonic())
        self.refresh()

    def stopped(self, user_id: str) -> None:
        """Remove ``user_id`` at once (they sent their message or an explicit stop)."""
        self._tracker.stopped(str(user_id))
        self.refresh()

    def clear(self) -> None:
        """Remove everyone and cancel the timer."""
        self._tracker.clear()
        self.refresh()

    def refresh(self) -> None:
        """Recompute the sentence for the current time and re-arm the expiry timer."""
        now = time.monotonic()
        text = typing_text(self._tracker.active(now))
        if text != self.text:
            self.text = text
        self._schedule(self._tracker.next_expiry(now))

    def _schedule(self, delay: float | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if delay is None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no loop, no timer: refresh() is called by hand
        # A timer may fire a clock tick early; refresh() then simply re-arms for the rest.
        self._timer = loop.call_later(delay, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self.refresh()

    @param.depends("timeout", watch=True)
    def _retime(self) -> None:
        self._tracker.timeout = self.timeout
        self.refresh()

    @param.depends("text", watch=True)
    def _render(self) -> None:
        self._pane.object = render_typing(self.text)
