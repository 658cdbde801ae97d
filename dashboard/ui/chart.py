"""A live line chart of one numeric payload field, one line per group.

Where the stream has a gap (a :class:`~dashboard.core.cursor.Reset`), every line is broken
(a NaN point, which Bokeh does not join across) instead of drawn straight over the outage.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

import panel as pn
import param
from bokeh.models.annotations import Legend, Title
from bokeh.models.formatters import DatetimeTickFormatter
from bokeh.models.labeling import NoOverlap
from bokeh.models.ranges import DataRange1d
from bokeh.models.renderers import GlyphRenderer
from bokeh.models.sources import ColumnDataSource
from bokeh.models.tickers import DatetimeTicker
from bokeh.palettes import Category10
from bokeh.plotting import figure

from ..core.cursor import Reset
from ..core.events import Event
from .source import RenderThrottle, SourceView, run_in_document

logger = logging.getLogger(__name__)

#: At most this many lines; events of further groups are dropped.
MAX_SERIES = 8
PALETTE: tuple[str, ...] = tuple(Category10[MAX_SERIES])
#: Label of the line when ``group_by`` is unset, or of events that lack the key.
DEFAULT_SERIES = "value"
#: Time-axis ticks: few enough that "12:01:03" labels never touch on a phone-wide chart.
TIME_TICKS = 3
#: Legend entries per row above the plot: at most three, and together at most about this many
#: characters, which fit a phone-wide chart.
LEGEND_COLUMNS = 3
LEGEND_ROW_CHARS = 36
#: The time axis spans at least this long, so its ticks are whole seconds even while the
#: first points are milliseconds apart.
MIN_TIME_SPAN = timedelta(seconds=10)


def time_formatter() -> DatetimeTickFormatter:
    """Clock times on the time axis, whatever the zoom: ``"12:01:03"``, ``"12:01"``,
    ``"May 04"``; never a bare ``"500ms"`` or ``":05"``, and no date line underneath
    (the feeds show the same clock)."""
    return DatetimeTickFormatter(
        microseconds="%H:%M:%S.%f",
        milliseconds="%H:%M:%S.%3N",
        seconds="%H:%M:%S",
        minsec="%H:%M:%S",
        minutes="%H:%M",
        hourmin="%H:%M",
        hours="%H:%M",
        days="%b %d",
        months="%b %Y",
        years="%Y",
        context=None,
    )


def numeric(value: Any) -> float | None:
    """``value`` as a finite float, or ``None`` (booleans, strings and NaN are not numbers)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


class LiveChart(SourceView):
    """Plots ``payload[field]`` of matching events against publish time, live.

    Events are filtered by ``channel`` and ``event`` when set; those whose field is missing or
    not a finite number are skipped. With ``group_by``, each distinct value of that payload key
    gets its own line (up to 8, in a fixed palette). Each line keeps the last ``rollover``
    points; updates are coalesced to at most ``max_renders_per_second``.

    Usage::

        LiveChart(source=source, channel="metrics", event="cpu", field="value",
                  group_by="service")
    """

    field = param.String(default="value", doc="Payload key holding the number to plot.")
    event = param.String(default=None, allow_None=True, doc="Only plot events of this name.")
    channel = param.String(default=None, allow_None=True, doc="Only plot events of this channel.")
    group_by = param.String(
        default=None, allow_None=True, doc="Payload key whose values each get their own line."
    )
    rollover = param.Integer(
        default=300, bounds=(1, 100_000), doc="Points kept per line; older points scroll off."
    )
    title = param.String(default="", doc="Chart title (defaults to the field name).")
    height = param.Integer(
        default=320, bounds=(100, 2000), allow_None=True, doc="Chart height in pixels."
    )
    max_renders_per_second = param.Number(
        default=20.0, bounds=(0.1, 240.0), doc="Upper bound on chart updates per second."
    )
    render_count = param.Integer(
        default=0, bounds=(0, None), constant=True, doc="Chart updates so far (read-only)."
    )

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self._pending: dict[str, deque[tuple[datetime, float]]] = {}
        self._series: dict[str, ColumnDataSource] = {}
        self._dropped_groups: set[str] = set()
        self.figure = figure(
            title=self.title or self.field,
            x_axis_type="datetime",
            x_range=DataRange1d(min_interval=MIN_TIME_SPAN),
            height=self.height,
            sizing_mode="stretch_width",
            tools="pan,xwheel_zoom,box_zoom,reset,save",
            toolbar_location="above",
        )
        self.figure.yaxis.axis_label = self.field
        self.figure.xaxis.formatter = time_formatter()
        self.figure.xaxis.ticker = DatetimeTicker(desired_num_ticks=TIME_TICKS)
        self.figure.xaxis.major_label_policy = NoOverlap(min_distance=8)  # drops, never overlaps
        # Above the plot, not on it: the lines stay visible; a click on an entry hides its line.
        self._legend = Legend(
            orientation="horizontal",
            click_policy="hide",
            location="top_left",
            ncols=LEGEND_COLUMNS,
            margin=0,
            border_line_alpha=0,
        )
        self.figure.add_layout(self._legend, "above")
        # A placeholder keeps Bokeh from warning about a figure without renderers until the
        # first line exists. Its one invisible point (now, 0) gives the ranges bounds, or
        # BokehJS warns "could not set initial ranges" at every paint of the empty chart.
        self._placeholder: GlyphRenderer | None = self.figure.line(
            x=[datetime.now()], y=[0.0], line_alpha=0.0
        )
        self._pane = pn.pane.Bokeh(self.figure)
        self._throttle = RenderThrottle(
            self._render, self.max_renders_per_second, document=lambda: self.figure.document
        )
        self._subscribe()

    def __panel__(self) -> pn.viewable.Viewable:
        return self._pane

    @property
    def series(self) -> dict[str, dict[str, list[Any]]]:
        """The plotted points after the last update: ``{line: {"x": [...], "y": [...]}}``."""
        return {
            name: {k: list(v) for k, v in cds.data.items()} for name, cds in self._series.items()
        }

    def push(self, events: Iterable[Event]) -> None:
        """Queue the points of matching events for the next update."""
        added = False
        for event in events:
            point = self._point(event)
            if point is None:
                continue
            group, x, y = point
            buffer = self._pending.get(group)
            if buffer is None:
                if (
                    group not in self._series
                    and len(self._series.keys() | self._pending) >= MAX_SERIES
                ):
                    if group not in self._dropped_groups:
                        self._dropped_groups.add(group)
                        logger.warning(
                            "LiveChart: more than %d lines; %r dropped", MAX_SERIES, group
                        )
                    continue
                buffer = self._pending[group] = deque(maxlen=self.rollover)
            buffer.append((x, y))
            added = True
        if added:
            self._throttle.request()

    def push_reset(self, reset: Reset) -> None:
        """Break every line where the stream has a gap in the chart's channel."""
        if self.channel is not None and reset.channel != self.channel:
            return
        now = datetime.now()  # naive local time, like the points
        for group in self._series.keys() | self._pending.keys():
            buffer = self._pending.get(group)
            if buffer is None:
                buffer = self._pending[group] = deque(maxlen=self.rollover)
            if buffer and math.isnan(buffer[-1][1]):
                continue  # already broken here
            buffer.append((now, math.nan))
        if self._pending:
            self._throttle.request()

    def _point(self, event: Event) -> tuple[str, datetime, float] | None:
        if self.channel is not None and event.channel != self.channel:
            return None
        if self.event is not None and event.name != self.event:
            return None
        try:
            data = event.data
        except ValueError:
            return None
        if not isinstance(data, dict):
            return None
        y = numeric(data.get(self.field))
        if y is None:
            return None
        group = DEFAULT_SERIES
        if self.group_by is not None and self.group_by in data:
            group = str(data[self.group_by])[:80]
        # Naive local time: Bokeh shows it as is, so the axis matches the feed's clock.
        return group, datetime.fromtimestamp(event.published_at), y

    @param.depends("max_renders_per_second", watch=True)
    def _rerate(self) -> None:
        self._throttle.max_per_second = self.max_renders_per_second

    @param.depends("title", "field", watch=True)
    def _retitle(self) -> None:
        def apply() -> None:
            if isinstance(self.figure.title, Title):
                self.figure.title.text = self.title or self.field
            self.figure.yaxis.axis_label = self.field

        run_in_document(self.figure.document, apply)
        pn.io.push_notebook(self._pane)

    def _render(self) -> None:
        pending, self._pending = self._pending, {}
        if pending:
            run_in_document(self.figure.document, lambda: self._apply(pending))

    def _apply(self, pending: dict[str, deque[tuple[datetime, float]]]) -> None:
        for group, points in pending.items():
            cds = self._series.get(group) or self._add_series(group)
            xs, ys = zip(*points, strict=True)
            cds.stream({"x": list(xs), "y": list(ys)}, rollover=self.rollover)
        pn.io.push_notebook(self._pane)
        with param.edit_constant(self):
            self.render_count += 1

    def _add_series(self, group: str) -> ColumnDataSource:
        cds = ColumnDataSource(data={"x": [], "y": []}, name=group)
        color = PALETTE[len(self._series) % len(PALETTE)]
        self.figure.line(x="x", y="y", source=cds, legend_label=group, line_width=2, color=color)
        if self._placeholder is not None:
            self.figure.renderers.remove(self._placeholder)
            self._placeholder = None
        self._series[group] = cds
        longest = max(len(name) for name in self._series)
        self._legend.ncols = max(1, min(LEGEND_COLUMNS, LEGEND_ROW_CHARS // longest))
        return cds
