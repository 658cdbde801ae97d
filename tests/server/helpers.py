"""Test helpers for the API: a raw SSE reader on the sans-I/O decoder, and publish."""

from __future__ import annotations

import asyncio

import aiohttp

from dashboard.core.sse import ServerSentEvent, SSEDecoder

TOKEN = "test-publish-token-0123"


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
