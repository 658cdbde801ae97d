"""``POST /api/chat``: relay a provider's streamed answer as Server-Sent Events.

The body is ``{"messages": [{"role", "content"}, ...]}``; the answer streams as
``data: {"content": ...}`` blocks and ends with ``data: [DONE]``, or with one
``event: error`` block whose message is safe to show (framing: :mod:`dashboard.core.ai_stream`).

Each chunk is written and flushed as it arrives. The relay runs in its own task so that a
client that goes away cancels it at once, wherever it waits: cancelling the task closes the
provider's async generator, which closes the upstream HTTP response.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import tornado.iostream

from ..ai.base import ChatTooLarge, ProviderError, parse_messages
from ..core.ai_stream import DONE_FRAME, content_frame, error_frame
from ..core.errors import ValidationError
from .access import Access
from .base import ApiError, ApiHandler, log
from .limits import take

#: Largest body: 32,000 characters of conversation, JSON-escaped, with room to spare.
CHAT_BODY_LIMIT = 256 * 1024


class ChatRelayHandler(ApiHandler):
    """Validates, identifies and rate-limits the caller, then streams the answer.

    Limits (:class:`~.limits.Limits`): requests per user, and for guests also the requests
    of all guests of one client address together, so minting guests multiplies nothing.
    """

    access = {"POST": Access.USER}
    body_limit = CHAT_BODY_LIMIT
    _relay: asyncio.Task[None] | None = None

    async def post(self) -> None:
        provider = self.ctx.ai
        if provider is None:
            raise ApiError(503, "ai_unavailable", "this server has no AI provider configured")
        user = self.user
        body = self.json_body()
        if not isinstance(body, dict):
            raise ApiError(400, "invalid_body", 'body must be an object {"messages": [...]}')
        if "messages" not in body:
            raise ApiError(400, "missing_field", 'missing field: messages ({"messages": [...]})')
        unknown = set(body) - {"messages"}
        if unknown:
            raise ApiError(400, "unknown_field", f"unknown field(s): {', '.join(sorted(unknown))}")
        try:
            messages = parse_messages(body["messages"])
        except ValidationError as exc:
            status = 413 if isinstance(exc, ChatTooLarge) else 400
            raise ApiError(status, exc.code, str(exc)) from None
        limits = self.ctx.rate_limits
        await take(limits.chat, user.user_id, "chat requests")
        if self.caller.guest:
            await take(
                limits.guest_chat, self.caller.address, "chat requests from guests at this address"
            )
        self.set_header("Content-Type", "text/event-stream; charset=utf-8")
        self.set_header("Cache-Control", "no-cache")
        self.set_header("X-Accel-Buffering", "no")
        stream = getattr(self.request.connection, "stream", None)
        if stream is not None:
            stream.set_nodelay(True)  # small chunks must not wait for the previous ACK
        self._relay = asyncio.ensure_future(self._pump(provider.stream(messages)))
        self.ctx.chat_relays.add(self)
        try:
            await self._relay
        except asyncio.CancelledError:
            if not self._relay.cancelled():
                raise  # this handler itself was cancelled, not the relay
            return  # the client left (or the server stops): the relay was cancelled
        finally:
            self.ctx.chat_relays.discard(self)
        if not self._socket_closed():
            self.finish()

    async def _pump(self, chunks: AsyncIterator[str]) -> None:
        try:
            try:
                # Headers go out first: the client knows at once the request was accepted.
                await self.flush()
                async for chunk in chunks:
                    self.write(content_frame(chunk))
                    await self.flush()
            except ProviderError as exc:
                self.write(error_frame(exc.kind, exc.message))
            except tornado.iostream.StreamClosedError:
                return
            except Exception:
                log.exception("chat relay failed")
                self.write(error_frame("internal", "The answer failed (see the server log)."))
            else:
                self.write(DONE_FRAME)
            await self.flush()
        except tornado.iostream.StreamClosedError:
            pass  # the client left while the last frame was on its way
        finally:
            await _aclose(chunks)

    def on_connection_close(self) -> None:
        self.cancel()

    def cancel(self) -> None:
        """Stop relaying: the provider's stream, and with it the upstream request, closes."""
        if self._relay is not None and not self._relay.done():
            self._relay.cancel()

    def _socket_closed(self) -> bool:
        stream = getattr(self.request.connection, "stream", None)
        return stream is None or bool(stream.closed())


async def _aclose(chunks: AsyncIterator[str]) -> None:
    aclose = getattr(chunks, "aclose", None)
    if aclose is not None:
        await aclose()
