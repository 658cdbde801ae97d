"""A live, newest-first list of events, safe against HTML injection and event bursts.

Where the stream has a gap (a :class:`~dashboard.core.cursor.Reset`: the server restarted, or
the history no longer reached back to the feed's position), the feed shows a marker line, so
events before and after the gap never pass for one unbroken sequence.
"""

from __future__ import annotations

import html
import json
import logging
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from itertools import islice
from typing import Any

import panel as pn
import param

from ..core.cursor import Reset
from ..core.events import Event
from .source import RenderThrottle, SourceView

logger = logging.getLogger(__name__)

#: What an empty feed says.
EMPTY_TEXT = "Waiting for events…"
#: Payload keys whose value, when a string, says it all.
_MESSAGE_KEYS = ("message", "text", "title")
_MAX_TEXT = 300

#: Left-border colours by level; the level comes from the payload or the event name.
LEVEL_COLORS = {
    "critical": "#dc2626",
    "error": "#dc2626",
    "failed": "#dc2626",
    "warning": "#d97706",
    "alert": "#d97706",
    "deploy": "#2563eb",
    "started": "#2563eb",
    "succeeded": "#16a34a",
    "info": "#64748b",
}

_CSS = """
.live-feed-title { font-weight: 600; margin: 0 0 6px 0; }
.live-feed-list { list-style: none; margin: 0; padding: 0; font-family: ui-monospace, monospace;
  font-size: 12.5px; }
.live-feed-entry { padding: 3px 8px; margin: 0 0 2px 0; border-left: 3px solid #cbd5e1;
  white-space: pre-wrap; word-break: break-word; }
.live-feed-empty { color: #64748b; font-style: italic; }
.live-feed-reset { padding: 3px 8px; margin: 4px 0; color: #b45309; background: #fffbeb;
  border-top: 1px dashed #d97706; border-bottom: 1px dashed #d97706; text-align: center;
  white-space: pre-wrap; word-break: break-word; }
"""

#: What a reset's reason means, as the marker says it.
RESET_REASONS = {
    "expired": "older than the server's history",
    "epoch": "the server restarted",
}


@dataclass(frozen=True)
class Gap:
    """A reset as the feed shows it: the channel that has a gap, and when the feed heard of it."""

    reset: Reset
    at: float


Entry = Event | Gap


def describe_reset(reset: Reset, at: float | None = None) -> str:
    """The marker line of a gap, plain text, e.g.
    ``"— 12:01:03 · stream reset on alerts: 12 events missing (older than the server's
    history) —"``."""
    stamp = time.strftime("%H:%M:%S", time.localtime(time.time() if at is None else at))
    if reset.missed is None:
        gap = "events may be missing"
    elif reset.missed == 1:
        gap = "1 event missing"
    else:
        gap = f"{reset.missed} events missing"
    reason = RESET_REASONS.get(reset.reason) or reset.reason[:80] or "unknown reason"
    return f"— {stamp} · stream reset on {reset.channel}: {gap} ({reason}) —"


def _compact(value: Any) -> str:
    if isinstance(value, float):
        return format(value, ".4g")
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def describe_payload(data: Any) -> str:
    """A one-line, plain-text summary of an event payload.

    A string under ``message``, ``text`` or ``title`` is used as is; other objects become
    compact ``key=value`` pairs, anything else compact JSON.
    """
    if isinstance(data, dict):
        for key in _MESSAGE_KEYS:
            if isinstance(data.get(key), str):
                return data[key]
        return " ".join(f"{key}={_compact(value)}" for key, value in data.items())
    if data is None:
        return ""
    return _compact(data)


def format_event(event: Event) -> str:
    """The default feed line: ``"12:01:03 · metrics · cpu · service=api value=73.2"``."""
    stamp = time.strftime("%H:%M:%S", time.localtime(event.published_at))
    try:
        text = describe_payload(event.data)
    except ValueError:
        text = event.data_json
    parts = [stamp, event.channel, event.name]
    if text:
        parts.append(text)
    return " · ".join(parts)


def event_level(event: Event) -> str | None:
    """The level used to colour an entry: the payload's severity/level/status, else the name."""
    try:
        data = event.data
    except ValueError:
        data = None
    if isinstance(data, dict):
        for key in ("severity", "level", "status"):
            value = data.get(key)
            if isinstance(value, str) and value.lower() in LEVEL_COLORS:
                return value.lower()
    name = event.name.lower()
    return name if name in LEVEL_COLORS else None


def render_entries(
    events: Iterable[Entry],
    formatter: Callable[[Event], str],
    title: str = "",
    empty: str = EMPTY_TEXT,
) -> str:
    """HTML for the feed: events and the markers of gaps. Every string that comes from an
    event, a reset or the user is escaped."""
    rows = []
    for event in events:
        if isinstance(event, Gap):
            reset = event.reset
            rows.append(
                f'<li class="live-feed-reset" data-channel="{html.escape(reset.channel)}" '
                f'data-reason="{html.escape(reset.reason)}">'
                f"{html.escape(describe_reset(reset, event.at))}</li>"
            )
            continue
        try:
            text = str(formatter(event))
        except Exception:
            logger.exception("feed formatter failed; using the default")
            text = format_event(event)
        if len(text) > _MAX_TEXT:
            text = text[: _MAX_TEXT - 1] + "…"
        level = event_level(event)
        color = f' style="border-left-color:{LEVEL_COLORS[level]}"' if level else ""
        rows.append(
            f'<li class="live-feed-entry" data-channel="{html.escape(event.channel)}" '
            f'data-event="{html.escape(event.name)}" data-offset="{event.offset}" '
            f'data-level="{html.escape(level or "")}"{color}>{html.escape(text)}</li>'
        )
    body = "".join(rows) or f'<li class="live-feed-empty">{html.escape(empty)}</li>'
    heading = f'<div class="live-feed-title">{html.escape(title)}</div>' if title else ""
    return f'<div class="live-feed">{heading}<ul class="live-feed-list">{body}</ul></div>'


class LiveFeed(SourceView):
    """The latest events of a :class:`StreamSource`, newest first.

    Bursts are coalesced: events accumulate in a buffer bounded by ``max_items`` (older ones in
    a burst are dropped, they would scroll off anyway) and the feed re-renders at most
    ``max_renders_per_second`` times, with every pending event shown by the last render. A gap
    in the stream of a shown channel is a marker line (class ``live-feed-reset``) in its place
    among the events; it counts towards ``max_items``.

    Usage::

        LiveFeed(source=source, max_items=20, formatter=lambda e: f"{e.name}: {e.data}")
    """

    max_items = param.Integer(
        default=50, bounds=(1, 5000), doc="How many of the latest events are shown."
    )
    formatter = param.Callable(
        default=format_event,
        doc="Turns an event into one line of plain text; the feed escapes it for HTML.",
    )
    title = param.String(default="Live events", doc="Heading shown above the list.")
    empty_text = param.String(
        default=EMPTY_TEXT, doc="Shown until an event arrives (say what is being waited for)."
    )
    channels = param.List(
        default=[], item_type=str, doc="Only show events of these channels; all when empty."
    )
    max_renders_per_second = param.Number(
        default=20.0, bounds=(0.1, 240.0), doc="Upper bound on re-renders per second."
    )
    render_count = param.Integer(
        default=0, bounds=(0, None), constant=True, doc="Renders so far (read-only)."
    )

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self._items: deque[Entry] = deque(maxlen=self.max_items)
        self._buffer: deque[Entry] = deque(maxlen=self.max_items)
        self._throttle = RenderThrottle(
            self._render, self.max_renders_per_second, document=lambda: pn.state.curdoc
        )
        self._pane = pn.pane.HTML(
            render_entries((), self.formatter, self.title, self.empty_text),
            css_classes=["live-feed-pane"],
            stylesheets=[_CSS],
        )
        self._subscribe()

    def __panel__(self) -> pn.viewable.Viewable:
        return self._pane

    @property
    def events(self) -> list[Event]:
        """The events on screen after the last render, newest first."""
        return [item for item in self._items if isinstance(item, Event)]

    @property
    def gaps(self) -> list[Gap]:
        """The gap markers on screen after the last render, newest first."""
        return [item for item in self._items if isinstance(item, Gap)]

    @property
    def html(self) -> str:
        """The HTML currently rendered."""
        return str(self._pane.object)

    def push(self, events: Iterable[Event]) -> None:
        """Queue events for the next render (what the source subscription calls)."""
        if self.channels:
            wanted = set(self.channels)
            events = [event for event in events if event.channel in wanted]
            if not events:
                return
        self._buffer.extend(events)
        self._throttle.request()

    def push_reset(self, reset: Reset) -> None:
        """Queue a marker for a gap in one of the feed's channels (what the source calls)."""
        if self.channels and reset.channel not in self.channels:
            return
        self._buffer.append(Gap(reset, time.time()))
        self._throttle.request()

    @param.depends("max_items", watch=True)
    def _resize(self) -> None:
        # Newest first: keep the left end.
        self._items = deque(islice(self._items, self.max_items), maxlen=self.max_items)
        self._buffer = deque(self._buffer, maxlen=self.max_items)
        self._throttle.request()

    @param.depends("formatter", "title", "empty_text", watch=True)
    def _restyle(self) -> None:
        self._throttle.request()

    @param.depends("max_renders_per_second", watch=True)
    def _rerate(self) -> None:
        self._throttle.max_per_second = self.max_renders_per_second

    def _render(self) -> None:
        buffer, self._buffer = self._buffer, deque(maxlen=self.max_items)
        self._items.extendleft(buffer)  # oldest first, so the newest ends up leftmost
        markup = render_entries(self._items, self.formatter, self.title, self.empty_text)
        with pn.io.hold():
            self._pane.object = markup
            with param.edit_constant(self):
                self.render_count += 1
