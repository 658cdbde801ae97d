"""AIChat on Panel's ChatInterface, driven in-process: streaming, coalescing, stop, errors."""

from __future__ import annotations

import asyncio
import time

import panel as pn
import pytest

from dashboard.ai import ChatMessage, DemoProvider, OpenAIProvider, ProviderError
from dashboard.ui import markdown_chat
from dashboard.ui.ai_chat import AIChat
from tests.fake_openai import LEAKY_KEY, FakeOpenAI
from tests.waiting import until


def shown(message) -> pn.pane.HTML:
    """The pane a message's text is shown in (the only one with the "markdown" class)."""
    (pane,) = [p for p in message.select(pn.pane.HTML) if "markdown" in p.css_classes]
    return pane


@pytest.fixture
async def openai_chat(fake):
    provider = OpenAIProvider("fake-model", api_key=LEAKY_KEY, base_url=fake.base_url)
    yield AIChat(provider=provider)
    await provider.aclose()


def test_needs_a_provider_and_labels_the_demo():
    with pytest.raises(TypeError):
        AIChat()
    chat = AIChat(provider=DemoProvider())
    assert "DEMO" in chat.label.object and "OPENAI_API_KEY" in chat.label.object


async def test_answer_streams_through_the_openai_sdk_and_history_is_sent(openai_chat, fake):
    chat = openai_chat
    async with asyncio.timeout(10):
        assert await chat.ask("first question") == "Hello, world!"
        await chat.ask("second question")
    assert [m.object for m in chat.interface.objects] == [
        "first question", "Hello, world!", "second question", "Hello, world!"
    ]  # fmt: skip
    assert fake.requests[1]["messages"] == [
        {"role": "user", "content": "first question"},
        {"role": "assistant", "content": "Hello, world!"},
        {"role": "user", "content": "second question"},
    ]
    assert chat.error == "" and not chat.streaming


@pytest.mark.parametrize("mode", ["401", "429", "500", "broken", "error_event", "error_sse"])
async def test_upstream_failures_show_inline_and_retry_recovers(openai_chat, fake, mode):
    chat = openai_chat
    fake.mode = mode
    async with asyncio.timeout(10):
        await chat.ask("question")
    reply = chat.interface.objects[-1]
    assert "⚠️" in reply.object and "Rerun" in reply.object and chat.error
    assert LEAKY_KEY not in reply.object and "Traceback" not in reply.object
    assert chat.history == [ChatMessage("user", "question")]  # the failure is not history
    fake.mode = "ok"
    turns = chat._turns
    chat.retry()
    async with asyncio.timeout(10):
        await chat.wait(turns)
    assert [m.object for m in chat.interface.objects] == ["question", "Hello, world!"]
    assert chat.error == ""
    # The cut-off answer ("Hello, ") was never sent back to the model as its own words.
    assert fake.requests[-1]["messages"] == [{"role": "user", "content": "question"}]


async def test_streams_in_place_with_a_cursor_and_disabled_input_then_stop_aborts(
    openai_chat, fake
):
    chat = openai_chat
    fake.tokens = [f"w{i} " for i in range(200)]
    fake.delay = 0.03
    chat.send("tell me everything")
    async with asyncio.timeout(10):
        await until(lambda: chat.answer.count("w") >= 3)
        assert chat.streaming and chat.interface.disabled and chat.interface.active_widget.disabled
        reply = chat.interface.objects[-1]
        assert reply.object.endswith(chat.cursor)
        pane, grown = shown(reply), chat.answer
        await until(lambda: len(chat.answer) > len(grown))
        assert chat.interface.objects[-1] is reply  # one message, updated in place
        assert shown(reply) is pane and grown.split()[-1] in pane.object  # one pane, too
        assert chat.stop_answer()
        await until(lambda: not chat.streaming)
        await asyncio.wait_for(fake.closed.wait(), 2)
    frozen = reply.object
    assert not frozen.endswith(chat.cursor)
    received = len(frozen.split())
    assert fake.sent_before_close is not None and fake.sent_before_close <= received + 2
    await asyncio.sleep(0.3)
    assert reply.object == frozen and not chat.interface.disabled


async def test_a_fast_model_is_coalesced_to_30_renders_per_second():
    chat = AIChat(provider=DemoProvider(delay=0.0005))  # ~2,000 tokens/s
    started = time.monotonic()
    async with asyncio.timeout(20):
        answer = await chat.ask("Tell me about SSE, chat, AI and publishing")
    elapsed = time.monotonic() - started
    tokens = len(answer.split())
    assert tokens > 150
    assert chat.renders <= elapsed * 30 + 3, (chat.renders, elapsed)
    assert chat.renders < tokens / 2


async def test_raw_html_in_questions_and_answers_is_shown_as_text():
    injected = ["Look: ", "see \\`<img src=x ", "onerror=alert(1)>", " and `a < b`"]
    fake = await FakeOpenAI(injected).start()
    provider = OpenAIProvider("fake-model", api_key=LEAKY_KEY, base_url=fake.base_url)
    try:
        chat = AIChat(provider=provider)
        async with asyncio.timeout(10):
            answer = await chat.ask("why <b>bold</b>?")
        question, reply = chat.interface.objects
        assert shown(question).object == "<p>why &lt;b&gt;bold&lt;/b&gt;?</p>\n"
        html = shown(reply).object
        assert "<img" not in html and "see `&lt;img src=x onerror=alert(1)&gt; and" in html
        assert "<code>a &lt; b</code>" in html  # code is still code
        assert answer == chat.answer == "Look: see \\`<img src=x onerror=alert(1)> and `a < b`"
        assert reply.object == answer  # the message keeps the text as written
        assert reply.chat_copy_icon.value == answer  # and so does the copy button
        assert chat.history == [
            ChatMessage("user", "why <b>bold</b>?"),
            ChatMessage("assistant", answer),  # the model gets its own words back
        ]
    finally:
        await provider.aclose()
        await fake.stop()


class Refusal:
    name = model = label = "refusal"

    async def stream(self, messages):
        yield "partial <b>"
        raise ProviderError("upstream", "bad *request* <img src=x onerror=alert(1)> [x](y)")


async def test_an_error_line_is_shown_as_written():
    chat = AIChat(provider=Refusal())
    async with asyncio.timeout(10):
        await chat.ask("hi")
    html = shown(chat.interface.objects[-1]).object
    assert "<p>partial &lt;b&gt;</p>" in html
    assert "bad *request* &lt;img src=x onerror=alert(1)&gt; [x](y)" in html
    assert "<img" not in html and "<em>" not in html and "<a " not in html
    assert chat.error.startswith("bad *request*")


def test_a_message_that_fails_to_render_is_still_text(monkeypatch):
    # Panel would fall back to its own Markdown pane, raw HTML on, if the renderer raised.
    def broken(text):
        raise RecursionError

    monkeypatch.setattr(markdown_chat, "render_markdown", broken)
    assert markdown_chat.markdown_pane("<img src=x onerror=alert(1)>").object == (
        "<pre>&lt;img src=x onerror=alert(1)&gt;</pre>"
    )
