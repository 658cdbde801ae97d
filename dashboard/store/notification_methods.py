"""The notification half of :class:`~dashboard.store.Store`, written once for every store.

As :mod:`dashboard.store.rooms` does for rooms: each public method validates its arguments (so
every store refuses the same input with the same :class:`~dashboard.store.ValidationError`)
and hands them, with the time where one is stored, to the store's own ``_run`` of its
``_n_add``, ``_n_page``, ``_n_get``, ``_n_mark_read``, ``_n_mark_all`` and ``_n_count``.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from . import base
from .notifications import (
    Notification,
    NotificationPage,
    ReadAll,
    encode_data,
    validate_body,
    validate_link,
    validate_notification_id,
    validate_recipient,
    validate_title,
    validate_type,
)


class NotificationMethods:
    """Mixed into a :class:`~dashboard.store.Store` that provides the queries below."""

    # Provided by the store: ``_run(fn, *args)`` runs ``fn`` where the store does its I/O; the
    # rest are the store's own queries.
    _n_add: Callable[..., Any]
    _n_page: Callable[..., Any]
    _n_get: Callable[..., Any]
    _n_mark_read: Callable[..., Any]
    _n_mark_all: Callable[..., Any]
    _n_count: Callable[..., Any]

    def _run(self, fn: Any, *args: Any) -> Awaitable[Any]:
        raise NotImplementedError

    async def add_notification(
        self,
        user: str,
        type: str,
        title: str,
        message: str = "",
        link: str | None = None,
        data: Any = None,
    ) -> Notification:
        args = (
            validate_recipient(user),
            validate_type(type),
            validate_title(title),
            validate_body(message),
            validate_link(link),
            encode_data(data),
        )
        return await self._run(self._n_add, *args, time.time())

    async def notifications(
        self,
        user_id: str,
        *,
        unread_only: bool = False,
        before: int | None = None,
        limit: int = base.DEFAULT_PAGE,
    ) -> NotificationPage:
        user_id = base.validate_user(user_id)
        before_id, limit = base.validate_page(before, limit)
        return await self._run(self._n_page, user_id, bool(unread_only), before_id, limit)

    async def get_notification(self, id: int, user_id: str) -> Notification:
        args = (validate_notification_id(id), base.validate_user(user_id))
        return await self._run(self._n_get, *args)

    async def mark_notification_read(self, id: int, user_id: str) -> Notification:
        args = (validate_notification_id(id), base.validate_user(user_id))
        return await self._run(self._n_mark_read, *args)

    async def mark_all_notifications_read(self, user_id: str) -> ReadAll:
        return await self._run(self._n_mark_all, base.validate_user(user_id))

    async def unread_notification_count(self, user_id: str) -> int:
        return await self._run(self._n_count, base.validate_user(user_id))
