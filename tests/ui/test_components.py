"""UI components against a real in-process hub: feed, chart, badge, demo publisher, app."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import panel as pn
import pytest
from bokeh.document import Document

from dashboard.ai import DemoProvider
from dashboard.app import create_dashboard
from dashboard.client import UserConnection
from dashboard.core.connection import ConnectionState, ConnectionStatus
from dashboard.core.events import Event
from dashboard.demo import CHANNELS, SERVICES, DemoSource
from dashboard.hub import Hub, HubStream
from dashboard.ui import (
    AIChat,
    ChatRoom,
    ConnectionBadge,
    LiveChart,
    LiveFeed,
    NamePicker,
    NotificationCenter,
    PresenceList,
    StreamSource,
    TypingIndicator,
)

pytestmark = pytest.mark.timeout(30)


async def wait_for(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


@pytest.fixture
async def hub() -> AsyncIterator[Hub]:
    async with Hub() as hub:
        yield hub


@pytest.fixture
async def source(hub: Hub) -> AsyncIterator[StreamSource]:
    source = StreamSource(HubStream(hub, ["metrics", "deploys", "alerts"]))
    yield source
    await source.stop()


async def started(source: StreamSource) -> StreamSource:
    await source.start()
    await wait_for(lambda: source.status.connected)
    return source


class FakeStream:
    """An EventStream whose status the test sets; it yields no events until closed."""

    def __init__(self) -> None:
        self._status = ConnectionStatus()
        self._watchers: list[Callable[[ConnectionStatus], None]] = []
        self._closed = asyncio.Event()

    @property
    def status(self) -> ConnectionStatus:
        return self._status

    def set(self, state: ConnectionState, retries: int = 0, error: str | None = None) -> None:
        self._status = ConnectionStatus(state, retries, error)
        for callback in list(self._watchers):
            callback(self._status)

    def watch_status(self, callback: Callable[[ConnectionStatus], None]) -> Callable[[], None]:
        self._watchers.append(callback)
        return lambda: self._watchers.remove(callback)

    async def __aiter__(self) -> AsyncIterator[Event]:
        await self._closed.wait()
        return
        yield  # an async generator that ends when closed

    async def aclose(self) -> None:
        self._closed.set()


# -- StreamSource --------------------------------------------------------------------------


async def test_source_shares_one_subscription_and_batches(hub: Hub, source: StreamSource) -> None:
    batches: list[list[Event]] = []
    source.subscribe(batches.append)
    LiveFeed(source=source)
    LiveChart(source=source)
    ConnectionBadge(source=source)
    await started(source)
    await source.start()  # idempotent
    assert hub.stats().subscribers == 1

    for i in range(100):  # published without yielding: ready together, delivered together
        await hub.publish("metrics", "cpu", {"value": i})
    await wait_for(lambda: source.events_received == 100)
    assert len(batches) < 10
    assert [e.data["value"] for batch in batches for e in batch] == list(range(100))

    await source.stop()
    assert hub.stats().subscribers == 0
    assert not source.running
    assert source.status.state is ConnectionState.CLOSED


async def test_failing_listener_does_not_starve_others(hub: Hub, source: StreamSource) -> None:
    def broken(events: list[Event]) -> None:
        raise RuntimeError("boom")

    received: list[Event] = []
    source.subscribe(broken)
    unsubscribe = source.subscribe(received.extend)
    await started(source)
    await hub.publish("alerts", "alert", {"message": "one"})
    await wait_for(lambda: len(received) == 1)
    unsubscribe()
    await hub.publish("alerts", "alert", {"message": "two"})
    await wait_for(lambda: source.events_received == 2)
    assert len(received) == 1


async def test_a_stopped_source_cannot_restart(hub: Hub) -> None:
    source = StreamSource(HubStream(hub, ["metrics"]))
    await source.stop()
    with pytest.raises(RuntimeError):
        await source.start()


# -- LiveFeed ------------------------------------------------------------------------------


async def test_feed_is_newest_first_and_bounded(hub: Hub, source: StreamSource) -> None:
    feed = LiveFeed(source=source, max_items=5)
    await started(source)
    for i in range(12):
        await hub.publish("metrics", "cpu", {"service": "api", "value": i})
    await wait_for(lambda: [e.data["value"] for e in feed.events] == [11, 10, 9, 8, 7])
    assert feed.html.count('class="live-feed-entry"') == 5
    assert feed.html.index("value=11") < feed.html.index("value=7")
    assert 'data-channel="metrics"' in feed.html and 'data-event="cpu"' in feed.html

    feed.max_items = 2
    await wait_for(lambda: feed.html.count('class="live-feed-entry"') == 2)
    assert [e.data["value"] for e in feed.events] == [11, 10]


async def test_feed_default_format_and_formatter_hook(hub: Hub, source: StreamSource) -> None:
    default = LiveFeed(source=source)
    custom = LiveFeed(source=source, formatter=lambda e: f"{e.name.upper()}!{e.data['service']}")
    await started(source)
    await hub.publish("deploys", "deploy", {"service": "api", "version": "1.2.3"})
    await hub.publish("alerts", "alert", {"service": "db", "message": "disk full"})
    await wait_for(lambda: len(default.events) == 2 and len(custom.events) == 2)

    assert " · deploys · deploy · service=api version=1.2.3<" in default.html
    assert " · alerts · alert · disk full<" in default.html
    assert ">ALERT!db<" in custom.html and ">DEPLOY!api<" in custom.html


async def test_feed_escapes_everything(hub: Hub, source: StreamSource) -> None:
    default = LiveFeed(source=source)
    custom = LiveFeed(source=source, formatter=lambda e: "<script>alert(1)</script>")
    await started(source)
    await hub.publish(
        "alerts", '"><script>x()</script>', {"message": "<img src=x onerror=alert(1)>"}
    )
    await hub.publish("alerts", "alert", {"title": "<svg onload=alert(1)>", "severity": "critical"})
    await wait_for(lambda: len(default.events) == 2 and len(custom.events) == 2)

    for markup in (default.html, custom.html):
        assert "<script" not in markup and "<img" not in markup and "<svg" not in markup
    assert "&lt;img src=x onerror=alert(1)&gt;" in default.html
    assert 'data-event="&quot;&gt;&lt;script&gt;x()&lt;/script&gt;"' in default.html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in custom.html
    assert 'data-level="critical"' in default.html


async def test_feed_coalesces_bursts(hub: Hub, source: StreamSource) -> None:
    feed = LiveFeed(source=source, max_items=20, max_renders_per_second=20)
    await started(source)
    start = time.monotonic()
    for i in range(1000):
        await hub.publish("metrics", "cpu", {"value": i})
        if i % 20 == 19:
            await asyncio.sleep(0.01)  # spread the burst over ~0.5 s
    await wait_for(lambda: feed.events and feed.events[0].data["value"] == 999)
    elapsed = time.monotonic() - start

    assert feed.render_count <= 20 * elapsed + 2, (feed.render_count, elapsed)
    assert feed.render_count >= 2  # it did render while the burst went on
    assert [e.data["value"] for e in feed.events] == list(range(999, 979, -1))


# -- ConnectionBadge -----------------------------------------------------------------------


async def test_badge_follows_connection_status() -> None:
    stream = FakeStream()
    source = StreamSource(stream)
    badge = ConnectionBadge(source=source)
    assert badge.text == "● Connecting…"
    assert 'class="connection-status connection-status-connecting"' in badge.html

    stream.set(ConnectionState.OPEN)
    assert badge.text == "● Connected"
    assert ">● Connected</span>" in badge.html
    assert "connection-status-error" not in badge.html

    stream.set(ConnectionState.RECONNECTING, retries=3, error="<b>refused</b>")
    assert badge.text == "● Disconnected (Retry 3)"
    assert "connection-status-retrying" in badge.html
    assert "Last error: &lt;b&gt;refused&lt;/b&gt;" in badge.html

    stream.set(ConnectionState.CONNECTING, retries=1, error="timeout")
    assert badge.text == "● Disconnected (Retry 1)"

    stream.set(ConnectionState.CLOSED)
    assert badge.text == "● Disconnected"
    assert "connection-status-disconnected" in badge.html
    await source.stop()


async def test_badge_follows_a_real_stream(hub: Hub, source: StreamSource) -> None:
    badge = ConnectionBadge(source=source)
    await started(source)
    assert badge.text == "● Connected"
    await source.stop()
    assert badge.text == "● Disconnected"
    assert ConnectionBadge().text == "● Connecting…"


# -- LiveChart -----------------------------------------------------------------------------


async def test_chart_plots_numeric_field_per_group(hub: Hub, source: StreamSource) -> None:
    chart = LiveChart(source=source, channel="metrics", event="cpu", group_by="service")
    await started(source)
    payloads: list[Any] = [
        {"service": "api", "value": 1.5},
        {"service": "db", "value": 7},
        {"service": "api", "value": "high"},  # not a number
        {"service": "api", "value": True},  # nor is a boolean
        {"service": "api"},  # missing
        [1, 2, 3],  # not an object
        {"service": "api", "value": 2.5},
    ]
    for data in payloads:
        await hub.publish("metrics", "cpu", data)
    await hub.publish("metrics", "latency", {"service": "api", "value": 99})
    await hub.publish("alerts", "cpu", {"service": "api", "value": 98})
    await hub.publish("metrics", "cpu", {"service": "worker", "value": 0})
    await wait_for(lambda: "worker" in chart.series)

    assert {name: s["y"] for name, s in chart.series.items()} == {
        "api": [1.5, 2.5],
        "db": [7.0],
        "worker": [0.0],
    }
    assert len(chart.figure.legend.items) == 3
    assert chart.render_count >= 1


async def test_chart_rolls_over_and_coalesces(hub: Hub, source: StreamSource) -> None:
    chart = LiveChart(source=source, field="v", rollover=10, max_renders_per_second=20)
    await started(source)
    start = time.monotonic()
    for i in range(500):
        await hub.publish("metrics", "tick", {"v": i})
        if i % 20 == 19:
            await asyncio.sleep(0.01)
    await wait_for(lambda: chart.series.get("value", {}).get("y", [None])[-1] == 499)
    elapsed = time.monotonic() - start
    assert chart.series["value"]["y"] == [float(i) for i in range(490, 500)]
    assert chart.render_count <= 20 * elapsed + 2


async def test_chart_caps_the_number_of_lines(hub: Hub, source: StreamSource) -> None:
    chart = LiveChart(source=source, group_by="host")
    await started(source)
    for host in range(4):
        await hub.publish("metrics", "cpu", {"host": f"h{host}", "value": host})
    await wait_for(lambda: len(chart.series) == 4)
    for round_ in range(2):  # existing lines with new points must not count twice
        for host in range(12):
            await hub.publish("metrics", "cpu", {"host": f"h{host}", "value": round_})
    await wait_for(lambda: len(chart.series.get("h0", {}).get("y", [])) == 3)
    assert sorted(chart.series) == [f"h{i}" for i in range(8)]
    assert len({r.glyph.line_color for r in chart.figure.renderers}) == 8


# -- DemoSource ----------------------------------------------------------------------------


async def test_demo_publishes_valid_events_on_all_channels(hub: Hub) -> None:
    demo = DemoSource(
        interval=0.005,
        deploy_interval=(0.0, 0.02),
        deploy_duration=(0.0, 0.01),
        alert_probability=1.0,
        seed=7,
        max_events=400,
    )
    async with await hub.subscribe(CHANNELS, queue_size=1000) as subscription:
        await demo.start(hub)
        await asyncio.wait_for(demo.wait(), timeout=10)
        events = subscription.next_nowait(1000)
    await demo.stop()
    assert demo.published == len(events) == 400

    by_channel: dict[str, list[Event]] = {}
    for event in events:
        by_channel.setdefault(event.channel, []).append(event)
    assert set(by_channel) == set(CHANNELS)
    for event in by_channel["metrics"]:
        data = event.data
        assert event.name in ("cpu", "latency")
        assert data["service"] in SERVICES and isinstance(data["value"], float)
        assert data["unit"] == ("%" if event.name == "cpu" else "ms")
        if event.name == "cpu":
            assert 0 <= data["value"] <= 100
    for event in by_channel["deploys"]:
        data = event.data
        assert event.name == "deploy" and data["service"] in SERVICES
        assert data["status"] in ("started", "succeeded", "failed")
        assert data["version"].count(".") == 2 and data["author"]
    assert {e.data["status"] for e in by_channel["deploys"]} & {"succeeded", "failed"}
    for event in by_channel["alerts"]:
        data = event.data
        assert event.name == "alert" and data["severity"] in ("warning", "critical")
        assert data["service"] in SERVICES and data["message"]


def test_demo_is_reproducible_with_a_seed() -> None:
    first, second = DemoSource(seed=3), DemoSource(seed=3)
    assert [first.metrics() for _ in range(20)] == [second.metrics() for _ in range(20)]


async def test_demo_stop_ends_publishing(hub: Hub) -> None:
    demo = DemoSource(interval=0.01, seed=1)
    await demo.start(hub)
    await wait_for(lambda: demo.published > 0)
    await demo.stop()
    count = demo.published
    await asyncio.sleep(0.05)
    assert demo.published == count and not demo.running


# -- the app -------------------------------------------------------------------------------


async def test_create_dashboard_builds_and_goes_live(hub: Hub) -> None:
    stream = HubStream(hub, ["metrics", "deploys", "alerts"])
    template = create_dashboard(stream, title="Ops <live>")
    assert isinstance(template, pn.template.BaseTemplate)
    parts: dict[str, Any] = template.components  # type: ignore[attr-defined]
    source: StreamSource = template.source  # type: ignore[attr-defined]
    try:
        assert isinstance(parts["badge"], ConnectionBadge)
        assert isinstance(parts["feed"], LiveFeed)
        assert isinstance(parts["cpu"], LiveChart) and isinstance(parts["latency"], LiveChart)
        assert parts["activity"].channels == ["deploys", "alerts"]
        assert parts["badge"] in template.sidebar.objects
        doc = Document()
        template.server_doc(doc)  # renders every component into a Bokeh document
        assert doc.roots and doc.title == "Ops <live>"

        await wait_for(lambda: source.status.connected)  # outside a server it starts at once
        await hub.publish("metrics", "cpu", {"service": "api", "value": 42.0})
        await hub.publish("deploys", "deploy", {"service": "api", "status": "started"})
        await wait_for(lambda: bool(parts["cpu"].series))
        await wait_for(lambda: len(parts["feed"].events) == 2)
        await wait_for(lambda: len(parts["activity"].events) == 1)
        assert parts["cpu"].series["api"]["y"] == [42.0]
        assert parts["latency"].series == {}
        assert parts["activity"].events[0].channel == "deploys"
        assert parts["badge"].text == "● Connected"
    finally:
        await source.stop()
    assert hub.stats().subscribers == 0


@pytest.mark.parametrize("make", [
    lambda source: LiveChart(source=source, field="value"),
    lambda source: LiveFeed(source=source),
    lambda source: ConnectionBadge(source=source, label="Orders feed"),
])  # fmt: skip
async def test_components_take_the_layout_parameters_of_any_panel_object(hub: Hub, make) -> None:
    # Panel developers pass these to everything; the components once refused them (TypeError).
    source = StreamSource(HubStream(hub, ["metrics"]))
    component = make(source)
    component.param.update(sizing_mode="fixed", width=333, height=222, margin=(4, 8))
    component.get_root(Document())
    # What it renders took them on (for a chart, Panel gives them to the Bokeh figure).
    rendered = [view for view in component.select() if view is not component]
    layout = {(v.sizing_mode, v.width, v.height, v.margin) for v in rendered}
    assert ("fixed", 333, 222, (4, 8)) in layout
    stretched = make(source)
    stretched.get_root(Document())
    assert stretched.sizing_mode == "stretch_width"  # the default
    assert any(v.sizing_mode == "stretch_width" for v in stretched.select() if v is not stretched)
    await source.aclose()


def _offline_connection() -> UserConnection:
    # Nothing connects until start(): rendering needs no server.
    return UserConnection("http://127.0.0.1:9", "key", "token")


@pytest.mark.parametrize("make", [
    lambda: ChatRoom(connection=_offline_connection()),
    lambda: NotificationCenter(connection=_offline_connection(), toasts=None),
    lambda: AIChat(provider=DemoProvider()),
    lambda: TypingIndicator(),
    lambda: PresenceList(),
    lambda: NamePicker(),
])  # fmt: skip
def test_the_team_components_take_the_layout_parameters_too(make) -> None:
    component = make()
    component.param.update(sizing_mode="fixed", width=333, height=222, margin=(4, 8))
    component.get_root(Document())
    rendered = [view for view in component.select() if view is not component]
    assert ("fixed", 333, 222, (4, 8)) in {
        (v.sizing_mode, v.width, v.height, v.margin) for v in rendered
    }


def test_a_connection_badge_names_what_it_watches() -> None:
    badge = ConnectionBadge(label="Orders <feed>")
    assert "Orders &lt;feed&gt;" in badge.html and badge.text == "● Connecting…"
    assert "connection-status-label" not in ConnectionBadge().html
