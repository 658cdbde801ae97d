"""Chat rooms over REST: thin handlers around :class:`~dashboard.chat.ChatService`.

Routes (all JSON; messages look like ``{id, room, user_id, user_name, text, created, edited,
deleted}``):

* ``GET /api/rooms`` -> ``{"rooms": [{"name", "created", "channel"}]}``
* ``GET /api/rooms/{room}/messages?before=&limit=`` -> ``{"messages": [...], "next_before"}``,
  oldest first; pass ``next_before`` back as ``before`` for the next older page (``null`` at
  the first message). ``limit`` is 1..200, 50 by default.
* ``POST /api/rooms/{room}/messages {"text"}`` as the identified user -> 201 and the message.
* ``PATCH /api/rooms/{room}/messages/{id} {"text"}`` and ``DELETE ...`` -> 200 and the
  message after the change; author only.

Live changes are on the hub channel ``room-{room}`` (see :mod:`dashboard.chat.service`).

Errors: bad input 400 (413 when the message is too large to broadcast), no identity 401, not
the author 403, unknown message or one of another room 404, already deleted 409, a locked,
unreachable or unreadable database 503 with ``Retry-After``, a corrupt database 500
``store_corrupt``. The storage failures tell the client what happened in general terms; the
details, which name the server's files or database, go to the server log.
"""

from __future__ import annotations

import logging
from typing import Any

from ..chat import ChatService, message_json, room_channel
from ..core.errors import ValidationError
from ..store import (
    Forbidden,
    MessageDeleted,
    NotFound,
    StoreClosed,
    StoreCorrupt,
    StoreError,
    StoreUnavailable,
)
from ..store.base import DEFAULT_PAGE
from .access import Access
from .base import ApiError, ApiHandler
from .limits import take

log = logging.getLogger("dashboard.server")

#: Seconds a client is asked to wait after a 503 from a locked or unavailable store.
RETRY_AFTER = 2


def decimal(raw: str) -> int | None:
    """``raw`` as a number if it is written in ASCII digits (at most 19, so below 2**63),
    else ``None``. ``int()`` alone would also take ``"１"``, ``"1_0"`` and ``" 1 "``."""
    digits = raw[1:] if raw.startswith("-") else raw
    if not digits.isascii() or not digits.isdigit() or len(digits) > 19:
        return None
    return int(raw)


def store_error(exc: Exception) -> ApiError:
    """The HTTP answer to an error raised by the chat service or the store."""
    if isinstance(exc, ValidationError):
        status = 413 if exc.code == "payload_too_large" else 400
        return ApiError(status, exc.code, str(exc))
    if isinstance(exc, NotFound):
        return ApiError(404, exc.code, str(exc))
    if isinstance(exc, Forbidden):
        return ApiError(403, exc.code, str(exc))
    if isinstance(exc, MessageDeleted):
        return ApiError(409, exc.code, str(exc))
    if isinstance(exc, StoreUnavailable | StoreClosed):
        log.error("message store unavailable: %s", exc)
        return ApiError(
            503,
            "store_unavailable",
            "the message store is busy or unavailable (locked by another process, "
            "unreachable, read-only or full). Retry shortly.",
            {"Retry-After": str(RETRY_AFTER)},
        )
    if isinstance(exc, StoreCorrupt):
        log.error("message store corrupt: %s", exc)
        return ApiError(
            500,
            "store_corrupt",
            "the message database is corrupt; the server operator must restore or replace it "
            "(the server log says which file and how).",
        )
    log.error("message store error", exc_info=exc)
    return ApiError(500, "store_error", "the message store failed (see the server log)")


class RoomsHandler(ApiHandler):
    """Shared by the room handlers: the chat service, the caller, and store error mapping."""

    @property
    def chat(self) -> ChatService:
        chat = self.ctx.chat
        if chat is None:
            raise ApiError(404, "chat_disabled", "this server has no message store, so no rooms")
        return chat

    def text_body(self) -> Any:
        body = self.json_body()
        if not isinstance(body, dict) or set(body) != {"text"}:
            raise ApiError(400, "invalid_body", 'body must be an object {"text": "..."}')
        return body["text"]

    def message_id(self, raw: str) -> int:
        number = decimal(raw)
        if number is None:
            raise ApiError(404, "not_found", f"no message with id {raw[:40]!r}")
        return number

    def query_int(self, name: str) -> int | None:
        raw = self.get_query_argument(name, None)
        if raw is None or raw == "":
            return None
        number = decimal(raw)
        if number is None:
            raise ApiError(400, "invalid_paging", f"{name} must be an integer, got {raw[:40]!r}")
        return number


class RoomListHandler(RoomsHandler):
    """``GET /api/rooms``: every room, sorted by name, with the channel of its changes."""

    access = {"GET": Access.OPEN}

    async def get(self) -> None:
        try:
            rooms = await self.chat.rooms()
        except StoreError as exc:
            raise store_error(exc) from None
        listed = []
        for room in rooms:
            try:
                channel: str | None = room_channel(room.name)
            except ValidationError:
                channel = None  # a name too long for a channel, written by another tool
            listed.append({"name": room.name, "created": room.created, "channel": channel})
        self.write_json({"rooms": listed})


class RoomMessagesHandler(RoomsHandler):
    """``GET`` a page of a room's messages; ``POST {"text"}`` a new one as the caller."""

    access = {"GET": Access.OPEN, "POST": Access.USER}

    async def get(self, room: str) -> None:
        before = self.query_int("before")
        limit = self.query_int("limit")
        try:
            page = await self.chat.history(
                room, before=before, limit=DEFAULT_PAGE if limit is None else limit
            )
        except (StoreError, ValidationError) as exc:
            raise store_error(exc) from None
        self.write_json(
            {
                "messages": [message_json(message) for message in page.messages],
                "next_before": page.next_before,
            }
        )

    async def post(self, room: str) -> None:
        user = self.user
        text = self.text_body()
        rates = self.ctx.rate_limits
        await take(rates.messages, user.user_id, "chat messages")
        try:
            if not await self.chat.has_room(room):
                # Each room costs every page a line in its room list: creating them is
                # limited apart from posting.
                await take(rates.new_rooms, user.user_id, "new rooms")
            message = await self.chat.post(room, user.user_id, user.display_name, text)
        except (StoreError, ValidationError) as exc:
            raise store_error(exc) from None
        self.set_header("Location", f"/api/rooms/{room}/messages/{message.id}")
        self.write_json(message_json(message), status=201)


class RoomMessageHandler(RoomsHandler):
    """``PATCH {"text"}`` or ``DELETE`` one message of a room, as its author."""

    access = {"PATCH": Access.USER, "DELETE": Access.USER}

    async def patch(self, room: str, raw_id: str) -> None:
        user = self.user
        text = self.text_body()
        await take(self.ctx.rate_limits.messages, user.user_id, "chat messages")
        try:
            message = await self.chat.edit(self.message_id(raw_id), user.user_id, text, room=room)
        except (StoreError, ValidationError) as exc:
            raise store_error(exc) from None
        self.write_json(message_json(message))

    async def delete(self, room: str, raw_id: str) -> None:
        user = self.user
        await take(self.ctx.rate_limits.messages, user.user_id, "chat messages")
        try:
            message = await self.chat.delete(self.message_id(raw_id), user.user_id, room=room)
        except (StoreError, ValidationError) as exc:
            raise store_error(exc) from None
        self.write_json(message_json(message))


def room_routes(kwargs: dict[str, Any]) -> list[tuple[str, Any, dict[str, Any]]]:
    """The room routes; they go before the ``/api/.*`` catch-all."""
    return [
        (r"/api/rooms", RoomListHandler, kwargs),
        (r"/api/rooms/([^/]+)/messages", RoomMessagesHandler, kwargs),
        (r"/api/rooms/([^/]+)/messages/([^/]+)", RoomMessageHandler, kwargs),
    ]
