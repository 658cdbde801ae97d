"""A chat room: persisted history, live messages, who joined and left, who is typing.

:class:`ChatRoom` takes a :class:`~dashboard.client.UserConnection`, never a URL: the served
dashboard hands each session one connected to its own server, a notebook one connected to any
dashboard server. Every user string is escaped (:mod:`dashboard.ui.chat_render`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Coroutine
from html import escape
from typing import Any

import panel as pn
import param

from ..client.api import APIError
from ..client.chat import RoomSession
from ..client.connection import UserConnection
from ..client.pusher_channels import PusherError
from ..core.channels import room_name_problem
from ..core.errors import DashboardError
from ..store.base import MAX_TEXT_LENGTH, Change, Message
from .chat_render import CHAT_CSS, Notice, render_timeline
from .component import Component
from .lifecycle import on_session_end
from .source import RenderThrottle
from .tasks import BackgroundTasks, owner_loop
from .typing import TypingIndicator

log = logging.getLogger(__name__)

#: Join/leave notices kept per room; older ones scroll away.
MAX_NOTICES = 50
#: What the message box takes at most: more than a message may hold, so that a long text is
#: refused with a reason rather than cut by the browser; bounded, so a paste stays small.
INPUT_MAX_LENGTH = 4 * MAX_TEXT_LENGTH

# A long room name in an error wraps instead of running off the page.
_ERROR_CSS = ".bk-clearfix, small { overflow-wrap: anywhere; color: #b91c1c; }"


def _nothing() -> None:
    pass


class ChatRoom(Component):
    """Messages of one room at a time, with a room selector, an input and a typing line.

    Call :meth:`start` once a loop runs (``pn.state.onload`` in a served session, a cell in a
    notebook); :meth:`stop` leaves the room. Changing :attr:`room` (or the selector) leaves
    the current room and joins the other one.

    Usage::

        chat = ChatRoom(connection=UserConnection(url, key, token), room="lobby")
        chat  # display it
        await chat.start()
    """

    connection = param.ClassSelector(
        class_=UserConnection,
        allow_None=False,
        doc="The user's connection (required); the room is read and written as them.",
    )
    room = param.String(default="lobby", doc="The room shown now.")
    rooms = param.List(default=[], item_type=str, doc="Rooms offered by the selector.")
    history = param.Integer(
        default=50, bounds=(1, 200), doc="Messages loaded when a room is joined."
    )
    timeline_height = param.Integer(
        default=320, bounds=(100, None), doc="Height of the message list in pixels."
    )
    error = param.String(default="", doc="The last failure to show the user, if any.")
    max_renders_per_second = param.Number(
        default=20.0, bounds=(0.1, 240.0), doc="Upper bound on re-renders per second."
    )

    def __init__(self, **params: Any) -> None:
        if params.get("connection") is None:
            raise TypeError("ChatRoom needs a connection: ChatRoom(connection=UserConnection(...))")
        super().__init__(**params)
        self.session: RoomSession | None = None
        self._notices: deque[Notice] = deque(maxlen=MAX_NOTICES)
        self._tasks = BackgroundTasks()
        self._unlisten: list[Callable[[], None]] = []
        self._started = False
        self._forget_session: Callable[[], None] = _nothing
        self._unlisten_rooms: Callable[[], None] = _nothing
        self._switching = asyncio.Lock()
        self._throttle = RenderThrottle(
            self._render, self.max_renders_per_second, document=lambda: pn.state.curdoc
        )
        self.typing_indicator = TypingIndicator()
        self.selector = pn.widgets.Select(
            label="Room", options=self._options(), value=self.room, sizing_mode="stretch_width"
        )
        self.new_room = pn.widgets.TextInput(
            label="New room", placeholder="new-room (Enter)", sizing_mode="stretch_width"
        )
        self.timeline = pn.pane.HTML(
            render_timeline((), empty="Connecting…"),
            sizing_mode="stretch_width",
            stylesheets=[CHAT_CSS, f":host {{ --chat-height: {self.timeline_height}px; }}"],
            css_classes=["dashboard-chat-timeline"],
        )
        self.input = pn.widgets.TextInput(
            placeholder=f"Message #{self.room}",
            sizing_mode="stretch_width",
            max_length=INPUT_MAX_LENGTH,
        )
        self.send_button = pn.widgets.Button(label="Send", color="primary", width=80)
        self.error_line = pn.pane.HTML(
            "",
            css_classes=["dashboard-chat-error"],
            sizing_mode="stretch_width",
            stylesheets=[_ERROR_CSS],
        )
        self.selector.param.watch(self._on_select, "value")
        self.new_room.param.watch(self._on_new_room, "enter_pressed")
        self.input.param.watch(self._on_input, "value_input")
        self.input.param.watch(self._on_enter, "enter_pressed")
        self.send_button.on_click(self._on_enter)
        self._layout = pn.Column(
            pn.Row(self.selector, self.new_room, sizing_mode="stretch_width"),
            self.timeline,
            self.typing_indicator,
            pn.Row(self.input, self.send_button, sizing_mode="stretch_width"),
            self.error_line,
        )

    def __panel__(self) -> pn.Column:
        return self._layout

    # -- public ------------------------------------------------------------------------

    @property
    def messages(self) -> list[Message]:
        """The messages held for the current room, oldest first."""
        return list(self.session.messages.values()) if self.session is not None else []

    @property
    def html(self) -> str:
        """The timeline as rendered last."""
        return str(self.timeline.object)

    async def start(self) -> None:
        """Connect, list the rooms and join :attr:`room`. Failures show in :attr:`error`. In a
        served session it leaves by itself when the browser goes."""
        self._started = True
        self._forget_session = on_session_end(self.stop)
        try:
            await self._connection.connect()
            # Watch first, then list: a room made in between is in one or the other.
            self._unlisten_rooms = await self._connection.on_room_created(self._room_created)
            rooms = [room.name for room in await self._connection.api.rooms()]
        except (APIError, PusherError) as exc:
            self.error = f"Chat is unavailable: {exc}"
            return
        self.rooms = sorted(set(self.rooms) | set(rooms))
        await self._join(self.room)

    async def send(self, text: str | None = None) -> Message | None:
        """Post ``text`` (default: the input's text) to the room; clears the input on success.

        Returns:
            The stored message, or ``None`` when there was nothing to send or it failed (the
            reason is in :attr:`error` and the input keeps the text).
        """
        from_input = text is None
        text = (self.input.value_input or self.input.value or "") if text is None else text
        if not text.strip():
            return None
        if self._switching.locked():
            # A room is being joined (start, or a switch): send there once it is joined,
            # rather than drop what was typed meanwhile.
            async with self._switching:
                pass
        if self.session is None:
            self.error = "Not sent: not in a room (yet); the text stays in the box."
            return None
        if len(text) > MAX_TEXT_LENGTH:
            # The input lets more through than a message holds, so that nothing is cut
            # silently: the writer sees why and shortens it.
            self.error = (
                f"Not sent: the message has {len(text):,} characters; "
                f"the limit is {MAX_TEXT_LENGTH:,}."
            )
            return None
        try:
            message = await self.session.post(text)
        except APIError as exc:
            self.error = f"Not sent: {exc}"
            return None
        self.error = ""
        if from_input:
            self.input.param.update(value="", value_input="")
        self.typing_indicator.stopped(message.user_id)
        return message

    async def stop(self) -> None:
        """Leave the room. The connection stays open (its owner closes it). Idempotent."""
        self._forget_session()
        self._unlisten_rooms()
        self._unlisten_rooms = _nothing
        self._tasks.cancel_all()
        self._throttle.cancel()
        await self._leave()

    # -- joining and leaving -------------------------------------------------------------

    async def _join(self, room: str) -> None:
        """Join ``room``, then leave the current one; if ``room`` cannot be joined, stay."""
        async with self._switching:
            previous = self.session
            if previous is not None and previous.room == room:
                return
            try:
                session = await self._connection.join_room(room, history=self.history)
            except (DashboardError, ValueError) as exc:  # APIError, PusherError, bad name
                self._refuse_room(room, str(exc))
                return
            await self._leave()
            self._notices.clear()
            self.typing_indicator.clear()
            self.error = ""
            self.session = session
            self.rooms = sorted(set(self.rooms) | {room})
            self._unlisten = [
                session.on_change(self._on_change),
                session.on_activity(self._on_activity),
            ]
            self._notices.append(Notice(time.time(), f"You joined #{room}"))
            self.input.placeholder = f"Message #{room}"
            self._render()

    def _refuse_room(self, room: str, reason: str) -> None:
        """Show why ``room`` cannot be joined and go back to the room one is in."""
        self.error = f"Cannot join #{room}: {reason}"
        current = self.session.room if self.session is not None else None
        if current is not None and self.room != current:
            self.room = current
        self.selector.param.update(options=self._options(), value=self.room)
        self._render()

    async def _leave(self) -> None:
        session, self.session = self.session, None
        for unlisten in self._unlisten:
            unlisten()
        self._unlisten = []
        if session is not None:
            await session.leave()

    @param.depends("room", watch=True)
    def _room_changed(self) -> None:
        problem = room_name_problem(self.room)
        if problem is not None:
            self._refuse_room(self.room, problem)
            return
        # Options first: a page shown a value its select does not offer falls back to the first
        # option and sends that back, which would switch the room back at once.
        self.selector.param.update(options=self._options(), value=self.room)
        if self._started and (self.session is None or self.session.room != self.room):
            self._spawn(self._join(self.room))

    @param.depends("rooms", watch=True)
    def _rooms_changed(self) -> None:
        self.selector.options = self._options()

    def _options(self) -> list[str]:
        return sorted(set(self.rooms) | {self.room})

    def _room_created(self, room: str) -> None:
        if room not in self.rooms:
            self.rooms = sorted(set(self.rooms) | {room})

    # -- events from the room ------------------------------------------------------------

    def _on_change(self, change: Change) -> None:
        self._throttle.request()

    def _on_activity(self, kind: str, user_id: str, name: str) -> None:
        if kind == "typing":
            self.typing_indicator.typing(user_id, name)
        elif kind == "stopped":
            self.typing_indicator.stopped(user_id)
        else:
            self.typing_indicator.stopped(user_id)
            verb = "joined" if kind == "joined" else "left"
            room = self.session.room if self.session is not None else self.room
            self._notices.append(Notice(time.time(), f"{name} {verb} #{room}"))
            self._throttle.request()

    def _render(self) -> None:
        user = self._connection.user
        me = user.user_id if user is not None else None
        self.timeline.object = render_timeline(self.messages, self._notices, me=me)

    # -- widgets -------------------------------------------------------------------------

    @property
    def _connection(self) -> UserConnection:
        connection = self.connection
        assert connection is not None  # checked by __init__; param refuses None later
        return connection

    def _on_select(self, event: param.parameterized.Event) -> None:
        if event.new and event.new != self.room:
            self.room = event.new

    def _on_new_room(self, _event: object) -> None:
        name = (self.new_room.value_input or self.new_room.value or "").strip()
        if not name:
            return
        problem = room_name_problem(name)
        if problem is not None:
            # The name stays in the box to be corrected; the room shown stays too.
            self.error = f"Cannot join #{name}: {problem}"
            return
        self.new_room.param.update(value="", value_input="")
        self.room = name

    def _on_input(self, event: param.parameterized.Event) -> None:
        if self.session is not None:
            self._spawn(self.session.typing(bool(event.new)))

    def _on_enter(self, _event: object) -> None:
        self._spawn(self.send())

    def _spawn(self, coroutine: Coroutine[Any, Any, Any]) -> None:
        # Widget callbacks may run on another thread than the connection's (a Jupyter kernel's
        # subshell): the work runs on the connection's loop (dashboard.ui.tasks).
        self._tasks.spawn(coroutine, owner_loop(self.connection))

    @param.depends("error", watch=True)
    def _show_error(self) -> None:
        self.error_line.object = f"<small>{escape(self.error)}</small>" if self.error else ""
