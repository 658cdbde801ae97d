"""An EventSource for asyncio: one SSE subscription that reconnects like a browser does.

The wire format lives in :mod:`dashboard.core.sse` and the reconnect policy in
:mod:`dashboard.core.backoff`; this module is only the I/O loop that feeds response bytes to
the decoder, hands out the events, and sleeps through the backoff delays between connections.

Reconnection follows the WHATWG EventSource model
(https://html.spec.whatwg.org/multipage/server-sent-events.html): ``Last-Event-ID`` is sent on
every reconnect, the server's ``retry:`` hint sets the reconnection delay, and a response that is
not an event stream fails the subscription for good. Two deliberate differences: 5xx responses
are retried (a restarting server or proxy is the common case), and the delay grows with jitter
from the ``retry`` hint so that clients dropped together do not come back together.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import AsyncIterator, Callable, Iterator

import aiohttp
from multidict import CIMultiDict
from yarl import URL

from ..core.backoff import backoff_delays
from ..core.connection import ConnectionState, ConnectionStatus, StatusWatchers
from ..core.errors import DashboardError
from ..core.sse import ServerSentEvent, SSEDecoder, encode_sse
from ..hub.status import OpenWaiter

#: Reconnection time before the server sends ``retry:``; the value browsers use.
DEFAULT_RETRY_MS = 3000
#: Cap on any reconnect delay, in seconds.
MAX_DELAY = 30.0
#: Bytes read at a time; together with the line limit it bounds what the decoder holds.
CHUNK_SIZE = 64 * 1024
#: A longer line means a broken or hostile server; the decoder would buffer all of it.
DEFAULT_MAX_LINE_SIZE = 1024 * 1024
#: How much of an error response is read to find its JSON ``message``.
MAX_ERROR_BODY = 4096

_LINE_END = re.compile(rb"[\r\n]")
_BOM = b"\xef\xbb\xbf"


class SSEError(DashboardError):
    """Why an SSE subscription failed; see :attr:`SSESubscription.fatal_error`."""


class SSEHTTPError(SSEError):
    """The server answered with a status other than 200 (fatal unless it is a 5xx).

    Attributes:
        status: the HTTP status code.
    """

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


class SSEContentTypeError(SSEError):
    """The server answered 200 with something other than ``text/event-stream``."""


class SSEProtocolError(SSEError):
    """The stream broke a limit (a line too long); the subscription reconnects."""


class SSERetriesExhausted(SSEError):
    """More consecutive attempts failed than ``max_retries`` allows."""


def _default_backoff(initial: float) -> Iterator[float]:
    return backoff_delays(initial=initial, maximum=MAX_DELAY)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    if isinstance(exc, SSEError):
        return text
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def validate_url(url: str | URL) -> URL:
    """Parse ``url`` and check that a subscription can connect to it.

    Returns:
        The parsed URL.

    Raises:
        ValueError: when the scheme is not http or https, or the host is missing.
    """
    parsed = URL(url)
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise ValueError(f"not an absolute http(s) URL: {str(url)!r}")
    return parsed


class SSESubscription(OpenWaiter):
    """Events of one SSE URL, as an async iterator that survives dropped connections.

    Iterate it once (``async for event in sub``). The iteration ends after :meth:`aclose`, or
    when the subscription fails for good (HTTP 204, any 4xx, a body that is not an event
    stream, or ``max_retries`` exceeded); then :attr:`fatal_error` holds the error and
    ``status.last_error`` its message. ``async with`` closes the subscription on exit.

    Args:
        url: absolute http or https URL of the event stream.
        session: session to use; when ``None`` the subscription creates one and closes it.
        headers: extra request headers. ``Accept``, ``Cache-Control`` and ``Last-Event-ID``
            are always set by the subscription.
        last_event_id: resume position to send with the first request.
        backoff: factory of reconnect delays in seconds. It is called with the initial delay
            (the server's ``retry`` hint, else 3 s) each time a successful connection is lost.
        connect_timeout: seconds to wait for the response headers.
        read_timeout: seconds without a single byte (heartbeats count) after which the
            connection is presumed dead and replaced; ``None`` waits forever.
        max_retries: how many times to retry after consecutive failures before giving up;
            ``None`` retries forever.
        max_line_size: longest line accepted, in bytes; a longer one is a protocol error and
            causes a reconnect.

    Raises:
        ValueError: when ``url`` is not an absolute http(s) URL, or ``last_event_id`` could
            not be sent as a header.
    """

    def __init__(
        self,
        url: str | URL,
        *,
        session: aiohttp.ClientSession | None = None,
        headers: dict[str, str] | None = None,
        last_event_id: str | None = None,
        backoff: Callable[[float], Iterator[float]] | None = None,
        connect_timeout: float = 10,
        read_timeout: float | None = 60,
        max_retries: int | None = None,
        max_line_size: int = DEFAULT_MAX_LINE_SIZE,
    ):
        self.url = validate_url(url)
        if last_event_id is not None and re.search(r"[\r\n\0]", last_event_id):
            raise ValueError("last_event_id must not contain CR, LF or NUL")
        self.headers: CIMultiDict[str] = CIMultiDict(headers or {})
        #: The ``Last-Event-ID`` the next connection sends.
        self.last_event_id = last_event_id or ""
        #: The server's latest ``retry:`` hint in milliseconds, if any.
        self.retry: int | None = None
        self.backoff = backoff or _default_backoff
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.max_retries = max_retries
        self.max_line_size = max_line_size
        #: Why the subscription stopped for good; ``None`` while it runs or after aclose().
        self.fatal_error: SSEError | None = None

        self._session = session
        self._owns_session = session is None
        self._status_watchers = StatusWatchers(ConnectionStatus(ConnectionState.CONNECTING))
        self._closed = False
        self._closed_event = asyncio.Event()
        self._iterating = False
        self._connecting: asyncio.Task[aiohttp.ClientResponse] | None = None
        self._response: aiohttp.ClientResponse | None = None

    def _set_status(self, state: ConnectionState, retries: int, last_error: str | None) -> None:
        self._status_watchers.update(ConnectionStatus(state, retries, last_error))

    def __aiter__(self) -> AsyncIterator[ServerSentEvent]:
        if self._iterating:
            # Two consumers would split the events between them and race on the connection.
            raise RuntimeError("an SSESubscription can be iterated only once")
        self._iterating = True
        return self._run()

    async def __aenter__(self) -> SSESubscription:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Stop the subscription and close the session if it owns it.

        Safe to call from any task and more than once. A consumer blocked in a read, a
        connect or a backoff sleep wakes up at once and its iteration ends.
        """
        self._closed = True
        self._closed_event.set()
        if self._connecting is not None:
            self._connecting.cancel()
        # Closing the response fails a pending read with ClientConnectionError. The generator
        # itself is left alone: finalising it from here would race with its consumer.
        self._release()
        self._set_status(ConnectionState.CLOSED, self.status.retries, self.status.last_error)
        await self._close_session()

    async def _close_session(self) -> None:
        if self._owns_session and self._session is not None and not self._session.closed:
            await self._session.close()

    def _release(self) -> None:
        if self._response is not None:
            # close(), not release(): an unfinished event stream cannot go back to the pool.
            self._response.close()
            self._response = None

    async def _run(self) -> AsyncIterator[ServerSentEvent]:
        retries = 0
        delays: Iterator[float] | None = None
        try:
            while not self._closed:
                if self._session is None:
                    self._session = aiohttp.ClientSession()
                try:
                    response = await self._connect(self._session)
                    if response is None:
                        break
                    retries, delays = 0, None
                    self._set_status(ConnectionState.OPEN, 0, None)
                    async for event in self._read(response):
                        yield event
                        if self._closed:
                            return
                    error = "server closed the stream"
                except (SSEHTTPError, SSEContentTypeError) as exc:
                    if isinstance(exc, SSEHTTPError) and exc.status >= 500:
                        error = _one_line(exc)
                    else:
                        self._fail(exc, retries)
                        return
                except (aiohttp.ClientError, TimeoutError, OSError, SSEProtocolError) as exc:
                    error = self._describe(exc)
                finally:
                    self._release()
                if self._closed:
                    break
                retries += 1
                if self.max_retries is not None and retries > self.max_retries:
                    exhausted = SSERetriesExhausted(f"gave up after {retries} attempts: {error}")
                    self._fail(exhausted, retries)
                    return
                self._set_status(ConnectionState.RECONNECTING, retries, error)
                if delays is None:
                    # A fresh generator per lost connection: the backoff starts over from the
                    # latest retry hint instead of where the previous outage left it.
                    retry = DEFAULT_RETRY_MS if self.retry is None else self.retry
                    delays = self.backoff(retry / 1000)
                await self._sleep(next(delays))
        finally:
            self._release()
            self._set_status(ConnectionState.CLOSED, self.status.retries, self.status.last_error)
            await self._close_session()

    def _fail(self, exc: SSEError, retries: int) -> None:
        if self._closed:
            return  # aclose() interrupted the request; that is not the server's fault
        self.fatal_error = exc
        self._set_status(ConnectionState.CLOSED, retries, _one_line(exc))

    def _describe(self, exc: BaseException) -> str:
        if isinstance(exc, aiohttp.ServerTimeoutError):
            return f"no data for {self.read_timeout} s"
        if isinstance(exc, TimeoutError):
            return f"no response within {self.connect_timeout} s"
        return _one_line(exc)

    async def _sleep(self, delay: float) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(delay):
                await self._closed_event.wait()

    async def _request(self, session: aiohttp.ClientSession) -> aiohttp.ClientResponse:
        headers = self.headers.copy()
        headers["Accept"] = "text/event-stream"
        headers["Cache-Control"] = "no-cache"
        if self.last_event_id:
            headers["Last-Event-ID"] = self.last_event_id
        # Per request, so that a session's default total timeout cannot cut a healthy stream.
        # aiohttp restarts sock_read with every byte and pauses it while the consumer lags.
        timeout = aiohttp.ClientTimeout(total=None, sock_read=self.read_timeout)
        async with asyncio.timeout(self.connect_timeout):
            return await session.get(self.url, headers=headers, timeout=timeout)

    async def _connect(self, session: aiohttp.ClientSession) -> aiohttp.ClientResponse | None:
        """Open the stream, or return ``None`` if :meth:`aclose` interrupted it.

        Raises:
            SSEHTTPError: for any status but 200.
            SSEContentTypeError: for a 200 that is not an event stream.
        """
        # A task, so that aclose() can cancel the request without cancelling the consumer.
        task = self._connecting = asyncio.ensure_future(self._request(session))
        try:
            await asyncio.wait({task})
        finally:
            task.cancel()
            self._connecting = None
        if task.cancelled():
            return None
        response = self._response = task.result()
        if self._closed:
            return None
        if response.status == 200:
            if response.content_type != "text/event-stream":
                raise SSEContentTypeError(
                    f"expected text/event-stream, got {response.content_type or 'no type'}"
                )
            return response
        raise SSEHTTPError(response.status, await self._error_message(response))

    async def _error_message(self, response: aiohttp.ClientResponse) -> str:
        text = f"HTTP {response.status} {response.reason or ''}".rstrip()
        body = b""
        with contextlib.suppress(aiohttp.ClientError, TimeoutError):
            async with asyncio.timeout(self.connect_timeout):
                while len(body) < MAX_ERROR_BODY:
                    chunk = await response.content.read(MAX_ERROR_BODY - len(body))
                    if not chunk:
                        break
                    body += chunk
        with contextlib.suppress(ValueError):
            detail = json.loads(body)
            if isinstance(detail, dict) and isinstance(detail.get("message"), str):
                text += ": " + detail["message"]
        return text

    async def _read(self, response: aiohttp.ClientResponse) -> AsyncIterator[ServerSentEvent]:
        decoder = SSEDecoder()
        if self.last_event_id:
            # The spec's id buffer outlives the connection: an event without an id field on
            # the new stream still carries the old id. A block without data dispatches
            # nothing, so feeding one seeds the decoder through its public API.
            decoder.feed(encode_sse(id=self.last_event_id))
        head: bytes | None = b""  # the stream's first bytes, until we know if they are a BOM
        line_size = 0
        while True:
            chunk = await response.content.read(CHUNK_SIZE)
            if not chunk:
                return
            if head is not None:
                # The seeded decoder has already started, so it would keep a BOM as text.
                head += chunk
                if len(head) < len(_BOM) and _BOM.startswith(head):
                    continue
                chunk, head = head.removeprefix(_BOM), None
            line_size = self._check_line_size(chunk, line_size)
            events = decoder.feed(chunk)
            if decoder.retry is not None:
                self.retry = decoder.retry
            for event in events:
                # Per event, so that a consumer that stops mid-chunk resumes right after
                # the last event it saw.
                self.last_event_id = event.id
                yield event
            self.last_event_id = decoder.last_event_id  # blocks without data set ids too

    def _check_line_size(self, chunk: bytes, line_size: int) -> int:
        """Return the length of the unterminated line after ``chunk``, given the one before.

        Raises:
            SSEProtocolError: when a line grows beyond :attr:`max_line_size`.
        """
        first = _LINE_END.search(chunk)
        if first is None:
            line_size += len(chunk)
        else:
            longest = line_size + first.start()
            # Lines wholly inside the chunk are shorter than the chunk itself.
            if len(chunk) > self.max_line_size:
                longest = max(longest, *map(len, _LINE_END.split(chunk)))
            if longest > self.max_line_size:
                line_size = longest
            else:
                line_size = len(chunk) - 1 - max(chunk.rfind(b"\n"), chunk.rfind(b"\r"))
        if line_size > self.max_line_size:
            raise SSEProtocolError(f"line longer than {self.max_line_size} bytes")
        return line_size
