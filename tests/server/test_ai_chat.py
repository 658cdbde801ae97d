"""``POST /api/chat``: the real openai SDK streaming from a local fake server, relayed as SSE."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest

from dashboard.ai import OpenAIProvider
from dashboard.core.ai_stream import ChatDelta, ChatDone, ChatFailure, parse_chat_event
from dashboard.core.user_limits import KeyedRateLimiter
from dashboard.core.user_tokens import issue_user_token
from dashboard.server import DashboardServer
from tests.fake_openai import LEAKY_KEY, Boom
from tests.server.helpers import TOKEN, RawStream

ASK = {"messages": [{"role": "user", "content": "What is this dashboard doing?"}]}


@pytest.fixture
async def server(fake):
    provider = OpenAIProvider("fake-model", api_key=LEAKY_KEY, base_url=fake.base_url)
    srv = DashboardServer(port=0, token=TOKEN, ai=provider)
    await srv.start()
    yield srv
    await srv.stop()
    await provider.aclose()


def bearer(server: DashboardServer, user: str = "ada") -> dict[str, str]:
    return {"Authorization": f"Bearer {issue_user_token(server.ctx.app.secret, user, 'Ada')}"}


async def chat(http, server, body=ASK, headers=None):
    return await http.post(
        f"{server.url}/api/chat", json=body, headers=bearer(server) if headers is None else headers
    )


async def read_all(response) -> list:
    stream = RawStream(response)
    items = []
    while True:
        try:
            event = await stream.next()
        except EOFError:
            return items
        items.append(parse_chat_event(event))


async def test_chat_streams_the_answer_as_sse(http, server, fake):
    response = await chat(http, server)
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/event-stream")
    assert response.headers["Cache-Control"] == "no-cache"
    items = await read_all(response)
    assert items == [ChatDelta(t) for t in ["Hello", ", ", "world", "!"]] + [ChatDone()]
    assert fake.requests[0]["messages"] == ASK["messages"]


async def test_health_names_the_provider_and_model(http, server, fake):
    async with http.get(f"{server.url}/api/health") as response:
        ai = (await response.json())["ai"]
    assert ai["provider"] == "openai" and ai["model"] == "fake-model"
    assert f"127.0.0.1:{fake.port}" in ai["label"]


async def test_anonymous_and_bad_tokens_get_401(http, server):
    for headers in ({}, {"Authorization": "Bearer not-a-token"}):
        response = await chat(http, server, headers=headers)
        assert response.status == 401
        assert (await response.json())["error"] in ("no_identity", "malformed_user_token")


@pytest.mark.parametrize(
    "body, status, code",
    [
        ({"messages": [{"role": "robot", "content": "hi"}]}, 400, "invalid_messages"),
        ({"messages": []}, 400, "invalid_messages"),
        ({"messages": [{"role": "user", "content": "hi"}], "model": "x"}, 400, "unknown_field"),
        ({"prompt": "hi"}, 400, "missing_field"),
        ({"messages": [{"role": "user", "content": "x" * 8001}]}, 413, "chat_too_large"),
        ({"messages": [{"role": "user", "content": "x"}] * 65}, 413, "chat_too_large"),
    ],
)
async def test_bad_requests_get_json_4xx(http, server, fake, body, status, code):
    response = await chat(http, server, body=body)
    assert response.status == status
    payload = await response.json()
    assert payload["error"] == code and payload["message"]
    assert fake.requests == []


async def test_bad_json_and_huge_bodies(http, server):
    headers = bearer(server)
    async with http.post(f"{server.url}/api/chat", data=b"{", headers=headers) as response:
        assert response.status == 400
    big = json.dumps({"messages": [{"role": "user", "content": "x" * 70_000}]})
    async with http.post(f"{server.url}/api/chat", data=big, headers=headers) as response:
        assert response.status == 413


async def test_rate_limit_is_per_user_with_a_clear_429(http, server):
    server.ctx.rate_limits.chat = KeyedRateLimiter(rate=1 / 60, burst=2)
    for _ in range(2):
        response = await chat(http, server)
        assert response.status == 200
        await response.read()
    response = await chat(http, server)
    assert response.status == 429
    assert int(response.headers["Retry-After"]) >= 1
    payload = await response.json()
    assert payload["error"] == "rate_limited" and "retry in" in payload["message"]
    other = await chat(http, server, headers=bearer(server, "bob"))
    assert other.status == 200
    await other.read()


@pytest.mark.parametrize(
    "mode, kind",
    [
        ("401", "auth"),
        ("429", "rate_limit"),
        ("500", "upstream"),
        ("broken", "upstream"),
        ("error_event", "upstream"),  # an error object in a data block
        ("error_sse", "upstream"),  # `event: error` mid-answer, then [DONE]
    ],
)
async def test_upstream_failures_end_in_one_safe_error_event(http, server, fake, mode, kind):
    fake.mode = mode
    response = await chat(http, server)
    assert response.status == 200
    raw = await response.read()
    assert LEAKY_KEY.encode() not in raw and b"Traceback" not in raw
    items = [parse_chat_event(e) for e in __import__("dashboard").SSEDecoder().feed(raw)]
    assert isinstance(items[-1], ChatFailure) and items[-1].kind == kind
    assert ChatDone() not in items
    if mode in ("broken", "error_event", "error_sse"):
        assert items[:2] == [ChatDelta("Hello"), ChatDelta(", ")]


async def test_an_unexpected_provider_failure_is_an_internal_error_event(http):
    srv = DashboardServer(port=0, token=TOKEN, ai=Boom())
    await srv.start()
    try:
        raw = await (await chat(http, srv)).read()
    finally:
        await srv.stop()
    assert b"secret detail" not in raw and LEAKY_KEY.encode() not in raw
    assert b'data: {"content": "partial "}' in raw
    assert b"event: error" in raw and b'"internal"' in raw


async def test_client_disconnect_closes_the_upstream_within_one_chunk(server, fake):
    fake.tokens = [f"t{i} " for i in range(100)]
    fake.delay = 0.05
    async with aiohttp.ClientSession() as http:
        response = await chat(http, server)
        stream = RawStream(response)
        seen = [parse_chat_event(await stream.next()) for _ in range(3)]
        assert seen == [ChatDelta("t0 "), ChatDelta("t1 "), ChatDelta("t2 ")]
        response.close()  # drop the connection mid-answer
    await asyncio.wait_for(fake.closed.wait(), 2)
    assert fake.sent_before_close is not None and fake.sent_before_close <= 3 + 1


async def test_server_shutdown_closes_answers_still_streaming(fake):
    fake.tokens = [f"t{i} " for i in range(100)]
    fake.delay = 0.05
    provider = OpenAIProvider("fake-model", api_key=LEAKY_KEY, base_url=fake.base_url)
    srv = DashboardServer(port=0, token=TOKEN, ai=provider)
    await srv.start()
    try:
        async with aiohttp.ClientSession() as http:
            response = await chat(http, srv)
            stream = RawStream(response)
            assert parse_chat_event(await stream.next()) == ChatDelta("t0 ")
            await srv.stop()
            await asyncio.wait_for(fake.closed.wait(), 2)  # the model request was closed
            assert srv.ctx.chat_relays == set()
            response.close()
    finally:
        await srv.stop()
        await provider.aclose()
