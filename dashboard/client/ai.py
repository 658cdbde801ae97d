"""A remote dashboard's ``POST /api/chat`` as a :class:`~dashboard.ai.Provider`.

A notebook needs no model key of its own: it asks a running ``dashboard serve`` with a user
token (``dashboard token USER``), and the server's provider answers. The stream is decoded by
:class:`~dashboard.core.sse.SSEDecoder` and :func:`~dashboard.core.ai_stream.parse_chat_event`.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Sequence
from typing import Any

import aiohttp
from yarl import URL

from ..ai.base import ERROR_KINDS, ChatMessage, Provider, ProviderError
from ..core.ai_stream import ChatDelta, ChatDone, ChatFailure, parse_chat_event
from ..core.sse import SSEDecoder
from .api import TokenSource

#: How much of an error response is read for its JSON ``message``.
MAX_ERROR_BODY = 4096


class RemoteChatProvider:
    """Streams answers from a dashboard server's ``/api/chat`` over SSE.

    Args:
        url: the server's base URL, e.g. ``http://127.0.0.1:5006``.
        token: a user token (``dashboard token USER``), or a function returning a fresh one;
            the server's rate limit is per user.
        session: the aiohttp session to use; when ``None`` one is created and closed by
            :meth:`aclose`.
        connect_timeout: seconds to get the response headers.
        read_timeout: seconds without a byte before the stream counts as dead.
        upstream: the provider behind the server, when the caller runs in the server's own
            process (a served page): its name, model and label are known without asking.

    :meth:`connect` also asks ``/api/health`` which model the server runs, for the label.

    Usage::

        provider = await RemoteChatProvider.connect("http://127.0.0.1:5006", token)
        async for chunk in provider.stream([ChatMessage("user", "What is this?")]):
            print(chunk, end="")
    """

    name = "remote"

    def __init__(
        self,
        url: str | URL,
        token: TokenSource,
        *,
        session: aiohttp.ClientSession | None = None,
        connect_timeout: float = 10.0,
        read_timeout: float = 120.0,
        upstream: Provider | None = None,
    ) -> None:
        base = URL(str(url))
        if base.scheme not in ("http", "https") or not base.host:
            raise ValueError(f"{str(url)!r} is not an http(s) URL")
        self.url = base.with_path(base.path.rstrip("/"))
        self._base = str(base).rstrip("/")
        self._token = token
        self._session = session
        self._owns_session = session is None
        # A given session belongs to the loop it was made on; our own, to the first caller's.
        self._loop: asyncio.AbstractEventLoop | None = getattr(session, "_loop", None)
        self._timeout = aiohttp.ClientTimeout(sock_connect=connect_timeout, sock_read=read_timeout)
        #: The server's model, once :meth:`connect` asked.
        self.model = ""
        #: The server's provider label, once :meth:`connect` asked.
        self.upstream_label = ""
        #: The server's provider name (``"openai"``, ``"demo"``), once :meth:`connect` asked.
        self.upstream_name = ""
        self._upstream = upstream
        if upstream is not None:
            self.model, self.upstream_name = upstream.model, upstream.name
            self.upstream_label = upstream.label

    @classmethod
    async def connect(cls, url: str | URL, token: TokenSource, **kwargs: Any) -> RemoteChatProvider:
        """A provider for ``url`` that already knows the server's model.

        Raises:
            ProviderError: the server is unreachable or has no AI provider.
        """
        provider = cls(url, token, **kwargs)
        try:
            await provider.refresh()
        except ProviderError:
            await provider.aclose()
            raise
        return provider

    async def refresh(self) -> None:
        """Ask ``/api/health`` which provider and model the server runs.

        Raises:
            ProviderError: the server is unreachable or has no AI provider.
        """
        try:
            async with self._client().get(
                URL(self._base + "/api/health", encoded=True), timeout=self._timeout
            ) as response:
                health = await response.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError):
            raise ProviderError("upstream", f"Cannot reach the dashboard at {self.url}.") from None
        ai = health.get("ai") if isinstance(health, dict) else None
        if not isinstance(ai, dict):
            raise ProviderError("upstream", f"The dashboard at {self.url} has no AI provider.")
        self.model = str(ai.get("model", ""))
        self.upstream_label = str(ai.get("label") or ai.get("provider", ""))
        self.upstream_name = str(ai.get("provider", ""))

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None:
        """The event loop that owns this provider's HTTP session (``None`` until the first
        request): :meth:`stream` must run there. :class:`~dashboard.ui.AIChat` reads the answer
        on this loop whatever thread Panel runs its callback on (:mod:`dashboard.ui.tasks`)."""
        return self._loop

    @property
    def label(self) -> str:
        if self._upstream is not None:
            return self._upstream.label  # the server's own page: no need to name the server
        upstream = self.upstream_label or "the dashboard's model"
        return f"{upstream} (via {self.url.host}:{self.url.port})"

    async def stream(self, messages: Sequence[ChatMessage]) -> AsyncIterator[str]:
        body = {"messages": [m.to_dict() for m in messages]}
        token = self._token() if callable(self._token) else self._token
        headers = {"Authorization": f"Bearer {token}", "Accept": "text/event-stream"}
        response = None
        try:
            response = await self._client().post(
                URL(self._base + "/api/chat", encoded=True),
                json=body,
                headers=headers,
                timeout=self._timeout,
            )
            if response.status != 200:
                raise await _http_error(response)
            decoder = SSEDecoder()
            async for data in response.content.iter_any():
                for event in decoder.feed(data):
                    item = parse_chat_event(event)
                    if isinstance(item, ChatDelta):
                        yield item.content
                    elif isinstance(item, ChatDone):
                        return
                    elif isinstance(item, ChatFailure):
                        kind = item.kind if item.kind in ERROR_KINDS else "upstream"
                        raise ProviderError(kind, item.message)
            raise ProviderError("upstream", "The answer broke off mid-stream; retry in a moment.")
        except (aiohttp.ClientError, TimeoutError) as exc:
            kind = "timeout" if isinstance(exc, TimeoutError) else "upstream"
            raise ProviderError(
                kind, f"Lost the connection to the dashboard at {self.url}; retry in a moment."
            ) from None
        finally:
            if response is not None:
                # close(), not release(): an unfinished answer must drop the connection, so
                # that the server cancels its upstream request.
                response.close()

    async def aclose(self) -> None:
        """Close the session if this provider created it. Idempotent."""
        if self._owns_session and self._session is not None:
            await self._session.close()
        self._session = None

    async def __aenter__(self) -> RemoteChatProvider:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession()
            self._loop = asyncio.get_running_loop()
        return self._session

    def __repr__(self) -> str:
        return f"RemoteChatProvider({str(self.url)!r})"


async def _http_error(response: aiohttp.ClientResponse) -> ProviderError:
    raw = await response.content.read(MAX_ERROR_BODY)
    try:
        message = str(json.loads(raw).get("message") or "")
    except (ValueError, AttributeError):
        message = ""
    message = message or f"HTTP {response.status}"
    if response.status in (401, 403):
        return ProviderError("auth", f"The dashboard refused the user token: {message}")
    if response.status == 429:
        return ProviderError("rate_limit", f"Rate limited by the dashboard: {message}")
    return ProviderError("upstream", f"The dashboard answered {response.status}: {message}")
