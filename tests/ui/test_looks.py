"""How the components look, checked where Python decides it: chart axes and legend, the page's
small-screen setup, text colours, empty states. tests/browser/test_layout.py checks the page."""

from __future__ import annotations

import re
from collections import deque
from collections.abc import AsyncIterator
from datetime import datetime, timedelta

import panel as pn
import pytest
from bokeh.models import DataRange1d, Legend, NoOverlap

from dashboard.app import create_dashboard
from dashboard.hub import Hub, HubStream
from dashboard.ui import ai_chat, chat_render, live_feed, presence, status, typing
from dashboard.ui.chart import LiveChart
from dashboard.ui.layout import PAGE_CSS, VIEWPORT
from dashboard.ui.markdown_chat import MarkdownChatInterface
from dashboard.ui.notification_render import NOTIFICATION_CSS, TYPE_STYLES
from dashboard.ui.team import toast_area
from tests.contrast import AA, contrast_ratio, hex_rgb

pytestmark = pytest.mark.timeout(30)

CLOCK = re.compile(r"\d\d:\d\d(:\d\d)?")


@pytest.fixture
async def hub() -> AsyncIterator[Hub]:
    async with Hub() as hub:
        yield hub


def test_time_ticks_are_clock_times_at_every_scale_that_a_live_chart_spans():
    axis = LiveChart(title="cpu").figure.xaxis[0]
    formatter = axis.formatter
    at = datetime(2026, 5, 4, 9, 7, 3)
    for scale in ("seconds", "minsec", "minutes", "hourmin", "hours"):
        assert CLOCK.fullmatch(at.strftime(getattr(formatter, scale))), scale
    assert formatter.milliseconds.startswith("%H:%M:%S")  # never a bare "500ms"
    assert formatter.context is None  # no date line under the first tick
    # Ticks at least a second apart: the axis spans 10 s or more, with about 3 ticks.
    assert isinstance(axis.ticker.desired_num_ticks, int) and axis.ticker.desired_num_ticks <= 3
    x_range = LiveChart().figure.x_range
    assert isinstance(x_range, DataRange1d)
    assert x_range.min_interval / axis.ticker.desired_num_ticks >= timedelta(seconds=1)
    assert isinstance(axis.major_label_policy, NoOverlap)  # a label that would touch is left out


def test_the_legend_sits_above_the_plot_and_hides_lines_on_click():
    chart = LiveChart(group_by="service")
    chart._apply({"api": deque([(datetime.now(), 1.0)])})
    (legend,) = chart.figure.select(type=Legend)
    assert legend in chart.figure.above and legend not in chart.figure.center
    assert legend.click_policy == "hide"
    assert [item.label.value for item in legend.items] == ["api"]
    assert legend.ncols == 3  # short names: three a row
    chart._apply({"service-number-1": deque([(datetime.now(), 2.0)])})
    assert legend.ncols == 2  # longer ones: fewer a row, so the row fits a phone


def test_an_empty_chart_gives_its_ranges_bounds():
    """BokehJS warns "could not set initial ranges" at every paint of a chart without data."""
    chart = LiveChart()
    (renderer,) = chart.figure.renderers
    data = renderer.data_source.data
    assert len(data["x"]) == 1 and data["y"] == [0.0]
    assert renderer.glyph.line_alpha == 0.0  # invisible


async def test_the_page_has_a_viewport_and_panels_that_wrap(hub: Hub):
    template = create_dashboard(HubStream(hub, ["metrics"]))
    try:
        assert template.meta_viewport == VIEWPORT == "width=device-width, initial-scale=1"
        assert PAGE_CSS in template.config.raw_css
        assert "@media (max-width: 767.98px)" in PAGE_CSS and "#sidebar" in PAGE_CSS
        rows = template.main.objects
        assert rows and all(isinstance(row, pn.FlexBox) for row in rows)
        assert all(row.flex_wrap == "wrap" for row in rows)
    finally:
        await template.source.stop()  # type: ignore[attr-defined]


def test_an_empty_feed_says_what_it_waits_for():
    feed = live_feed.LiveFeed(empty_text="No <deploys> yet")
    assert "No &lt;deploys&gt; yet" in feed.html
    assert live_feed.LiveFeed().html.count("Waiting for events…") == 1


def test_chat_messages_override_bootstraps_placeholder_and_the_input_gets_a_line():
    interface = MarkdownChatInterface(callback=lambda *_: None)
    interface.send("hello", respond=False)
    (message,) = interface.objects
    assert any(".placeholder" in sheet and "opacity: 1" in sheet for sheet in message._stylesheets)
    assert any("flex-wrap: wrap" in sheet for sheet in interface._stylesheets)


def _rules(css: str) -> list[tuple[str, dict[str, str]]]:
    rules = []
    for selector, body in re.findall(r"([^{}]+)\{([^{}]*)\}", css):
        declarations = dict(
            (name.strip(), value.strip())
            for name, _, value in (part.partition(":") for part in body.split(";"))
            if value
        )
        rules.append((selector.strip(), declarations))
    return rules


@pytest.mark.parametrize(
    ("css", "page"),
    [
        (chat_render.CHAT_CSS, "#ffffff"),
        (NOTIFICATION_CSS, "#eff6ff"),  # an unread notification's background
        (live_feed._CSS, "#ffffff"),
        (presence._CSS, "#ffffff"),
        (status._CSS, "#ffffff"),
        (typing._CSS, "#ffffff"),
        (ai_chat._CSS, "#ffffff"),
    ],
)
def test_text_colours_reach_wcag_aa(css: str, page: str):
    checked = 0
    for selector, declarations in _rules(css):
        colour = declarations.get("color", "")
        if not re.fullmatch(r"#[0-9a-fA-F]{6}", colour):
            continue
        background = declarations.get("background", declarations.get("background-color", page))
        ratio = contrast_ratio(hex_rgb(colour), hex_rgb(background))
        assert ratio >= AA, f"{selector}: {colour} on {background} is {ratio:.2f}:1"
        checked += 1
    assert checked


def test_notification_colours_carry_white_text_in_the_list_and_the_toasts():
    for kind, (_symbol, colour) in TYPE_STYLES.items():
        assert contrast_ratio((255, 255, 255), hex_rgb(colour)) >= AA, kind
    backgrounds = {toast["type"]: toast["background"] for toast in toast_area().types}
    assert backgrounds == {kind: colour for kind, (_symbol, colour) in TYPE_STYLES.items()}
