"""The wire format of ``POST /api/chat``, sans I/O: frames out, decoded chunks in.

The stream is OpenAI-shaped Server-Sent Events so that any SSE client can read it::

    data: {"content": "Hel"}

    data: {"content": "lo"}

    data: [DONE]

A failure ends the stream with one ``event: error`` block whose data is
``{"error": kind, "message": safe text}`` (no ``[DONE]`` follows). The server
(:mod:`dashboard.server.ai_chat`), the client provider (:mod:`dashboard.client.ai`) and the
benchmark all use these functions, so the framing is written once.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

from .sse import ServerSentEvent, encode_sse

__all__ = [
    "DONE_FRAME",
    "ChatDelta",
    "ChatDone",
    "ChatFailure",
    "RenderPacer",
    "content_frame",
    "error_frame",
    "parse_chat_event",
]

#: The last frame of a stream that completed.
DONE_FRAME = b"data: [DONE]\n\n"


@dataclass(frozen=True, slots=True)
class ChatDelta:
    """A piece of the answer, to append to what came before."""

    content: str


@dataclass(frozen=True, slots=True)
class ChatDone:
    """The answer is complete."""


@dataclass(frozen=True, slots=True)
class ChatFailure:
    """The answer failed; ``message`` is safe to show a user.

    Attributes:
        kind: ``auth``, ``rate_limit``, ``upstream``, ``timeout`` or ``internal``.
        message: one line for the user, never a key or a traceback.
    """

    kind: str
    message: str


def content_frame(text: str) -> bytes:
    """One ``data: {"content": text}`` block."""
    return encode_sse(json.dumps({"content": text}, ensure_ascii=False))


def error_frame(kind: str, message: str) -> bytes:
    """The ``event: error`` block that ends a failed stream."""
    return encode_sse(
        json.dumps({"error": kind, "message": message}, ensure_ascii=False), event="error"
    )


def parse_chat_event(event: ServerSentEvent) -> ChatDelta | ChatDone | ChatFailure | None:
    """Interpret one decoded event of a chat stream.

    Returns:
        The chunk, or ``None`` for an event this client does not know (skipped, so the
        server may add event types later).
    """
    if event.event == "error":
        try:
            payload = json.loads(event.data)
        except json.JSONDecodeError:
            return ChatFailure("upstream", "the server reported an error")
        if not isinstance(payload, dict):
            return ChatFailure("upstream", "the server reported an error")
        return ChatFailure(
            str(payload.get("error") or "upstream"),
            str(payload.get("message") or "the server reported an error"),
        )
    if event.event != "message":
        return None
    if event.data == "[DONE]":
        return ChatDone()
    try:
        payload = json.loads(event.data)
    except json.JSONDecodeError:
        return ChatFailure("upstream", "the server sent a malformed chunk")
    if isinstance(payload, dict) and isinstance(payload.get("content"), str):
        return ChatDelta(payload["content"])
    return None


class RenderPacer:
    """Spaces renders at least ``1 / max_per_second`` apart; the clock is the caller's.

    A fast model can produce hundreds of tokens per second; rendering each one would flood
    the browser with updates. The streaming loop asks :meth:`delay` how long to wait before
    the next render, accumulates the tokens that arrive meanwhile, and calls :meth:`rendered`.

    Args:
        max_per_second: the rate cap.

    Raises:
        ValueError: when ``max_per_second`` is not positive.
    """

    def __init__(self, max_per_second: float) -> None:
        if not max_per_second > 0:
            raise ValueError(f"max_per_second must be positive, not {max_per_second!r}")
        self.interval = 1.0 / max_per_second
        self._last = -math.inf

    def delay(self, now: float) -> float:
        """Seconds to wait from ``now`` before the next render is allowed (0 when it is)."""
        return max(0.0, self._last + self.interval - now)

    def rendered(self, now: float) -> None:
        """Record a render at ``now``."""
        self._last = now
