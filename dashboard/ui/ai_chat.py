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
import logging
from collections.abc import AsyncIterator
from html import escape
from typing import Any

import panel as pn
import param

from ..ai.base import MAX_MESSAGES, MAX_TOTAL_CHARS, ChatMessage, Provider, ProviderError
from ..core.ai_stream import RenderPacer
from ..markup import markdown_literal
from .markdown_chat import MarkdownChatInterface

log = logging.getLogger(__name__)

_CSS = """
.dashboard-ai-label { font-size: 0.85em; color: #475569; }
.dashboard-ai-demo { background: #fff3cd; color: #664d03; border-radius: 4px; padding: 0 6px;
                     font-weight: 600; margin-right: 6px; }
"""


class AIChat(pn.viewable.Viewer):
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
    height = param.Integer(default=480, bounds=(200, None), doc="Height in pixels.")
    streaming = param.Boolean(default=False, doc="Whether an answer is streaming (read only).")
    error = param.String(default="", doc="Why the last answer failed; empty after a success.")
    renders = param.Integer(default=0, doc="Answer updates sent so far (read only).")

    def __init__(self, **params: Any) -> None:
        if params.get("provider") is None:
            raise TypeError("AIChat needs a provider: AIChat(provider=DemoProvider())")
        super().__init__(**params)
        self._failed: set[int] = set()
        self._turns = 0
        self._turn_done = asyncio.Event()
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
            height=self.height,
            sizing_mode="stretch_width",
            css_classes=["dashboard-ai-chat"],
        )
        self._layout = pn.Column(self.label, self.interface, sizing_mode="stretch_width")

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
        """Wait until answer number ``after + 1`` is over (by default the next one)."""
        target = (self._turns if after is None else after) + 1
        while self._turns < target:
            self._turn_done.clear()
            await self._turn_done.wait()

    def stop(self) -> bool:
        """Abort the answer that is streaming, as the Stop button does.

        Returns:
            Whether an answer was stopped.
        """
        return bool(self.interface.stop())

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
        provider: Provider = self.provider
        chunks = provider.stream(self.history)
        received: list[str] = []
        arrived = asyncio.Event()

        async def read() -> None:
            try:
                async for chunk in chunks:
                    received.append(chunk)
                    arrived.set()
            finally:
                await _aclose(chunks)  # a cancelled read closes the upstream request
                arrived.set()

        reader = asyncio.ensure_future(read())
        loop = asyncio.get_running_loop()
        pacer = RenderPacer(self.max_renders_per_second)
        text = ""
        reply = None
        self.param.update(streaming=True, error="")
        try:
            yield self.cursor  # the answer's message appears at once, with the cursor
            reply = instance.objects[-1]
            while not reader.done():
                await arrived.wait()
                # Tokens that arrive during the pause are coalesced into the next render.
                await asyncio.sleep(pacer.delay(loop.time()))
                arrived.clear()
                text += "".join(received)
                received.clear()
                if not reader.done():
                    pacer.rendered(loop.time())
                    self.renders += 1
                    yield text + self.cursor
            text += "".join(received)
            failure = None if reader.cancelled() else reader.exception()
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
            if not reader.done():
                reader.cancel()  # stopped: the reader's finally closes the upstream stream
                with contextlib.suppress(asyncio.CancelledError):
                    await reader
                if reply is not None:
                    # The cancelled callback cannot yield again: drop the cursor by hand.
                    reply.object = text + "".join(received)
            self.streaming = False
            self._turns += 1
            self._turn_done.set()

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


def _with_error(text: str, message: str) -> str:
    """The answer so far and the failure's reason, shown as written (no Markdown in it)."""
    prefix = f"{text}\n\n" if text.strip() else ""
    reason = markdown_literal(" ".join(message.split()))
    return f"{prefix}> ⚠️ **{reason}** Press ↻ Rerun to try again."


async def _aclose(chunks: AsyncIterator[str]) -> None:
    aclose = getattr(chunks, "aclose", None)
    if aclose is not None:
        await aclose()
