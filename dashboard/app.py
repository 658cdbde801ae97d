"""The served dashboard: composes the ``ui`` components around one event stream, nothing else.

The caller decides where events come from and hands in the stream, e.g.::

    pn.serve({"/": lambda: create_dashboard(HubStream(hub, CHANNELS))})          # in-process
    pn.serve({"/": lambda: create_dashboard(HubEventStream(url, CHANNELS))})     # --feed URL

Call it once per session (the lambda above): each page gets its own stream and source, started
when the page has loaded and stopped when the session is destroyed.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

import panel as pn

from .core.connection import EventStream
from .ui import ConnectionBadge, LiveChart, LiveFeed, StreamSource

DEFAULT_TITLE = "Realtime dashboard"

_ABOUT = """
Events flow from publishers through the hub to this page as they happen. The feeds show the
latest events, newest first; the charts plot CPU and latency per service from `metrics`.
"""


def _channels_html(channels: Sequence[str]) -> str:
    if not channels:
        return "<p>All channels of the stream.</p>"
    items = "".join(f"<li><code>{html.escape(name)}</code></li>" for name in channels)
    return f'<ul class="dashboard-channels">{items}</ul>'


def create_dashboard(
    stream: EventStream, *, title: str = DEFAULT_TITLE
) -> pn.template.BaseTemplate:
    """Build one session's dashboard page around ``stream``.

    Args:
        stream: the events to show; the page owns it from now on and closes it when the
            session ends.
        title: page and header title.

    Returns:
        A template; serve it (``pn.serve``) or display it in a notebook.

    Outside a served session (a notebook, a test) the source starts at once, which requires a
    running event loop; stop it with ``dashboard.source.stop()`` where ``dashboard`` is the
    returned template.
    """
    source = StreamSource(stream)
    badge = ConnectionBadge(source=source)
    activity = LiveFeed(
        source=source, title="Deploys and alerts", channels=["deploys", "alerts"], max_items=30
    )
    feed = LiveFeed(source=source, title="All events", max_items=50)
    cpu = LiveChart(
        source=source,
        channel="metrics",
        event="cpu",
        field="value",
        group_by="service",
        title="CPU by service (%)",
        height=280,
    )
    latency = LiveChart(
        source=source,
        channel="metrics",
        event="latency",
        field="value",
        group_by="service",
        title="Latency by service (ms)",
        height=280,
    )
    channels = tuple(getattr(stream, "channels", ()) or ())

    # BootstrapTemplate's CSS and JS ship inside Panel (dist/bundled), so the page renders
    # without internet access.
    template = pn.template.BootstrapTemplate(
        title=title,
        sidebar_width=300,
        header_background="#1e293b",
        sidebar=[
            pn.pane.Markdown("### Connection"),
            badge,
            pn.pane.Markdown("### About"),
            pn.pane.Markdown(_ABOUT),
            pn.pane.Markdown("### Channels"),
            pn.pane.HTML(_channels_html(channels)),
        ],
        main=[
            pn.Row(
                pn.Column(cpu, sizing_mode="stretch_width"),
                pn.Column(latency, sizing_mode="stretch_width"),
                sizing_mode="stretch_width",
            ),
            pn.Row(
                pn.Column(activity, sizing_mode="stretch_width"),
                pn.Column(feed, sizing_mode="stretch_width"),
                sizing_mode="stretch_width",
            ),
        ],
    )
    # Keep the parts reachable for callers and tests: the template is what they get back.
    template.source = source  # type: ignore[attr-defined]
    template.components = {  # type: ignore[attr-defined]
        "badge": badge,
        "activity": activity,
        "feed": feed,
        "cpu": cpu,
        "latency": latency,
    }

    pn.state.onload(source.start)

    def stop(_context: object) -> None:
        source.stop()

    pn.state.on_session_destroyed(stop)
    return template
