"""A gap in the stream (a reset) is shown: a marker in the feed, a break in the chart's lines.

Gaps are provoked for real: a cursor from another epoch, a history too short for a slow
consumer, and an upstream server that restarts under a ``HubEventStream``.
"""

from __future__ import annotations

import html
import itertools
import math
from collections.abc import AsyncIterator

import aiohttp
import pytest

from dashboard.client import HubEventStream
from dashboard.core.cursor import Reset
from dashboard.core.history import HistoryLimits
from dashboard.hub import Hub, HubStream
from dashboard.hub.backends.memory import MemoryBackend
from dashboard.ui import LiveChart, LiveFeed, StreamSource
from tests.processes import dashboard_process, free_port
from tests.waiting import until

pytestmark = pytest.mark.timeout(30)
TOKEN = "gaps-publish-token-0123456"


@pytest.fixture
async def hub() -> AsyncIterator[Hub]:
    async with Hub() as hub:
        yield hub


def values(feed: LiveFeed) -> list[object]:
    """The feed, newest first: each event's value, ``"gap"`` for a marker."""
    return ["gap" if not hasattr(item, "data") else item.data["value"] for item in feed._items]


async def test_a_cursor_from_another_epoch_is_a_marker_in_the_feed(hub: Hub) -> None:
    await hub.publish("alerts", "alert", {"value": 0})
    stream = HubStream(hub, ["alerts"], last_event_id="otherEpoch|alerts:7")
    source = StreamSource(stream)
    feed = LiveFeed(source=source)
    other = LiveFeed(source=source, channels=["deploys"])  # not its channel: no marker
    await source.start()
    try:
        await until(lambda: source.resets_received == 1)
        await hub.publish("alerts", "alert", {"value": 1})
        # The marker, then this history's whole content (it is news too), then the live one.
        await until(lambda: values(feed) == [1, 0, "gap"])
        assert stream.resets == [Reset("alerts", "epoch", 0)]
        (gap,) = feed.gaps
        assert gap.reset.reason == "epoch"
        assert 'class="live-feed-reset"' in feed.html
        assert "stream reset on alerts: events may be missing (the server restarted)" in feed.html
        assert feed.html.index("value=0") < feed.html.index("stream reset")  # newest first
        assert other.gaps == [] and "live-feed-reset" not in other.html
    finally:
        await source.stop()


async def test_a_slow_consumer_past_the_history_sees_how_many_events_it_missed() -> None:
    async with Hub(MemoryBackend(HistoryLimits(max_events=3)), queue_size=4) as hub:
        stream = HubStream(hub, ["metrics"])
        source = StreamSource(stream)
        feed = LiveFeed(source=source, max_items=100)
        chart = LiveChart(source=source, channel="metrics", field="value", group_by="service")
        await source.start()
        try:
            await until(lambda: source.status.connected)
            await hub.publish("metrics", "cpu", {"service": "api", "value": 1})
            await until(lambda: values(feed) == [1])
            # Published without yielding: the queue (4) overflows, the history (3) cannot
            # fill in the rest, so the stream resubscribes with an explicit gap.
            for value in range(2, 20):
                await hub.publish("metrics", "cpu", {"service": "api", "value": value})
            await until(lambda: source.resets_received == 1)
            await hub.publish("metrics", "cpu", {"service": "api", "value": 20})
            await until(lambda: values(feed)[0] == 20)
            (reset,) = stream.resets
            assert reset.reason == "expired" and reset.missed is not None and reset.missed > 0
            shown = values(feed)
            assert shown.count("gap") == 1
            before, after = shown[shown.index("gap") + 1 :], shown[: shown.index("gap")]
            assert min(after) > max(before)  # the marker sits where the gap is
            assert len(before) + len(after) + reset.missed == 20  # nothing else went missing
            marker = f"{reset.missed} events missing (older than the server's history)"
            assert marker in html.unescape(feed.html)
            await until(lambda: 20 in chart.series.get("api", {}).get("y", []))
            ys = chart.series["api"]["y"]
            breaks = [i for i, y in enumerate(ys) if math.isnan(y)]
            assert len(breaks) == 1 and 0 < breaks[0] < len(ys) - 1  # between the two runs
        finally:
            await source.stop()


async def publish(url: str, value: int) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{url}/api/publish",
            json={"channel": "metrics", "event": "cpu", "data": {"service": "api", "value": value}},
            headers={"Authorization": f"Bearer {TOKEN}"},
        ) as response,
    ):
        assert response.status == 200, await response.text()


@pytest.mark.timeout(90)
async def test_an_upstream_restart_in_feed_mode_marks_the_gap_and_breaks_the_lines() -> None:
    """What ``dashboard serve --feed`` sees: the upstream ``dashboard serve`` restarts (a new
    epoch), the stream reconnects with its old cursor and the server answers ``event: reset``."""
    port = free_port()
    env = {"DASHBOARD_TOKEN": TOKEN}
    stream = HubEventStream(
        f"http://127.0.0.1:{port}", ["metrics"], backoff=lambda _initial: itertools.repeat(0.1)
    )
    source = StreamSource(stream)
    feed = LiveFeed(source=source)
    chart = LiveChart(source=source, channel="metrics", field="value", group_by="service")
    try:
        async with dashboard_process("--no-demo", env=env, port=port) as upstream:
            await source.start()
            await until(lambda: source.status.connected, timeout=10)
            for value in (1, 2):
                await publish(upstream.url, value)
            await until(lambda: values(feed) == [2, 1])
            await until(lambda: chart.series.get("api", {}).get("y") == [1, 2])
        async with dashboard_process("--no-demo", env=env, port=port) as upstream:
            await until(lambda: len(stream.resets) == 1 and source.status.connected, 10)
            await publish(upstream.url, 3)
            await until(lambda: values(feed) == [3, "gap", 2, 1])
        assert stream.resets == [Reset("metrics", "epoch", 0)]
        assert "stream reset on metrics: events may be missing (the server restarted)" in feed.html
        await until(lambda: len(chart.series["api"]["y"]) == 4)
        ys = chart.series["api"]["y"]
        assert ys[:2] == [1, 2] and math.isnan(ys[2]) and ys[3] == 3  # no line over the outage
    finally:
        await source.stop()


def test_reset_markers_escape_what_a_foreign_server_says() -> None:
    from dashboard.ui.live_feed import Gap, render_entries

    reset = Reset("alerts", "<img src=x onerror=alert(1)>", 0)
    markup = render_entries([Gap(reset, 0.0)], str)
    assert "<img" not in markup and "&lt;img src=x onerror=alert(1)&gt;" in markup


async def test_a_foreign_reset_without_an_offset_still_reads_as_a_reset() -> None:
    """``HubEventStream`` turns any ``reset`` naming a channel into a ``Reset``; the gap is
    computed from its own offsets when the server does not say how many events it lost."""
    stream = HubEventStream("http://127.0.0.1:9", ["a"])
    seen: list[Reset] = []
    stream.watch_resets(seen.append)
    stream._positions["a"] = ("ep", 4)
    stream._on_reset({"channel": "a", "reason": "expired", "offset": 10})
    stream._on_reset({"channel": "a", "reason": 7, "offset": "x", "missed": True})
    assert seen == [Reset("a", "expired", 10, 6), Reset("a", "unknown", 0, None)]
    await stream.aclose()
