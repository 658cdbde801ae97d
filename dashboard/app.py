"""The served dashboard: composes the ``ui`` components around one event stream, nothing else.

The caller decides where events come from and hands in the stream, e.g.::

    pn.serve({"/": lambda: create_dashboard(HubStream(hub, CHANNELS))})          # in-process
    pn.serve({"/": lambda: create_dashboard(HubEventStream(url, CHANNELS))})     # --feed URL

Call it once per session (the lambda above): each page gets its own stream and source, started
when the page has loaded and stopped when the session is destroyed.

With a :class:`~dashboard.client.UserConnection` (``chat=``), the page also shows who is viewing
the dashboard (every session joins ``presence-dashboard`` as its viewer) and a chat room.
:func:`session_chat` builds that connection for the current session of a
:class:`~dashboard.server.DashboardServer`: the session is an ordinary client of its own
server, over loopback, so presence, typing and messages take the same path as a notebook's.
"""

from __future__ import annotations

import asyncio
import html
import logging
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import panel as pn

from .client.connection import UserConnection
from .core.connection import EventStream
from .core.errors import DashboardError
from .core.user_tokens import issue_user_token
from .ui import ChatRoom, ConnectionBadge, LiveChart, LiveFeed, PresenceList, StreamSource
from .ui.session import NamePicker, guest_identity, viewer_identity, when_browser_leaves

if TYPE_CHECKING:
    from .server import DashboardServer

log = logging.getLogger("dashboard.app")

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
    stream: EventStream,
    *,
    title: str = DEFAULT_TITLE,
    chat: UserConnection | None = None,
    guest: bool = False,
) -> pn.template.BaseTemplate:
    """Build one session's dashboard page around ``stream``.

    Args:
        stream: the events to show; the page owns it from now on and closes it when the
            session ends.
        title: page and header title.
        chat: this viewer's chat connection; adds "who's here" and a chat room. The page
            owns it and closes it when the browser leaves.
        guest: whether ``chat`` speaks for a session-only guest (the page offers to pick a
            name).

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
    team = TeamPanel.build(chat, guest) if chat is not None else None
    team_sidebar: list[object] = [team.presence, team.name] if team else []
    team_main: list[object] = [pn.pane.Markdown("### Team chat"), team.chat] if team else []

    # BootstrapTemplate's CSS and JS ship inside Panel (dist/bundled), so the page renders
    # without internet access.
    template = pn.template.BootstrapTemplate(
        title=title,
        sidebar_width=300,
        header_background="#1e293b",
        sidebar=[
            pn.pane.Markdown("### Connection"),
            badge,
            *team_sidebar,
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
            *team_main,
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
    if team is not None:
        template.components.update(  # type: ignore[attr-defined]
            presence=team.presence, name=team.name, chat=team.chat
        )

    pn.state.onload(source.start)
    if team is not None:
        pn.state.onload(team.start)

    def stop(_context: object) -> None:
        source.stop()
        if team is not None:
            team.stop()

    pn.state.on_session_destroyed(stop)
    return template


@dataclass
class TeamPanel:
    """The "who's here" and chat parts of one session's page, and their life cycle."""

    connection: UserConnection
    presence: PresenceList
    name: NamePicker
    chat: ChatRoom

    @classmethod
    def build(cls, connection: UserConnection, guest: bool) -> TeamPanel:
        return cls(
            connection,
            PresenceList(),
            # Panel's login fixes the name; otherwise the visitor may pick one.
            NamePicker(guest=guest, editable=not pn.state.user),
            ChatRoom(connection=connection, room="lobby", height=300),
        )

    def start(self) -> None:
        """Join presence and the chat; leave as soon as the browser goes (call on load)."""
        # A closed tab leaves presence within a second, not when Bokeh reaps the session.
        when_browser_leaves(self.stop)
        _spawn(self._join())

    def stop(self) -> None:
        """Close the connection, which leaves every channel. Idempotent."""
        _spawn(self.connection.aclose())

    async def _join(self) -> None:
        try:
            self.name.identity = await self.connection.connect()
            self.presence.follow(await self.connection.join_presence())
        except DashboardError as exc:
            log.warning("this session could not join presence: %s", exc)
        await self.chat.start()  # reports its own failures on the page


# The loop keeps only weak references to tasks.
_TASKS: set[asyncio.Task[None]] = set()


def _spawn(coroutine: Coroutine[Any, Any, None]) -> None:
    task = asyncio.get_running_loop().create_task(coroutine)
    _TASKS.add(task)
    task.add_done_callback(_TASKS.discard)


def session_chat(server: DashboardServer) -> tuple[UserConnection, bool] | None:
    """The current session's chat connection to ``server``, and whether it is a guest's.

    The viewer is who the server's identity rules say (Panel login, then the name cookie);
    an anonymous visitor becomes a guest for this session. The connection's user tokens are
    minted here with the app secret, an hour at a time.

    Returns:
        ``None`` when the server keeps no chat rooms (no store).
    """
    if server.store is None:
        return None
    app = server.ctx.app
    viewer = viewer_identity(app.secret)
    guest = viewer is None
    user = viewer or guest_identity()

    def token() -> str:
        return issue_user_token(app.secret, user.user_id, user.display_name, ttl=3600)

    return UserConnection(server.local_url, app.key, token), guest
