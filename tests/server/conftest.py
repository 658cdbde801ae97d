"""A real DashboardServer on a free loopback port, and a raw SSE reader built on the codec."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from dashboard.core.sse import SSEDecoder, ServerSentEvent
from dashboard.server import DashboardServer

TOKEN = "test-token"


@pytest.fixture
async def server():
    srv = DashboardServer(port=0, token=TOKEN, heartbeat=0.3)
    await srv.start()
    yield srv
    await srv.stop()


@pytest.fixture
async def http():
    async with aiohttp.ClientSession() as session:
        yield session


class RawStream:
    """Reads an SSE response with the sans-I/O decoder, one event at a time."""

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self.response = response
        self.decoder = SSEDecoder()
        self.pending: list[ServerSentEvent] = []
        self.raw = b""

    async def next(self, timeout: float = 3.0) -> ServerSentEvent:
        while not self.pending:
            chunk = await asyncio.wait_for(self.response.content.readany(), timeout)
            if not chunk:
                raise EOFError("stream ended")
            self.raw += chunk
            self.pending.extend(self.decoder.feed(chunk))
        return self.pending.pop(0)

    async def take(
        self, count: int, name: str | None = None, timeout: float = 5.0
    ) -> list[ServerSentEvent]:
        """The next ``count`` events (named ``name``), within ``timeout`` seconds overall."""

        async def collect() -> list[ServerSentEvent]:
            events: list[ServerSentEvent] = []
            while len(events) < count:
                event = await self.next()
                if name is None or event.event == name:
                    events.append(event)
            return events

        return await asyncio.wait_for(collect(), timeout)


async def publish(http, server, channel, event, data, token=TOKEN):
    async with http.post(
        f"{server.url}/api/publish",
        json={"channel": channel, "event": event, "data": data},
        headers={"Authorization": f"Bearer {token}"},
    ) as response:
        return response.status, await response.json()
