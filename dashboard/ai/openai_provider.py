"""The ``openai`` SDK's async client as a :class:`~dashboard.ai.base.Provider`.

Works with OpenAI and any OpenAI-compatible server (``base_url``: vLLM, Ollama, LiteLLM, ...).
Every SDK or transport failure becomes a :class:`~dashboard.ai.base.ProviderError` whose
message is written here, never copied from the upstream: an OpenAI 401 body quotes part of
the key, and a transport error can quote URLs.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import AsyncIterator, Sequence
from typing import Any, cast
from urllib.parse import urlsplit

import openai

from ..core.sse import SSEDecoder
from .base import ChatMessage, ProviderError

log = logging.getLogger("dashboard.ai")

DEFAULT_MODEL = "gpt-4o-mini"
DEFAULT_TIMEOUT = 60.0


class OpenAIProvider:
    """Streams chat completions with ``openai.AsyncOpenAI``.

    Args:
        model: the model to ask.
        api_key: the key; ``$OPENAI_API_KEY`` when ``None``. A server at ``base_url`` that
            needs no key gets a placeholder.
        base_url: an OpenAI-compatible endpoint (``.../v1``); ``$OPENAI_BASE_URL`` or OpenAI's
            own when ``None``.
        timeout: seconds for connecting and between bytes of the answer.
        max_retries: the SDK's retries before the first byte; 0 by default so that a user
            waiting on the chat hears about a 429 or 500 at once.
        client: an ``AsyncOpenAI`` to use instead of building one (the other arguments but
            ``model`` are then ignored).
    """

    name = "openai"

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        max_retries: int = 0,
        client: Any = None,
    ) -> None:
        self.model = model
        base_url = base_url or os.environ.get("OPENAI_BASE_URL") or None
        api_key = api_key or os.environ.get("OPENAI_API_KEY") or "no-key"
        self.base_url = base_url
        self._client = client or openai.AsyncOpenAI(
            api_key=api_key, base_url=base_url, timeout=timeout, max_retries=max_retries
        )

    @property
    def label(self) -> str:
        host = urlsplit(self.base_url).netloc.rpartition("@")[2] if self.base_url else ""
        return f"OpenAI-compatible · {self.model} at {host}" if host else f"OpenAI · {self.model}"

    async def stream(self, messages: Sequence[ChatMessage]) -> AsyncIterator[str]:
        # The SDK sends the request (auth, timeouts, status errors); the chunks are decoded
        # here with the package's SSE decoder. The SDK's own iterator builds pydantic models
        # per chunk, which cost about 0.5 ms each: more than the rest of the relay together.
        request = self._client.chat.completions.with_streaming_response.create(
            model=self.model, messages=cast(Any, [m.to_dict() for m in messages]), stream=True
        )
        try:
            async with request as response:
                decoder = SSEDecoder()
                async for data in response.iter_bytes():
                    for event in decoder.feed(data):
                        if event.event == "error":
                            # OpenAI-compatible servers (vLLM, LiteLLM...) end a failed answer
                            # with `event: error`; whatever follows, the answer is cut off.
                            # Its text is the upstream's, so it is not shown.
                            raise ProviderError(
                                "upstream", "The model server failed mid-answer; retry in a moment."
                            )
                        if event.data == "[DONE]":
                            return
                        for content in _contents(event.data):
                            yield content
                raise ProviderError(
                    "upstream", "The answer broke off mid-stream; retry in a moment."
                )
        except ProviderError:
            raise
        except Exception as exc:
            raise _safe_error(exc) from None
        # Leaving the ``async with`` (also on aclose or cancellation) closes the response,
        # which drops the HTTP connection: the upstream stops generating.

    async def aclose(self) -> None:
        """Close the SDK client's connection pool."""
        await self._client.close()

    def __repr__(self) -> str:
        return f"OpenAIProvider(model={self.model!r}, base_url={self.base_url!r})"


def _safe_error(exc: Exception) -> ProviderError:
    """Map an SDK or transport exception to a ProviderError with a message of our own."""
    # Logged by type and status only: str(exc) may quote the key or a URL with credentials.
    status = getattr(exc, "status_code", None)
    log.warning("model request failed: %s%s", type(exc).__name__, f" ({status})" if status else "")
    if isinstance(exc, openai.AuthenticationError | openai.PermissionDeniedError):
        return ProviderError("auth")
    if isinstance(exc, openai.RateLimitError):
        return ProviderError("rate_limit")
    if isinstance(exc, openai.APITimeoutError) or "Timeout" in type(exc).__name__:
        return ProviderError("timeout")
    if isinstance(exc, openai.APIConnectionError):
        return ProviderError("upstream", "Cannot reach the model server; retry in a moment.")
    if isinstance(exc, openai.NotFoundError):
        return ProviderError("upstream", "The model server does not know this model.")
    if isinstance(exc, openai.BadRequestError):
        return ProviderError(
            "upstream", "The model server rejected the request (the conversation may be too long)."
        )
    if isinstance(exc, openai.APIStatusError):
        return ProviderError(
            "upstream", f"The model server failed with HTTP {exc.status_code}; retry in a moment."
        )
    return ProviderError("upstream", "The answer broke off mid-stream; retry in a moment.")


def _contents(data: str) -> list[str]:
    """The text pieces of one chunk of a streamed chat completion."""
    try:
        payload = json.loads(data)
    except json.JSONDecodeError:
        raise ProviderError("upstream", "The model server sent a malformed chunk.") from None
    if not isinstance(payload, dict):
        return []
    if payload.get("error"):
        # An error object inside a 200 stream; its text is the upstream's, so it is not shown.
        raise ProviderError("upstream", "The model server failed mid-answer; retry in a moment.")
    pieces = []
    for choice in payload.get("choices") or ():
        delta = choice.get("delta") if isinstance(choice, dict) else None
        content = delta.get("content") if isinstance(delta, dict) else None
        if isinstance(content, str) and content:
            pieces.append(content)
    return pieces
