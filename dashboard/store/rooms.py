"""The rooms-and-messages half of :class:`~dashboard.store.Store`, written once for every store.

Each public method validates its arguments (so every store refuses the same input with the
same :class:`~dashboard.store.ValidationError`) and hands them, with the time, to the store's
own ``_run`` of its ``_ensure_room``, ``_list_rooms``, ``_add_message``, ``_change``, ``_page``
and ``_get``: a thread for SQLite, a pooled connection for PostgreSQL.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

from . import base
from .base import Message, MessagePage, Room
from .errors import Forbidden, MessageDeleted


class RoomMethods:
    """Mixed into a :class:`~dashboard.store.Store` that provides the methods below."""

    # Provided by the store: ``_run(fn, *args)`` runs ``fn(*args)`` where the store does its
    # I/O; the rest are the store's own queries.
    _ensure_room: Callable[..., Any]
    _list_rooms: Callable[..., Any]
    _add_message: Callable[..., Any]
    _change: Callable[..., Any]
    _page: Callable[..., Any]
    _get: Callable[..., Any]

    def _run(self, fn: Any, *args: Any) -> Awaitable[Any]:
        raise NotImplementedError

    async def ensure_room(self, name: str) -> Room:
        return await self._run(self._ensure_room, base.validate_room(name), time.time())

    async def list_rooms(self) -> list[Room]:
        return await self._run(self._list_rooms)

    async def add_message(self, room: str, user_id: str, user_name: str, text: str) -> Message:
        args = (
            base.validate_room(room),
            base.validate_user(user_id),
            base.validate_user(user_name, "user_name"),
            base.validate_text(text),
        )
        return await self._run(self._add_message, *args, time.time())

    async def edit_message(self, id: int, user_id: str, text: str) -> Message:
        args = (base.validate_message_id(id), base.validate_user(user_id), base.validate_text(text))
        return await self._run(self._change, *args, time.time())

    async def delete_message(self, id: int, user_id: str) -> Message:
        args = (base.validate_message_id(id), base.validate_user(user_id))
        return await self._run(self._change, *args, None, time.time())

    async def messages(
        self, room: str, *, before: int | None = None, limit: int = base.DEFAULT_PAGE
    ) -> MessagePage:
        room = base.validate_room(room)
        before_id, limit = base.validate_page(before, limit)
        return await self._run(self._page, room, before_id, limit)

    async def get_message(self, id: int) -> Message:
        return await self._run(self._get, base.validate_message_id(id))


def changed_message(old: Message, user_id: str, text: str | None, now: float) -> Message:
    """``old`` edited to ``text`` by ``user_id`` (soft-deleted when ``text`` is ``None``): the
    rule every store applies inside its transaction, before it writes the result.

    Raises:
        Forbidden: ``user_id`` is not the author. MessageDeleted: it was deleted already.
    """
    if old.user_id != user_id:
        raise Forbidden(f"only the author may change message {old.id}")
    if old.deleted:
        raise MessageDeleted(f"message {old.id} was deleted")
    if text is None:
        return replace(old, text="", deleted=True)
    return replace(old, text=text, edited=now)
