"""SSESubscription and HubEventStream against a real aiohttp server on a loopback port.

Each test scripts what the server does per request (stream some events then drop, answer 204,
stall...), and every wait is bounded with asyncio.wait_for so a regression fails fast.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import socket
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from multidict import CIMultiDictProxy, MultiDictProxy

from dashboard.client import (
    HubEventStream,
    SSEContentTypeError,
    SSEHTTPError,
    SSERetriesExhausted,
    SSESubscription,
)
from dashboard.client.stream import events_url
from dashboard.core.connection import ConnectionState, ConnectionStatus
from dashboard.core.cursor import Position, Reset, encode_cursor
from dashboard.core.events import Event
from dashboard.core.sse import ServerSentEvent, encode_sse
from tests.cursors import cursor_for

E = ServerSentEvent
Script = Callable[[web.Request], Awaitable[web.StreamResponse]]
WAIT = 5.0  # generous bound for anything that should happen "soon"


@dataclass
class Seen:
    """What the server saw of one request."""

    path: str
    query: MultiDictProxy[str]
    headers: CIMultiDictProxy[str]
    at: float


class ScriptedServer:
    """An SSE server whose answer to each request is the next script in :attr:`scripts`."""

    def __init__(self) -> None:
        self.scripts: deque[Script] = deque()
        self.requests: list[Seen] = []
        self.stopping = asyncio.Event()
        self.base = ""
        self._arrived = asyncio.Condition()

    def script(self, *scripts: Script) -> None:
        self.scripts.extend(scripts)

    def url(self, path: str = "/events") -> str:
        return self.base + path

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(Seen(request.path, request.query, request.headers, time.monotonic()))
        async with self._arrived:
            self._arrived.notify_all()
        # Out of scripts: hold the request without answering, like a hung server.
        script = self.scripts.popleft() if self.scripts else stall_before_headers
        return await script(request)

    async def wait_requests(self, count: int) -> None:
        async with self._arrived:
            await asyncio.wait_for(
                self._arrived.wait_for(lambda: len(self.requests) >= count), WAIT
            )


SERVER: ScriptedServer  # set by the fixture, read by the scripts


@pytest.fixture
async def server() -> AsyncIterator[ScriptedServer]:
    global SERVER
    SERVER = scripted = ScriptedServer()
    app = web.Application()
    app.router.add_get("/{tail:.*}", scripted.handle)
    # handler_cancellation: a stalled handler ends when its client goes away.
    runner = web.AppRunner(app, handler_cancellation=True, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    scripted.base = f"http://{host}:{port}"
    yield scripted
    scripted.stopping.set()
    await runner.cleanup()


# --- scripts -------------------------------------------------------------------------------


def stream(*blocks: bytes, end: str = "stall", gap: float = 0.0) -> Script:
    """Answer 200 text/event-stream with ``blocks``, then ``end``: stall, close or drop."""

    async def handler(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for block in blocks:
            await response.write(block)
            if gap:
                await asyncio.sleep(gap)
        if end == "close":
            await response.write_eof()
            return response
        if end == "drop":
            assert request.transport is not None
            # aiohttp fails a read at once when the connection breaks, discarding bytes that
            # had arrived but were not read yet, so hang up a little after the last write, as a
            # real network failure would. (Lost bytes would be resent on resume anyway.)
            await asyncio.sleep(0.05)
            # close() flushes what was written, then hangs up without the final chunk.
            request.transport.close()
        await SERVER.stopping.wait()
        return response

    return handler


def respond(status: int, body: Any = None, content_type: str = "application/json") -> Script:
    async def handler(request: web.Request) -> web.StreamResponse:
        if status == 204:
            return web.Response(status=204)
        text = body if isinstance(body, str) else json.dumps(body)
        return web.Response(status=status, text=text, content_type=content_type)

    return handler


def replay(total: int, per_connection: int, end: str) -> Script:
    """Serve events 1..total from a log, resuming after the request's Last-Event-ID."""

    async def handler(request: web.Request) -> web.StreamResponse:
        last = int(request.headers.get("Last-Event-ID") or 0)
        ids = range(last + 1, min(last + per_connection, total) + 1)
        blocks = [encode_sse(str(i), id=str(i)) for i in ids]
        return await stream(*blocks, end=end)(request)

    return handler


async def stall_before_headers(request: web.Request) -> web.StreamResponse:
    await SERVER.stopping.wait()
    return web.Response(status=503)


# --- helpers -------------------------------------------------------------------------------


class Backoff:
    """A backoff factory that records its initial delays and waits ``delay`` every time."""

    def __init__(self, delay: float = 0.01) -> None:
        self.delay = delay
        self.initials: list[float] = []

    def __call__(self, initial: float) -> Iterator[float]:
        self.initials.append(initial)
        return itertools.repeat(self.delay)


def subscribe(url: str, **kwargs: Any) -> SSESubscription:
    kwargs.setdefault("backoff", Backoff())
    kwargs.setdefault("connect_timeout", WAIT)
    kwargs.setdefault("read_timeout", WAIT)
    return SSESubscription(url, **kwargs)


async def take(iterator: AsyncIterator[Any], count: int) -> list[Any]:
    return [await asyncio.wait_for(anext(iterator), WAIT) for _ in range(count)]


async def drain(iterator: AsyncIterator[Any]) -> list[Any]:
    """Everything until the iteration ends, which must happen soon."""

    async def collect() -> list[Any]:
        return [item async for item in iterator]

    return await asyncio.wait_for(collect(), WAIT)


def record(sub: SSESubscription | HubEventStream) -> list[ConnectionStatus]:
    statuses: list[ConnectionStatus] = []
    sub.watch_status(statuses.append)
    return statuses


def reconnecting(statuses: list[ConnectionStatus]) -> ConnectionStatus:
    return next(s for s in statuses if s.state is ConnectionState.RECONNECTING)


async def wait_state(sub: SSESubscription, state: ConnectionState) -> None:
    deadline = time.monotonic() + WAIT
    while sub.status.state is not state:
        assert time.monotonic() < deadline, f"still {sub.status}"
        await asyncio.sleep(0.005)


def envelope(channel: str, offset: int, data: Any, epoch: str = "E1") -> bytes:
    event = Event(channel, "price", json.dumps(data), offset, epoch, 1700000000.5)
    cursor = encode_cursor([channel], {channel: Position(epoch, offset)})
    return encode_sse(event.envelope_json(), event="price", id=cursor)


def connected(channels: list[str], epoch: str = "E1") -> bytes:
    info = {"channels": channels, "epoch": epoch, "heartbeat": 15}
    return encode_sse(json.dumps(info), event="connected", id=epoch, retry=3000)


# --- SSESubscription -----------------------------------------------------------------------


async def test_events_flow_with_browser_headers(server: ScriptedServer) -> None:
    server.script(stream(encode_sse(retry=50), encode_sse("one", id="1"), b": heartbeat\n\n",
                         encode_sse("two", event="tick", id="2")))  # fmt: skip
    async with subscribe(server.url()) as sub:
        statuses = record(sub)
        events = await take(aiter(sub), 2)
        assert sub.status == ConnectionStatus(ConnectionState.OPEN)
    assert events == [E(data="one", id="1"), E(event="tick", data="two", id="2")]
    assert (sub.retry, sub.last_event_id) == (50, "2")
    headers = server.requests[0].headers
    assert headers["Accept"] == "text/event-stream"
    assert headers["Cache-Control"] == "no-cache"
    assert "Last-Event-ID" not in headers
    assert [s.state for s in statuses] == [ConnectionState.OPEN, ConnectionState.CLOSED]
    assert sub.fatal_error is None


@pytest.mark.parametrize("end", ["drop", "close"])
async def test_reconnect_resumes_without_loss_or_duplicates(
    server: ScriptedServer, end: str
) -> None:
    # Spare scripts: should a drop discard bytes the client had not read yet, that costs a
    # reconnect but never an event.
    server.script(*[replay(total=6, per_connection=2, end=end)] * 10)
    async with subscribe(server.url()) as sub:
        events = await take(aiter(sub), 6)
    assert [e.data for e in events] == ["1", "2", "3", "4", "5", "6"]
    sent = [r.headers.get("Last-Event-ID") for r in server.requests]
    assert sent[0] is None
    if end == "close":
        assert sent == [None, "2", "4", "6"][: len(sent)]


async def test_initial_last_event_id_survives_events_without_id(server: ScriptedServer) -> None:
    server.script(
        stream(encode_sse("no id"), end="close"),  # the spec keeps the previous id
        stream(encode_sse("reset", id=""), end="close"),  # an empty id clears it
        stream(encode_sse("last")),
    )
    async with subscribe(server.url(), last_event_id="7") as sub:
        await take(aiter(sub), 3)
    assert [r.headers.get("Last-Event-ID") for r in server.requests] == ["7", "7", None]


async def test_last_event_id_is_exact_within_a_chunk(server: ScriptedServer) -> None:
    server.script(stream(b"".join(encode_sse(str(i), id=str(i)) for i in (1, 2, 3))))
    async with subscribe(server.url()) as sub:
        iterator = aiter(sub)
        await take(iterator, 1)
        assert sub.last_event_id == "1"  # not "3": a consumer that stops here resumes at 2
        await take(iterator, 2)
        assert sub.last_event_id == "3"


async def test_retry_hint_is_the_backoff_base_and_resets(server: ScriptedServer) -> None:
    backoff = Backoff()
    server.script(
        stream(encode_sse(retry=40), encode_sse("a"), end="close"),
        stream(encode_sse("b"), end="close"),
        respond(503, {"error": "unavailable"}),  # same outage: the generator is not renewed
        stream(encode_sse("c")),
    )
    async with subscribe(server.url(), backoff=backoff) as sub:
        await take(aiter(sub), 3)
    assert backoff.initials == [0.04, 0.04]


async def test_default_backoff_honours_small_retry(server: ScriptedServer) -> None:
    server.script(
        stream(encode_sse(retry=20), encode_sse("a"), end="close"), stream(encode_sse("b"))
    )
    async with SSESubscription(server.url()) as sub:  # the real backoff: 3 s without the hint
        await take(aiter(sub), 2)
    assert server.requests[1].at - server.requests[0].at < 1.0


@pytest.mark.parametrize(
    ("script", "error", "message"),
    [
        (respond(204), SSEHTTPError, "HTTP 204"),
        (respond(200, "<html></html>", "text/html"), SSEContentTypeError, "text/html"),
        (respond(404, {"error": "not_found", "message": "no such\nchannel"}), SSEHTTPError,
         "HTTP 404 Not Found: no such channel"),
        (respond(400, {"error": "invalid_last_event_id", "message": "bad cursor"}), SSEHTTPError,
         "bad cursor"),
        (respond(401, "go away", "text/plain"), SSEHTTPError, "HTTP 401 Unauthorized"),
    ],
)  # fmt: skip
async def test_fatal_responses_stop_for_good(
    server: ScriptedServer, script: Script, error: type[Exception], message: str
) -> None:
    server.script(script, stream(encode_sse("never")))
    async with subscribe(server.url()) as sub:
        assert await drain(aiter(sub)) == []
        assert sub.status.state is ConnectionState.CLOSED
        assert sub.status.retries == 0
        assert isinstance(sub.fatal_error, error)
        assert message in (sub.status.last_error or "")
        assert "\n" not in (sub.status.last_error or "")
    assert len(server.requests) == 1


async def test_server_errors_are_retried(server: ScriptedServer) -> None:
    backoff = Backoff()
    server.script(
        respond(503, {"error": "unavailable", "message": "restarting"}),
        respond(500, "oops", "text/plain"),
        stream(encode_sse("up")),
    )
    async with subscribe(server.url(), backoff=backoff) as sub:
        statuses = record(sub)
        assert [e.data for e in await take(aiter(sub), 1)] == ["up"]
    assert statuses[:3] == [
        ConnectionStatus(
            ConnectionState.RECONNECTING, 1, "HTTP 503 Service Unavailable: restarting"
        ),
        ConnectionStatus(ConnectionState.RECONNECTING, 2, "HTTP 500 Internal Server Error"),
        ConnectionStatus(ConnectionState.OPEN, 0, None),
    ]
    assert backoff.initials == [3.0]  # no retry hint yet: the browsers' default


async def test_gives_up_after_max_retries(server: ScriptedServer) -> None:
    server.script(*[respond(502, {"error": "bad_gateway"})] * 5)
    async with subscribe(server.url(), max_retries=2) as sub:
        assert await drain(aiter(sub)) == []
    assert len(server.requests) == 3
    assert isinstance(sub.fatal_error, SSERetriesExhausted)
    assert sub.status.state is ConnectionState.CLOSED
    assert sub.status.retries == 3
    assert sub.status.last_error == "gave up after 3 attempts: HTTP 502 Bad Gateway"


async def test_connection_refused_is_retried() -> None:
    with socket.socket() as sock:  # bound but never listening: connections are refused
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    sub = subscribe(f"http://127.0.0.1:{port}/events", max_retries=1)
    statuses = record(sub)
    assert await drain(aiter(sub)) == []
    assert [s.state for s in statuses] == [ConnectionState.RECONNECTING, ConnectionState.CLOSED]
    assert "ClientConnectorError" in (statuses[0].last_error or "")
    assert isinstance(sub.fatal_error, SSERetriesExhausted)


async def test_read_timeout_reconnects(server: ScriptedServer) -> None:
    server.script(stream(encode_sse("1", id="1")), stream(encode_sse("2", id="2")))
    async with subscribe(server.url(), read_timeout=0.3) as sub:
        statuses = record(sub)
        started = time.monotonic()
        assert [e.data for e in await take(aiter(sub), 2)] == ["1", "2"]
        assert time.monotonic() - started < 2
    assert reconnecting(statuses) == ConnectionStatus(
        ConnectionState.RECONNECTING, 1, "no data for 0.3 s"
    )
    assert server.requests[1].headers["Last-Event-ID"] == "1"


async def test_heartbeats_keep_the_connection_alive(server: ScriptedServer) -> None:
    beats = [b": heartbeat\n\n"] * 12
    server.script(stream(encode_sse("1"), *beats, encode_sse("2"), gap=0.05))
    async with subscribe(server.url(), read_timeout=0.25) as sub:
        assert [e.data for e in await take(aiter(sub), 2)] == ["1", "2"]
    assert len(server.requests) == 1


@pytest.mark.parametrize(
    "blocks",
    [
        [b"data: " + b"x" * 4000],  # never terminated
        [b"data: " + b"x" * 4000 + b"\n\n"],  # terminated, but too long all the same
        [b"data: " + b"x" * 700, b"x" * 700],  # grows across chunks
    ],
)
async def test_overlong_line_is_a_protocol_error(
    server: ScriptedServer, blocks: list[bytes]
) -> None:
    server.script(stream(encode_sse("y" * 1000), *blocks, gap=0.02), stream(encode_sse("ok")))
    async with subscribe(server.url(), max_line_size=1024) as sub:
        statuses = record(sub)
        assert [len(e.data) for e in await take(aiter(sub), 2)] == [1000, 2]
    assert reconnecting(statuses).last_error == "line longer than 1024 bytes"


async def test_utf8_bom_is_stripped_after_resume(server: ScriptedServer) -> None:
    server.script(stream(b"\xef\xbb", b"\xbfdata: a\n\n", gap=0.02))
    async with subscribe(server.url(), last_event_id="1") as sub:
        assert await take(aiter(sub), 1) == [E(data="a", id="1")]


async def test_aclose_during_read_returns_promptly(server: ScriptedServer) -> None:
    server.script(stream(encode_sse("1")))
    sub = subscribe(server.url())
    received: list[ServerSentEvent] = []

    async def consume() -> None:
        async for event in sub:
            received.append(event)

    consumer = asyncio.create_task(consume())
    await wait_state(sub, ConnectionState.OPEN)
    await asyncio.sleep(0.05)  # the consumer is now blocked reading
    started = time.monotonic()
    await asyncio.wait_for(sub.aclose(), 1)
    await asyncio.wait_for(consumer, 1)
    assert time.monotonic() - started < 1
    assert [e.data for e in received] == ["1"]
    assert sub.status.state is ConnectionState.CLOSED
    assert sub.fatal_error is None


@pytest.mark.parametrize("phase", ["connect", "backoff"])
async def test_aclose_while_not_connected_returns_promptly(
    server: ScriptedServer, phase: str
) -> None:
    if phase == "backoff":
        server.script(respond(503, {"error": "unavailable"}))
    # Without aclose() a connect would wait WAIT seconds, a backoff 30 seconds.
    sub = subscribe(server.url(), backoff=Backoff(30))
    consumer = asyncio.create_task(drain(aiter(sub)))
    await server.wait_requests(1)
    if phase == "backoff":
        await wait_state(sub, ConnectionState.RECONNECTING)
    started = time.monotonic()
    await asyncio.wait_for(sub.aclose(), 1)
    assert await asyncio.wait_for(consumer, 1) == []
    assert time.monotonic() - started < 1
    assert sub.status.state is ConnectionState.CLOSED


async def test_status_transitions_and_unwatch(server: ScriptedServer) -> None:
    server.script(stream(encode_sse("1", id="1"), end="drop"), stream(encode_sse("2", id="2")))
    sub = subscribe(server.url())
    statuses = record(sub)
    ignored: list[ConnectionStatus] = []
    sub.watch_status(ignored.append)()
    assert sub.status == ConnectionStatus(ConnectionState.CONNECTING)
    await take(aiter(sub), 2)
    await sub.aclose()
    await sub.aclose()  # idempotent
    assert [(s.state, s.retries) for s in statuses] == [
        (ConnectionState.OPEN, 0),
        (ConnectionState.RECONNECTING, 1),
        (ConnectionState.OPEN, 0),
        (ConnectionState.CLOSED, 0),
    ]
    assert "ClientPayloadError" in (statuses[1].last_error or "")
    assert ignored == []


async def test_iterates_once_and_keeps_a_given_session(server: ScriptedServer) -> None:
    server.script(stream(encode_sse("1")))
    async with aiohttp.ClientSession() as session:
        async with subscribe(server.url(), session=session) as sub:
            iterator = aiter(sub)
            with pytest.raises(RuntimeError):
                aiter(sub)
            await take(iterator, 1)
        assert not session.closed


@pytest.mark.parametrize(
    "url", ["ftp://example.com/events", "http://", "localhost:5006/events", "/api/events", ""]
)
def test_bad_url_is_rejected_at_once(url: str) -> None:
    with pytest.raises(ValueError):
        SSESubscription(url)
    with pytest.raises(ValueError):
        HubEventStream(url, ["a"])


def test_last_event_id_must_fit_in_a_header() -> None:
    with pytest.raises(ValueError):
        SSESubscription("http://127.0.0.1:1/events", last_event_id="1\r\nX-Evil: 1")


# --- HubEventStream ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "channels", "expected"),
    [
        ("http://h:5006", ["a", "b"], "http://h:5006/api/events?channel=a&channel=b"),
        ("http://h:5006/", [], "http://h:5006/api/events"),
        ("http://h/x/events?token=t", ["a"], "http://h/x/events?token=t&channel=a"),
    ],
)
def test_events_url(url: str, channels: list[str], expected: str) -> None:
    assert str(events_url(url, channels)) == expected


async def test_hub_event_stream_parses_the_hub_protocol(server: ScriptedServer) -> None:
    reset = {"channel": "b", "reason": "expired", "offset": 4}
    server.script(
        stream(
            connected(["a", "b"]),
            encode_sse(json.dumps(reset), event="reset", id="E1|a:0|b:4"),
            envelope("a", 1, {"x": 1, "name": "ü"}),
            envelope("b", 5, [1.5, None]),
        )
    )
    resets: list[Reset] = []
    async with HubEventStream(server.base, ["a", "b"], on_reset=resets.append,
                              backoff=Backoff()) as stream_:  # fmt: skip
        statuses = record(stream_)
        events = await take(aiter(stream_), 2)
        assert stream_.status.state is ConnectionState.OPEN
        assert stream_.epoch == "E1"
    assert events == [
        Event("a", "price", '{"x":1,"name":"ü"}', 1, "E1", 1700000000.5),
        Event("b", "price", "[1.5,null]", 5, "E1", 1700000000.5),
    ]
    assert stream_.resets == resets == [Reset("b", "expired", 4)]
    assert server.requests[0].path == "/api/events"
    assert server.requests[0].query.getall("channel") == ["a", "b"]
    assert stream_.status.state is ConnectionState.CLOSED
    assert statuses[-1].state is ConnectionState.CLOSED


async def test_hub_event_stream_resumes_without_duplicates(server: ScriptedServer) -> None:
    server.script(
        stream(connected(["a"]), envelope("a", 1, 1), envelope("a", 2, 2), end="close"),
        # A server that resends the last event must not make the consumer see it twice.
        stream(connected(["a"]), envelope("a", 2, 2), envelope("a", 3, 3)),
    )
    async with HubEventStream(server.url("/api/events"), ["a"], backoff=Backoff()) as stream_:
        events = await take(aiter(stream_), 3)
    assert [(e.offset, e.data) for e in events] == [(1, 1), (2, 2), (3, 3)]
    assert server.requests[1].headers["Last-Event-ID"] == cursor_for(["a"], "E1", {"a": 2})


@pytest.mark.parametrize(
    ("path", "channel"), [("/feed?channel=prices", "prices"), ("/feed", "feed")]
)
async def test_hub_event_stream_wraps_foreign_events(
    server: ScriptedServer, path: str, channel: str
) -> None:
    server.script(
        stream(
            encode_sse("hello"),
            encode_sse('{"x": 1}', event="tick"),
            encode_sse("not json", event="connected"),
        )
    )
    before = time.time()
    async with HubEventStream(server.url(path), backoff=Backoff()) as stream_:
        events = await take(aiter(stream_), 3)
    assert [(e.channel, e.name, e.data_json, e.offset, e.epoch) for e in events] == [
        (channel, "message", '"hello"', 1, "external"),
        (channel, "tick", '{"x": 1}', 2, "external"),
        (channel, "connected", '"not json"', 3, "external"),
    ]
    assert all(before <= e.published_at <= time.time() for e in events)
    assert server.requests[0].path == "/feed"


async def test_hub_event_stream_reports_fatal_errors(server: ScriptedServer) -> None:
    server.script(respond(400, {"error": "invalid_channel", "message": "bad channel name"}))
    async with HubEventStream(server.base, ["a b"], backoff=Backoff()) as stream_:
        assert await drain(aiter(stream_)) == []
        assert stream_.status.state is ConnectionState.CLOSED
        assert "bad channel name" in (stream_.status.last_error or "")
        assert isinstance(stream_.fatal_error, SSEHTTPError)
        assert stream_.fatal_error.status == 400


async def test_wait_open_returns_once_connected(server: ScriptedServer) -> None:
    server.script(stream(encode_sse("one", id="1")))
    async with subscribe(server.url()) as sub:
        events = asyncio.ensure_future(take(aiter(sub), 1))
        await asyncio.wait_for(sub.wait_open(), WAIT)
        assert sub.status.state is ConnectionState.OPEN
        assert await events == [E(data="one", id="1")]
