"""The served dashboard: composes the ``ui`` components around one event stream, nothing else.

The caller decides where events come from and hands in the stream, e.g.::

    pn.serve({"/": lambda: create_dashboard(HubStream(hub, CHANNELS))})          # in-process
    pn.serve({"/": lambda: create_dashboard(HubEventStream(url, CHANNELS))})     # --feed URL

Call it once per session (the lambda above): each page gets its own stream and source, started
when the page has loaded and stopped within about a second of the browser leaving (not when
Bokeh destroys the session, 15-30 s later).

With a :class:`~dashboard.ui.team.Viewer` (``viewer=``), the page also shows who is viewing the
dashboard (every session joins ``presence-dashboard``), a chat room, the viewer's notifications
(a bell in the header, toasts) and the AI chat. :func:`session_viewer` makes that viewer for
the current session of a :class:`~dashboard.server.DashboardServer`: the session is an
ordinary client of its own server, over loopback, so presence, typing, messages,
notifications and questions take the same path as a notebook's.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import TYPE_CHECKING

import panel as pn

from .client.ai import RemoteChatProvider
from .client.connection import UserConnection
from .core.connection import EventStream
from .core.user_tokens import IDENTITY_ADOPT_PURPOSE, issue_user_token
from .ui import ConnectionBadge, LiveChart, LiveFeed, StreamSource
from .ui.layout import fit_small_screens, side_by_side
from .ui.session import guest_identity, viewer_address, viewer_identity
from .ui.team import TeamPanel, Viewer

if TYPE_CHECKING:
    from .server import DashboardServer

DEFAULT_TITLE = "Realtime dashboard"
FEED_HEIGHT = 340  # pixels

_ABOUT = """
Events flow from publishers through the hub to this page as they happen. The feeds show the
latest events, newest first; the charts plot CPU and latency per service from `metrics`.
"""


def _channels_html(channels: Sequence[str]) -> str:
    if not channels:
        return "<p>All channels of the stream.</p>"
    items = "".join(f"<li><code>{html.escape(name)}</code></li>" for name in channels)
    return f'<ul class="dashboard-channels">{items}</ul>'


def _metric_chart(source: StreamSource, event: str, title: str) -> LiveChart:
    """One line per service of the demo's ``metrics`` events named ``event``."""
    return LiveChart(
        source=source,
        channel="metrics",
        event=event,
        field="value",
        group_by="service",
        title=title,
        height=280,
    )


def create_dashboard(
    stream: EventStream, *, title: str = DEFAULT_TITLE, viewer: Viewer | None = None
) -> pn.template.BaseTemplate:
    """Build one session's dashboard page around ``stream``.

    Args:
        stream: the events to show; the page owns it from now on and closes it when the
            session ends.
        title: page and header title.
        viewer: who is looking; adds who's here, their name, a chat room, the notification
            center and (with an assistant) the AI chat. The page owns their connection.

    Returns:
        A template; serve it (``pn.serve``) or display it in a notebook.

    Outside a served session (a notebook, a test) the source starts at once, which requires a
    running event loop; stop it with ``await dashboard.source.stop()`` (and
    ``await dashboard.team.stop()``) where ``dashboard`` is the returned template.
    """
    source = StreamSource(stream)
    badge = ConnectionBadge(source=source)
    activity = LiveFeed(
        source=source,
        title="Deploys and alerts",
        channels=["deploys", "alerts"],
        max_items=30,
        # The feed shows what happens while the page is open; deploys and alerts are rare.
        empty_text="None since this page opened; new deploys and alerts appear here.",
    )
    feed = LiveFeed(source=source, title="All events", max_items=50)
    cpu = _metric_chart(source, "cpu", "CPU by service (%)")
    latency = _metric_chart(source, "latency", "Latency by service (ms)")
    channels = tuple(getattr(stream, "channels", ()) or ())
    team = TeamPanel(viewer) if viewer is not None else None
    # The badge is the stream's link to its source; the page's own link to this server is
    # shown by the browser (dashboard/ui/assets/link-status.js), which outlives the server.
    sidebar: list[object] = [pn.pane.Markdown("### Event stream"), badge]
    main: list[object] = [
        side_by_side(cpu, latency),
        # Fixed height, scrolling: a burst of events must not push the rest of the page.
        side_by_side(
            pn.Column(activity, height=FEED_HEIGHT, scroll=True, sizing_mode="stretch_width"),
            pn.Column(feed, height=FEED_HEIGHT, scroll=True, sizing_mode="stretch_width"),
        ),
    ]
    if team is not None:
        sidebar += [team.presence, team.name]
        conversations = [pn.Column(pn.pane.Markdown("### Team chat"), team.chat)]
        if team.assistant is not None:
            conversations.append(
                pn.Column(pn.pane.Markdown("### Ask the dashboard"), team.assistant)
            )
        main.append(side_by_side(*conversations))
    sidebar += [
        pn.pane.Markdown("### About"),
        pn.pane.Markdown(_ABOUT),
        pn.pane.Markdown("### Channels"),
        pn.pane.HTML(_channels_html(channels)),
    ]

    # BootstrapTemplate's CSS and JS ship inside Panel (dist/bundled), so the page renders
    # without internet access.
    template = pn.template.BootstrapTemplate(
        title=title,
        sidebar_width=300,
        header_background="#1e293b",
        header=[team.notifications] if team else [],
        notifications=team.toasts if team else None,  # where the toasts appear
        sidebar=sidebar,
        main=main,
    )
    fit_small_screens(template)  # phones: the viewport, and the sidebar as a closed drawer
    # Keep the parts reachable for callers and tests: the template is what they get back.
    template.source = source  # type: ignore[attr-defined]
    template.components = {  # type: ignore[attr-defined]
        "badge": badge,
        "activity": activity,
        "feed": feed,
        "cpu": cpu,
        "latency": latency,
    }
    template.team = team  # type: ignore[attr-defined]

    async def start() -> None:
        # Each stops by itself when the browser leaves (dashboard.ui.lifecycle), within about
        # a second; no page comes back to a session it lost: Panel's reconnect is off, and
        # link-status.js reloads into a new session instead.
        await source.start()
        if team is not None:
            await team.start()

    pn.state.onload(start)
    return template


def session_viewer(server: DashboardServer) -> Viewer | None:
    """Who is looking at the current session of ``server``, connected as them.

    The viewer is who the server's identity rules say (Panel login, then the name cookie);
    an anonymous visitor becomes a guest, whose browser then adopts that identity (without a
    login), so that a reload keeps the same guest. Their user tokens are minted here
    with the app secret, an hour at a time; a guest's say so and name the browser's address,
    since the session speaks for it over loopback. The assistant reaches the server's model
    through ``/api/chat`` like any client, so the same rate limits (per user, and per address
    for guests) apply to the page too.

    Returns:
        ``None`` when the server keeps no store (no chat rooms, no notifications).
    """
    if server.store is None:
        return None
    app = server.ctx.app
    identity = viewer_identity(app.secret)
    user = identity or guest_identity()
    address = viewer_address()

    def token() -> str:
        return issue_user_token(
            app.secret,
            user.user_id,
            user.display_name,
            ttl=3600,
            guest=user.guest,
            address=address if user.guest else None,
        )

    assistant = None
    if server.ctx.ai is not None:
        assistant = RemoteChatProvider(server.local_url, token, upstream=server.ctx.ai)
    adopt = None
    if identity is None and not server.ctx.policy.login:
        adopt = issue_user_token(
            app.secret, user.user_id, user.display_name, ttl=3600, purpose=IDENTITY_ADOPT_PURPOSE
        )
    return Viewer(
        UserConnection(server.local_url, app.key, token),
        guest=identity is None,
        assistant=assistant,
        adopt=adopt,
    )
