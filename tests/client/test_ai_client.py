"""RemoteChatProvider: a notebook asks a running dashboard's /api/chat, no key needed locally."""

from __future__ import annotations

import asyncio

import pytest

from dashboard.ai import ChatMessage, DemoProvider, OpenAIProvider, ProviderError
from dashboard.client.ai import RemoteChatProvider
from dashboard.core.user_tokens import issue_user_token
from dashboard.server import DashboardServer
from tests.fake_openai import LEAKY_KEY

ASK = [ChatMessage("user", "What is this dashboard doing?")]


@pytest.fixture
async def server(fake):
    provider = OpenAIProvider("fake-model", api_key=LEAKY_KEY, base_url=fake.base_url)
    srv = DashboardServer(port=0, ai=provider)
    await srv.start()
    yield srv
    await srv.stop()
    await provider.aclose()


def token(server) -> str:
    return issue_user_token(server.ctx.app.secret, "ada", "Ada")


async def test_remote_provider_streams_the_servers_answer(server, fake):
    provider = await RemoteChatProvider.connect(server.url, token(server))
    try:
        assert provider.name == "remote" and provider.model == "fake-model"
        assert "fake-model" in provider.label and str(server.port) in provider.label
        assert [c async for c in provider.stream(ASK)] == ["Hello", ", ", "world", "!"]
    finally:
        await provider.aclose()


async def test_async_with_closes_the_providers_session(server, fake):
    async with RemoteChatProvider(server.url, token(server)) as provider:
        assert [c async for c in provider.stream(ASK)] == ["Hello", ", ", "world", "!"]
        session = provider._session
        assert session is not None and not session.closed
    assert session.closed and provider._session is None


@pytest.mark.parametrize("mode, kind", [("401", "auth"), ("broken", "upstream")])
async def test_remote_provider_raises_the_servers_error(server, fake, mode, kind):
    fake.mode = mode
    provider = RemoteChatProvider(server.url, token(server))
    try:
        with pytest.raises(ProviderError) as caught:
            async for _ in provider.stream(ASK):
                pass
        assert caught.value.kind == kind and LEAKY_KEY not in caught.value.message
    finally:
        await provider.aclose()


async def test_a_bad_user_token_is_an_auth_error(server):
    provider = RemoteChatProvider(server.url, "nope")
    try:
        with pytest.raises(ProviderError) as caught:
            async for _ in provider.stream(ASK):
                pass
        assert caught.value.kind == "auth" and "user token" in caught.value.message
    finally:
        await provider.aclose()


async def test_closing_the_remote_stream_closes_the_upstream_request(server, fake):
    fake.tokens = [f"t{i} " for i in range(100)]
    fake.delay = 0.05
    provider = RemoteChatProvider(server.url, token(server))
    chunks = provider.stream(ASK)
    try:
        assert [await chunks.__anext__() for _ in range(2)] == ["t0 ", "t1 "]
        await chunks.aclose()
        await asyncio.wait_for(fake.closed.wait(), 2)
        assert fake.sent_before_close is not None and fake.sent_before_close <= 2 + 1
    finally:
        await provider.aclose()


async def test_unreachable_dashboard_is_a_clear_error():
    with pytest.raises(ProviderError, match="Cannot reach"):
        await RemoteChatProvider.connect("http://127.0.0.1:9", "t", connect_timeout=2)


async def test_demo_server_answers_remotely():
    srv = DashboardServer(port=0, ai=DemoProvider(delay=0))
    await srv.start()
    try:
        provider = await RemoteChatProvider.connect(srv.url, token(srv))
        text = "".join([c async for c in provider.stream(ASK)])
        assert "Demo provider" in text and provider.model == "dashboard-demo"
        assert "Demo provider" in provider.label
        await provider.aclose()
    finally:
        await srv.stop()
