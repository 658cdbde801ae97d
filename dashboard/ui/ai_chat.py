"""A streaming AI chat on Panel's :class:`~panel.chat.ChatInterface`.

:class:`AIChat` takes a :class:`~dashboard.ai.Provider`, never a URL: the served dashboard hands
it one in-process (OpenAI or the offline demo), a notebook a
:class:`~dashboard.client.ai.RemoteChatProvider` that asks a running dashboard. The answer
streams into one message in place, with a cursor; Panel's Stop button cancels the callback
task, which closes the provider's stream and so the upstream request.

Questions and answers alike are shown through :func:`~dashboard.markup.render_markdown`
(:class:`~dashboard.ui.markdown_chat.MarkdownChatInterface`): raw HTML in them is text, decided by
the parser that renders them. The messages keep the text as written, which is what the model
gets back in the history.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import threading
from collections.abc import AsyncIterator, Callable
from html import escape
from typing import Any

import panel as pn
import param

from ..ai.base import MAX_MESSAGES, MAX_TOTAL_CHARS, ChatMessage, Provider, ProviderError
from ..core.ai_stream import RenderPacer
from ..markup import markdown_literal
from .component import Component
from .lifecycle import on_session_end
from .markdown_chat import MarkdownChatInterface
from .tasks import Scheduled, call_on, owner_loop, running_loop, schedule

log = logging.getLogger(__name__)

#: Seconds :meth:`AIChat.stop` waits for a stopped answer to wind down.
STOP_TIMEOUT = 5.0

_CSS = """
.dashboard-ai-label { font-size: 0.85em; color: #475569; }
.dashboard-ai-demo { background: #fff3cd; color: #664d03; border-radius: 4px; padding: 0 6px;
                     font-weight: 600; margin-right: 6px; }
"""


class AIChat(Component):
    """Ask a model; the answer streams in place, at most ``max_renders_per_second`` updates.

    While an answer streams the input is disabled and Panel's Stop button replaces Send;
    stopping keeps the text received so far. A failure shows inline in the answer with its
    reason, and the Rerun button (or :meth:`retry`) asks again. The conversation, minus
    failed answers, is sent with every question.

    Usage::

        chat = AIChat(provider=DemoProvider())
        chat                     # display it, then type, or:
        await chat.ask("What is this dashboard doing?")
    """

    provider = param.Parameter(
        allow_None=False, doc="The model to ask (a dashboard.ai.Provider; required)."
    )
    system_prompt = param.String(default="", doc="Sent first with every question when not empty.")
    user = param.String(default="You", doc="The name shown on the user's messages.")
    assistant = param.String(default="Assistant", doc="The name shown on the answers.")
    cursor = param.String(default=" ▌", doc="Appended to an answer while it streams.")
    max_renders_per_second = param.Number(
        default=30.0, bounds=(1.0, 120.0), doc="Upper bound on answer updates per second."
    )
    height = param.Integer(
        default=480,
        bounds=(200, None),
        allow_None=True,
        doc="Height in pixels (the messages scroll inside); None to size by the layout.",
    )
    streaming = param.Boolean(default=False, doc="Whether an answer is streaming (read only).")
    error = param.String(default="", doc="Why the last answer failed; empty after a success.")
    renders = param.Integer(default=0, doc="Answer updates sent so far (read only).")

    def __init__(self, **params: Any) -> None:
        if params.get("provider") is None:
            raise TypeError("AIChat needs a provider: AIChat(provider=DemoProvider())")
        super().__init__(**params)
        self._failed: set[int] = set()
        self._turns = 0
        # Who waits for the end of an answer: (their loop, their future), from any thread.
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []
        self._waiters_lock = threading.Lock()
        self._answer_task: asyncio.Task[Any] | None = None
        self._forget_session: Callable[[], None] = _nothing
        self.label = pn.pane.HTML(
            self._label_html(), stylesheets=[_CSS], sizing_mode="stretch_width"
        )
        self.interface = MarkdownChatInterface(
            callback=self._respond,
            user=self.user,
            callback_user=self.assistant,
            show_rerun=True,
            show_undo=True,
            show_clear=True,
            show_stop=True,
            callback_exception="summary",
            # Fills what the component's height leaves below the label.
            sizing_mode="stretch_both",
            css_classes=["dashboard-ai-chat"],
        )
        self._layout = pn.Column(self.label, self.interface)

    def __panel__(self) -> pn.Column:
        return self._layout

    # -- public ------------------------------------------------------------------------

    @property
    def history(self) -> list[ChatMessage]:
        """The conversation as it is sent: system prompt, then the turns, failures left out."""
        messages = [ChatMessage("system", self.system_prompt)] if self.system_prompt else []
        turns = []
        for message in self.interface.objects:
            if id(message) in self._failed or not isinstance(message.object, str):
                continue
            if message.user == self.user:
                role = "user"
            elif message.user == self.assistant:
                role = "assistant"
            else:
                continue
            text = message.object.removesuffix(self.cursor)
            if text.strip():
                turns.append(ChatMessage(role, text))
        # Drop the oldest turns to stay inside the server's limits (dashboard.ai.base).
        budget = MAX_TOTAL_CHARS - len(self.system_prompt)
        kept: list[ChatMessage] = []
        for turn in reversed(turns):
            if len(kept) + len(messages) >= MAX_MESSAGES or len(turn.content) > budget:
                break
            budget -= len(turn.content)
            kept.append(turn)
        return messages + kept[::-1]

    @property
    def answer(self) -> str:
        """The answer to the last question so far (without the cursor), or ``""``."""
        for message in reversed(self.interface.objects):
            if message.user == self.user:
                return ""  # the last question has no answer yet
            if message.user == self.assistant and isinstance(message.object, str):
                return message.object.removesuffix(self.cursor)
        return ""

    def send(self, text: str) -> None:
        """Post ``text`` as the user and start the answer (like typing it and pressing Enter)."""
        self.interface.send(text, user=self.user, respond=True)

    async def ask(self, text: str) -> str:
        """:meth:`send` ``text`` and wait until the answer is complete, failed or stopped
        (bound the wait with ``asyncio.timeout``).

        Returns:
            :attr:`answer`.
        """
        turns = self._turns
        self.send(text)
        await self.wait(turns)
        return self.answer

    async def wait(self, after: int | None = None) -> None:
        """Wait until answer number ``after + 1`` is over (by default the next one), from any
        thread's loop."""
        target = (self._turns if after is None else after) + 1
        loop = asyncio.get_running_loop()
        while self._turns < target:
            waiter = loop.create_future()
            with self._waiters_lock:
                self._waiters.append((loop, waiter))
            if self._turns >= target:  # ended between the check and the registration
                break
            await waiter

    def stop_answer(self) -> bool:
        """Abort the answer that is streaming, as the Stop button does: the text so far stays.

        Safe from any thread: the answer's task is stopped on the loop it runs on.

        Returns:
            Whether an answer was stopped.
        """
        task = self._answer_task
        if task is None or task.done():
            return False
        loop = task.get_loop()
        if loop is running_loop() or loop.is_closed():
            return bool(self.interface.stop())
        loop.call_soon_threadsafe(self.interface.stop)
        return True

    async def start(self) -> None:
        """Nothing to open (the provider connects per question); in a served session, have
        :meth:`stop` run when the browser leaves."""
        self._forget_session = on_session_end(self.stop)

    async def stop(self) -> None:
        """Abort an answer that is streaming and wait until it has ended (its upstream request
        closed). Idempotent; the chat stays usable. The provider belongs to the caller."""
        self._forget_session()
        self._forget_session = _nothing
        if self.stop_answer() or self.streaming:
            with contextlib.suppress(asyncio.TimeoutError):
                async with asyncio.timeout(STOP_TIMEOUT):
                    while self.streaming:
                        await self.wait()

    def retry(self) -> None:
        """Ask the last question again (the Rerun button)."""
        objects = self.interface.objects
        for index in range(len(objects) - 1, -1, -1):
            if objects[index].user == self.user:
                removed = self.interface.undo(len(objects) - index)
                self.interface.send(removed[0], respond=True)
                return

    # -- the callback --------------------------------------------------------------------

    async def _respond(self, contents: Any, user: str, instance: Any) -> AsyncIterator[str]:
        # Panel runs this callback wherever the Enter or Send event was handled: in a Jupyter
        # kernel, a subshell thread with its own loop. The provider's stream is read on the loop
        # that owns its connection (dashboard.ui.tasks); chunks come back through a list and
        # thread-safe wake-ups.
        provider: Provider = self.provider
        here = asyncio.get_running_loop()
        history = self.history
        received: list[str] = []
        failures: list[BaseException] = []
        arrived, finished = asyncio.Event(), asyncio.Event()

        async def read() -> None:
            chunks = provider.stream(history)
            try:
                async for chunk in chunks:
                    received.append(chunk)
                    call_on(here, arrived.set)
            except Exception as exc:  # shown in the answer; anything else is a bug, logged
                failures.append(exc)
            finally:
                try:
                    await _aclose(chunks)  # a cancelled read closes the upstream request
                finally:
                    call_on(here, finished.set)
                    call_on(here, arrived.set)

        reader = schedule(read(), owner_loop(provider))
        pacer = RenderPacer(self.max_renders_per_second)
        text = ""
        reply: Any = None

        def dropped_cursor() -> None:
            # A stopped answer's callback cannot yield again: drop the cursor by hand.
            if reply is not None and not finished.is_set():
                reply.object = text + "".join(received)

        turn = _Turn(self, reader, dropped_cursor)
        task = asyncio.current_task()
        if task is not None:
            # Stop cancels this task. When it is cancelled while Panel handles a yielded chunk,
            # this generator is left suspended at its yield and its `finally` runs only when it
            # is collected: the turn must end with the task instead (input unlocked at once).
            self._answer_task = task
            task.add_done_callback(lambda _task: turn.end())
        self.param.update(streaming=True, error="")
        try:
            yield self.cursor  # the answer's message appears at once, with the cursor
            reply = instance.objects[-1]
            while not finished.is_set():
                await arrived.wait()
                # Tokens that arrive during the pause are coalesced into the next render.
                await asyncio.sleep(pacer.delay(here.time()))
                arrived.clear()
                text += "".join(received)
                received.clear()
                if not finished.is_set():
                    pacer.rendered(here.time())
                    self.renders += 1
                    yield text + self.cursor
            text += "".join(received)
            received.clear()
            failure = failures[0] if failures else None
            if failure is not None:
                self._failed.add(id(reply))
                if not isinstance(failure, ProviderError):
                    log.error("AI chat provider failed", exc_info=failure)
                message = getattr(failure, "message", "The answer failed unexpectedly.")
                self.error = message
                self.renders += 1
                yield _with_error(text, message)
            else:
                self.renders += 1
                yield text
        finally:
            if not finished.is_set():
                turn.end()  # stopped: the reader's finally closes the upstream stream
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(STOP_TIMEOUT):
                        await finished.wait()
            turn.end()

    # -- widgets -------------------------------------------------------------------------

    def _label_html(self) -> str:
        provider = self.provider
        # A remote provider says what the server behind it runs.
        demo = "demo" in (provider.name, getattr(provider, "upstream_name", ""))
        badge = '<span class="dashboard-ai-demo">DEMO</span>' if demo else ""
        return f'<div class="dashboard-ai-label">{badge}{escape(provider.label)}</div>'

    @param.depends("streaming", watch=True)
    def _lock_input(self) -> None:
        # ChatInterface only blocks Enter while busy; the text box itself stays editable.
        widget: Any = self.interface.active_widget
        widget.disabled = self.streaming

    @param.depends("provider", watch=True)
    def _provider_changed(self) -> None:
        self.label.object = self._label_html()


class _Turn:
    """One answer's end, which comes once: from the callback's ``finally``, or with its task
    when Stop cancels it while Panel holds the stream (see ``AIChat._respond``)."""

    def __init__(self, chat: AIChat, reader: Scheduled, dropped_cursor: Callable[[], None]):
        self._chat = chat
        self._reader = reader
        self._dropped_cursor = dropped_cursor
        self._ended = False

    def end(self) -> None:
        if self._ended:
            return
        self._ended = True
        chat = self._chat
        self._dropped_cursor()
        if not self._reader.done():
            if isinstance(self._reader, asyncio.Task):
                call_on(self._reader.get_loop(), self._reader.cancel)
            else:
                self._reader.cancel()
        chat.streaming = False
        chat._turns += 1
        with chat._waiters_lock:
            waiters, chat._waiters = chat._waiters, []
        for loop, waiter in waiters:
            call_on(loop, functools.partial(_resolve, waiter))


def _resolve(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


def _with_error(text: str, message: str) -> str:
    """The answer so far and the failure's reason, shown as written (no Markdown in it)."""
    prefix = f"{text}\n\n" if text.strip() else ""
    reason = markdown_literal(" ".join(message.split()))
    return f"{prefix}> ⚠️ **{reason}** Press ↻ Rerun to try again."


async def _aclose(chunks: AsyncIterator[str]) -> None:
    aclose = getattr(chunks, "aclose", None)
    if aclose is not None:
        await aclose()


def _nothing() -> None:
    pass
