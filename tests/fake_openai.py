"""A local OpenAI-compatible server for tests: ``POST /v1/chat/completions`` with ``stream=true``.

A real aiohttp server on a free loopback port, so the real ``openai`` SDK talks to it over HTTP.
``mode`` picks the behaviour of the next requests (``ok``, ``401``, ``429``, ``500``, ``broken``:
a few chunks, then the connection is cut; ``error_event``: a few chunks, then an error object
inside the stream; ``error_sse``: a few chunks, then an ``event: error`` block and ``[DONE]``). It records each request and, when a client goes away
mid-stream, how many chunks it had written and when its next write failed.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from aiohttp import web

LEAKY_KEY = "sk-test-SECRET-0123456789"


def chunk(content: str | None, model: str, *, role: bool = False, finish: bool = False) -> bytes:
    delta: dict[str, Any] = {"role": "assistant"} if role else {}
    if content is not None:
        delta["content"] = content
    body = {
        "id": "chatcmpl-fake",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": "stop" if finish else None}],
    }
    return f"data: {json.dumps(body)}\n\n".encode()


class FakeOpenAI:
    """Streams ``tokens``, one chunk per ``delay`` seconds."""

    def __init__(self, tokens: list[str] | None = None, delay: float = 0.0) -> None:
        self.tokens = tokens or ["Hello", ", ", "world", "!"]
        self.delay = delay
        self.mode = "ok"
        self.broken_after = 2
        self.requests: list[dict[str, Any]] = []
        self.auth: list[str] = []
        #: Chunks (tokens) written before a write failed because the client left.
        self.sent_before_close: int | None = None
        self.closed_at: float | None = None
        self.closed = asyncio.Event()
        self.written = 0
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    async def start(self) -> FakeOpenAI:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._completions)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _completions(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.requests.append(body)
        self.auth.append(request.headers.get("Authorization", ""))
        if self.mode in ("401", "429", "500"):
            message = f"Incorrect API key provided: {LEAKY_KEY}"  # as OpenAI quotes the key
            error = {"error": {"message": message, "type": "invalid_request_error", "code": None}}
            return web.json_response(error, status=int(self.mode))
        model = body.get("model", "")
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        self.written = 0
        try:
            await response.write(chunk(None, model, role=True))
            for index, token in enumerate(self.tokens):
                if self.mode == "broken" and index == self.broken_after:
                    assert request.transport is not None
                    request.transport.abort()  # no terminating chunk: a cut connection
                    return response
                if self.mode == "error_event" and index == self.broken_after:
                    error = {"error": {"message": f"overloaded, key {LEAKY_KEY}"}}
                    await response.write(f"data: {json.dumps(error)}\n\n".encode())
                    return response
                if self.mode == "error_sse" and index == self.broken_after:
                    # An `event: error` block, then (as some servers do) a normal ending.
                    error = {"message": f"overloaded, key {LEAKY_KEY}", "code": 503}
                    await response.write(f"event: error\ndata: {json.dumps(error)}\n\n".encode())
                    await response.write(b"data: [DONE]\n\n")
                    return response
                if self.delay:
                    await asyncio.sleep(self.delay)
                await response.write(chunk(token, model))
                self.written += 1
            await response.write(chunk(None, model, finish=True))
            await response.write(b"data: [DONE]\n\n")
            await response.write_eof()
        except (ConnectionError, RuntimeError):
            # The client went away: this write found the connection closed.
            self.sent_before_close = self.written
            self.closed_at = time.monotonic()
            self.closed.set()
        return response


class Boom:
    """A provider that fails with an unexpected exception after one chunk."""

    name = "boom"
    model = "boom-1"
    label = "Boom"

    async def stream(self, messages):
        yield "partial "
        raise RuntimeError(f"secret detail {LEAKY_KEY}")
