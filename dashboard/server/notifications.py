"""Notification inboxes over REST: thin handlers around
:class:`~dashboard.notifications.NotificationService`.

Routes (notifications look like ``{id, user, type, title, message, link, data, created,
read}``, ``read`` as the caller sees it):

* ``POST /api/notifications {"user", "type", "title", "message", "link", "data"}`` with the
  publish token (``Authorization: Bearer <DASHBOARD_TOKEN>``) -> 201 and the notification.
  ``user`` is a user id or ``"*"`` (everyone, the default); ``type`` defaults to ``"info"``.
* ``GET /api/notifications?unread=true&before=&limit=`` as the identified user -> their own
  and broadcast notifications, newest first: ``{"notifications", "next_before",
  "unread_count"}``. ``limit`` is 1..200, 50 by default.
* ``POST /api/notifications/{id}/read`` -> the notification, read (idempotent).
* ``POST /api/notifications/read-all`` -> ``{"marked", "unread_count": 0}``.

The user is only ever the request's identity (:mod:`.access`): a ``user``
in the query string or body of the three user routes is ignored. Live delivery and read-state
sync are on ``private-user-{id}`` and ``private-notifications`` (see
:mod:`dashboard.notifications.service`).

Errors: bad input 400 (413 when too large to deliver), no identity or token 401, another
user's notification 403, unknown id 404, store failures as for the room routes (503 with
``Retry-After``, 500 ``store_corrupt``).
"""

from __future__ import annotations

from typing import Any

from ..core.errors import ValidationError
from ..notifications import NotificationService, notification_json
from ..store import StoreError
from ..store.base import DEFAULT_PAGE
from .access import Access
from .base import ApiError
from .rooms import RoomsHandler, decimal, store_error

FIELDS = frozenset({"user", "type", "title", "message", "link", "data"})
_TRUE, _FALSE = ("true", "1", "yes"), ("false", "0", "no", "")


class NotificationsBase(RoomsHandler):
    """The notification service, plus the room handlers' JSON answers to store failures."""

    @property
    def notifications(self) -> NotificationService:
        service = self.ctx.notifications
        if service is None:
            raise ApiError(
                404, "notifications_disabled", "this server has no store, so no notifications"
            )
        return service

    def notification_id(self, raw: str) -> int:
        number = decimal(raw)
        if number is None:
            raise ApiError(404, "not_found", f"no notification with id {raw[:40]!r}")
        return number


class NotificationsHandler(NotificationsBase):
    """``GET`` the caller's inbox; ``POST`` a new notification with the publish token."""

    access = {"GET": Access.USER, "POST": Access.PUBLISHER}

    async def get(self) -> None:
        user = self.user
        raw = self.get_query_argument("unread", "false").lower()
        if raw not in _TRUE + _FALSE:
            raise ApiError(400, "invalid_query", f"unread must be true or false, got {raw!r}")
        before, limit = self.query_int("before"), self.query_int("limit")
        try:
            page = await self.notifications.inbox(
                user.user_id,
                unread_only=raw in _TRUE,
                before=before,
                limit=DEFAULT_PAGE if limit is None else limit,
            )
        except (StoreError, ValidationError) as exc:
            raise store_error(exc) from None
        self.write_json(
            {
                "notifications": [notification_json(n) for n in page.notifications],
                "next_before": page.next_before,
                "unread_count": page.unread_count,
            }
        )

    async def post(self) -> None:
        body = self.json_body()
        if not isinstance(body, dict):
            raise ApiError(
                400, "invalid_body", 'body must be an object {"user", "title", "message", ...}'
            )
        unknown = set(body) - FIELDS
        if unknown:
            raise ApiError(400, "unknown_field", f"unknown field(s): {', '.join(sorted(unknown))}")
        if "title" not in body:
            raise ApiError(400, "invalid_notification", "title is required")
        try:
            notification = await self.notifications.notify(
                body.get("user", "*"),
                body["title"],
                body.get("message", ""),
                type=body.get("type", "info"),
                link=body.get("link"),
                data=body.get("data"),
            )
        except (StoreError, ValidationError) as exc:
            raise store_error(exc) from None
        self.write_json(notification_json(notification), status=201)


class NotificationReadHandler(NotificationsBase):
    """``POST /api/notifications/{id}/read``: mark one read for the caller."""

    access = {"POST": Access.USER}

    async def post(self, raw_id: str) -> None:
        user = self.user
        try:
            notification = await self.notifications.mark_read(
                user.user_id, self.notification_id(raw_id)
            )
        except (StoreError, ValidationError) as exc:
            raise store_error(exc) from None
        self.write_json(notification_json(notification))


class NotificationReadAllHandler(NotificationsBase):
    """``POST /api/notifications/read-all``: mark the caller's whole inbox read."""

    access = {"POST": Access.USER}

    async def post(self) -> None:
        user = self.user
        try:
            result = await self.notifications.mark_all_read(user.user_id)
        except (StoreError, ValidationError) as exc:
            raise store_error(exc) from None
        self.write_json({"marked": result.marked, "unread_count": 0})


def notification_routes(kwargs: dict[str, Any]) -> list[tuple[str, Any, dict[str, Any]]]:
    """The notification routes; they go before the ``/api/.*`` catch-all."""
    return [
        (r"/api/notifications", NotificationsHandler, kwargs),
        (r"/api/notifications/read-all", NotificationReadAllHandler, kwargs),
        (r"/api/notifications/([^/]+)/read", NotificationReadHandler, kwargs),
    ]
