"""The providers: the offline demo, and the real openai SDK against a local fake server."""

from __future__ import annotations

import asyncio
import time

import pytest

from dashboard.ai import (
    ChatMessage,
    ChatTooLarge,
    DemoProvider,
    InvalidChatMessages,
    OpenAIProvider,
    ProviderError,
    parse_messages,
    provider_from_env,
)
from dashboard.ai.base import MAX_CONTENT_CHARS, MAX_MESSAGES
from tests.fake_openai import LEAKY_KEY, FakeOpenAI

ASK = [ChatMessage("user", "What is this dashboard doing?")]


def openai_provider(fake: FakeOpenAI, **kwargs) -> OpenAIProvider:
    return OpenAIProvider("fake-model", api_key=LEAKY_KEY, base_url=fake.base_url, **kwargs)


async def collect(provider, messages=ASK) -> list[str]:
    return [chunk async for chunk in provider.stream(messages)]


# -- validation ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw, error",
    [
        (None, InvalidChatMessages),
        ([], InvalidChatMessages),
        ("hi", InvalidChatMessages),
        (["hi"], InvalidChatMessages),
        ([{"role": "robot", "content": "hi"}], InvalidChatMessages),
        ([{"role": "user", "content": 3}], InvalidChatMessages),
        ([{"role": "user", "content": "hi", "name": "x"}], InvalidChatMessages),
        (
            [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}],
            InvalidChatMessages,
        ),
        ([{"role": "user", "content": "   "}], InvalidChatMessages),
        ([{"role": "user", "content": "x" * (MAX_CONTENT_CHARS + 1)}], ChatTooLarge),
        ([{"role": "user", "content": "hi"}] * (MAX_MESSAGES + 1), ChatTooLarge),
        ([{"role": "user", "content": "x" * 7000}] * 5, ChatTooLarge),
    ],
)
def test_parse_messages_rejects(raw, error):
    with pytest.raises(error):
        parse_messages(raw)


def test_parse_messages_accepts_a_conversation():
    raw = [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "hello"},
        {"role": "user", "content": "what now?"},
    ]
    messages = parse_messages(raw)
    assert [m.to_dict() for m in messages] == raw
    assert isinstance(messages[0], ChatMessage)


# -- the demo --------------------------------------------------------------------------------


async def test_demo_is_deterministic_paced_and_useful():
    provider = DemoProvider(delay=0.004)
    started = time.monotonic()
    first = await collect(provider)
    elapsed = time.monotonic() - started
    assert first == await collect(provider)
    assert len(first) > 30 and elapsed > len(first) * 0.002  # paced, not dumped at once
    text = "".join(first)
    assert "hub" in text and "Demo provider" in text
    sse = "".join(
        await collect(DemoProvider(delay=0), [ChatMessage("user", "How does SSE resume?")])
    )
    assert "Last-Event-ID" in sse
    assert provider.name == "demo" and "demo" in provider.label.lower()


async def test_demo_stream_closes_promptly():
    chunks = DemoProvider(delay=10).stream(ASK)
    task = asyncio.ensure_future(chunks.__anext__())
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await chunks.aclose()


# -- the openai SDK over HTTP -----------------------------------------------------------------


async def test_openai_streams_from_a_compatible_server(fake):
    provider = openai_provider(fake)
    assert await collect(provider) == ["Hello", ", ", "world", "!"]
    assert fake.requests[0]["model"] == "fake-model"
    assert fake.requests[0]["stream"] is True
    assert fake.requests[0]["messages"] == [m.to_dict() for m in ASK]
    assert fake.auth == [f"Bearer {LEAKY_KEY}"]
    assert provider.label == f"OpenAI-compatible · fake-model at 127.0.0.1:{fake.port}"
    await provider.aclose()


@pytest.mark.parametrize(
    "mode, kind",
    [
        ("401", "auth"),
        ("429", "rate_limit"),
        ("500", "upstream"),
        ("broken", "upstream"),
        ("error_event", "upstream"),
        ("error_sse", "upstream"),
    ],
)
async def test_openai_failures_become_safe_provider_errors(fake, mode, kind, caplog):
    fake.mode = mode
    provider = openai_provider(fake)
    received = []
    with pytest.raises(ProviderError) as caught:
        async for piece in provider.stream(ASK):
            received.append(piece)
    assert caught.value.kind == kind
    assert LEAKY_KEY not in caught.value.message and "sk-" not in caught.value.message
    assert "Traceback" not in caught.value.message
    assert LEAKY_KEY not in caplog.text
    assert received == (["Hello", ", "] if mode in ("broken", "error_event", "error_sse") else [])
    assert len(fake.requests) == 1  # no silent retries: the user hears at once
    await provider.aclose()


async def test_closing_the_openai_stream_closes_the_upstream_request(fake):
    fake.tokens = [f"t{i} " for i in range(200)]
    fake.delay = 0.05
    chunks = openai_provider(fake).stream(ASK)
    assert [await chunks.__anext__() for _ in range(3)] == ["t0 ", "t1 ", "t2 "]
    closed = time.monotonic()
    await chunks.aclose()
    await asyncio.wait_for(fake.closed.wait(), 2)
    assert fake.sent_before_close is not None and fake.sent_before_close <= 3 + 1
    assert fake.closed_at is not None and fake.closed_at - closed < 0.5


def test_provider_from_env(monkeypatch):
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENAI_MODEL", "OPENAI_TIMEOUT"):
        monkeypatch.delenv(name, raising=False)
    assert isinstance(provider_from_env("gpt-x"), DemoProvider)
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    provider = provider_from_env()
    assert isinstance(provider, OpenAIProvider) and provider.model == "gpt-4o-mini"
    monkeypatch.setenv("OPENAI_API_KEY", LEAKY_KEY)
    monkeypatch.setenv("OPENAI_MODEL", "env-model")
    assert provider_from_env().model == "env-model"
    assert provider_from_env("cli-model").model == "cli-model"
    assert LEAKY_KEY not in provider_from_env().label + repr(provider_from_env())
    monkeypatch.setenv("OPENAI_TIMEOUT", "soon")
    with pytest.raises(ValueError):
        provider_from_env()
