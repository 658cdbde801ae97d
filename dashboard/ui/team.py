"""Everything on a page that speaks as its viewer: who's here, their name, the chat room, the
notification center and the assistant, with one life cycle.

A :class:`Viewer` says who is looking (their :class:`~dashboard.client.UserConnection`) and
what answers their questions; :class:`TeamPanel` builds the components for them, joins when
the browser has loaded the page (``await start()``) and leaves as soon as it goes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

import panel as pn
from panel.io.notifications import NotificationArea

from ..ai.base import Provider
from ..client.connection import UserConnection
from ..core.errors import DashboardError
from .ai_chat import AIChat
from .chat_room import ChatRoom
from .lifecycle import on_session_end
from .notification_render import TYPE_STYLES
from .notifications import NotificationCenter
from .presence import PresenceList
from .session import NamePicker

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Viewer:
    """Who looks at a page.

    The page owns the connection and the assistant: it closes both when the browser leaves,
    so give each page its own (:func:`dashboard.app.session_viewer` does).

    Attributes:
        connection: their connection.
        guest: whether it speaks for a session-only guest (the page offers to pick a name).
        assistant: what answers their questions in the AI chat; no AI chat when ``None``.
        adopt: for a first-time visitor, the token by which their browser keeps the guest
            identity made for this visit (``POST /api/identity {"adopt"}``), so that a reload
            keeps their id, their messages and their notifications; ``None`` otherwise.
    """

    connection: UserConnection
    guest: bool = False
    assistant: Provider | None = None
    adopt: str | None = None


def connection_lost_events() -> dict[str, dict[str, str]]:
    """``js_events`` for a hand-made ``NotificationArea``: Panel's connection-lost toast.

    Panel's notification script (1.8+) handles Bokeh's ``connection_lost`` event on every
    notification area and reads ``js_events["connection_lost"]["message"]`` without checking,
    so an area made without one throws ``TypeError: Cannot read properties of undefined
    (reading 'message')`` when the server goes away. Only ``pn.state.notifications`` fills it
    in from ``pn.config.disconnect_notification`` (the gap of holoviz/panel#6462); this does the
    same for ours.
    """
    message = pn.config.disconnect_notification or "Server connection lost."
    return {"connection_lost": {"type": "error", "message": message}}


def toast_area() -> NotificationArea:
    """Panel's toasts in the colours of the notification list: their white text reads at 4.5:1
    or more (Panel's defaults, e.g. white on amber for a warning, are as low as 1.6:1)."""
    types = {toast["type"]: dict(toast) for toast in NotificationArea.param.types.default}
    for kind, (_symbol, colour) in TYPE_STYLES.items():
        types.setdefault(kind, {"type": kind})["background"] = colour
    return NotificationArea(types=list(types.values()), js_events=connection_lost_events())


class TeamPanel:
    """The viewer's components and their life cycle; place the parts where the page wants.

    Attributes:
        presence: who's here (``presence-dashboard``).
        name: the name picker (hidden when a login fixes the name).
        chat: the chat room, in ``#lobby`` first.
        notifications: the bell, list and toasts.
        toasts: the notification area the toasts go to; give it to the page's template.
        assistant: the AI chat, when the viewer has an assistant.
    """

    def __init__(self, viewer: Viewer) -> None:
        self.viewer = viewer
        self.connection = viewer.connection
        self.toasts = toast_area()
        self.presence = PresenceList()
        # Panel's login fixes the name; otherwise the visitor may pick one.
        self.name = NamePicker(guest=viewer.guest, editable=not pn.state.user)
        self.chat = ChatRoom(connection=viewer.connection, room="lobby", timeline_height=300)
        self.notifications = NotificationCenter(
            connection=viewer.connection, toasts=self.toasts, dropdown=True
        )
        self.assistant = AIChat(provider=viewer.assistant, height=420) if viewer.assistant else None
        self._started = False
        self._stopped = False
        self._forget_session: Callable[[], None] = lambda: None

    async def start(self) -> None:
        """Join presence, the chat and the inbox (``pn.state.onload(team.start)``). In a served
        session everything is left when the browser goes, within about a second rather than
        when Bokeh reaps the session (:func:`~dashboard.ui.lifecycle.on_session_end`)."""
        if self._started:
            return
        self._started = True
        self._forget_session = on_session_end(self.stop)
        if self.viewer.adopt:
            self.name.adopt(self.viewer.adopt)
        await self._join()

    async def stop(self) -> None:
        """Stop the components and close the connection (leaving every channel) and the
        assistant's provider. Idempotent."""
        if self._stopped:
            return
        self._stopped = True
        self._forget_session()
        await self._leave()

    async def _join(self) -> None:
        try:
            self.name.identity = await self.connection.connect()
            self.presence.follow(await self.connection.join_presence())
        except DashboardError as exc:
            log.warning("this session could not join presence: %s", exc)
        # Both report their own failures on the page.
        await asyncio.gather(self.chat.start(), self.notifications.start())

    async def _leave(self) -> None:
        if self.assistant is not None:
            await self.assistant.stop()  # an answer still streaming stops its upstream request
        await self.notifications.stop()
        await self.chat.stop()
        await self.connection.aclose()
        aclose = getattr(self.viewer.assistant, "aclose", None)
        if aclose is not None:
            await aclose()  # e.g. a RemoteChatProvider's HTTP session
