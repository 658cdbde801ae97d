"""Commit a notification to the store, then deliver it live through the hub.

Wire format (hub channels, so SSE and the Pusher socket both carry them):

* ``private-user-{user_id}``: event ``notification`` for the user's own notifications, and
  event ``read`` after a read: ``{"ids": [id], "all": false, "unread_count": n}`` for one,
  ``{"ids": [], "all": true, "up_to": id, "unread_count": 0}`` for read-all (a watermark, never
  a list of ids: the hub payload limit is 10 KB);
* ``private-notifications``: event ``notification`` for broadcasts (``user == "*"``).

The ``notification`` payload is the notification JSON (:func:`notification_json`) with
``read: false``. A client that was offline reads the inbox with ``GET /api/notifications``;
one that dropped its stream resumes with ``Last-Event-ID`` like on any channel.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable
from typing import Any, Final

from ..core.channels import BROADCAST_CHANNEL, USER_CHANNEL_PREFIX
from ..core.errors import PayloadTooLarge
from ..hub import Hub, Subscription
from ..store import Notification, NotificationPage, ReadAll, Store
from ..store.base import DEFAULT_PAGE, MAX_ID, validate_user
from ..store.notifications import (
    BROADCAST,
    encode_data,
    notification_json,
    validate_body,
    validate_link,
    validate_recipient,
    validate_title,
    validate_type,
)

log = logging.getLogger("dashboard.notifications")

NOTIFICATION_EVENT: Final = "notification"
READ_EVENT: Final = "read"
# Room for digits the provisional notification in the size check may lack.
_SIZE_MARGIN = 64


def user_channel(user_id: str) -> str:
    """``private-user-{user_id}``: a user's own notifications and read-state sync."""
    return USER_CHANNEL_PREFIX + user_id


def notification_channel(user: str) -> str:
    """The channel a notification for ``user`` (an id or ``"*"``) is delivered on."""
    return BROADCAST_CHANNEL if user == BROADCAST else user_channel(user)


class NotificationService:
    """Per-user notification inboxes: every write is committed to ``store``, then published.

    Args:
        store: an open :class:`~dashboard.store.Store` (the caller owns its lifecycle).
        hub: where ``notification`` and ``read`` events go (see the module docstring).

    Every method raises the store's errors unchanged (``NotFound``, ``Forbidden``,
    ``InvalidNotification``, ``InvalidUser``, ``StoreUnavailable``...), so the server maps them
    to HTTP statuses in one place.

    Usage::

        notifications = NotificationService(store, hub)
        await notifications.notify("ada", "Build failed", "main is red", type="error")
        page = await notifications.inbox("ada", unread_only=True)
    """

    def __init__(self, store: Store, hub: Hub) -> None:
        self.store = store
        self.hub = hub
        # Commits and publishes happen in the same order, so a live client never sees a
        # "read" sync that predates a notification it already got, or the other way round.
        self._lock = asyncio.Lock()

    async def notify(
        self,
        user: str,
        title: str,
        message: str = "",
        *,
        type: str = "info",
        link: str | None = None,
        data: Any = None,
    ) -> Notification:
        """Store a notification for ``user`` (an id, or ``"*"`` for everyone), then publish it.

        Returns:
            The committed notification, unread.

        Raises:
            InvalidUser, InvalidNotification: bad input (nothing is written).
            PayloadTooLarge: the event would not fit the hub's payload limit (checked before
                anything is written, so a stored notification is always published).
            BackendUnavailable: the hub's backend is known to be down (nothing is written).
        """
        user = validate_recipient(user)
        type, title = validate_type(type), validate_title(title)
        message, link = validate_body(message), validate_link(link)
        encoded = encode_data(data)
        decoded = None if encoded is None else json.loads(encoded)
        provisional = Notification(
            MAX_ID, user, type, title, message, link, decoded, time.time(), False
        )
        self._check_size(provisional)
        self.hub.check_available()
        write = self.store.add_notification(user, type, title, message, link, data)
        # Shielded: once submitted the write may commit even if our caller goes away, and a
        # committed notification must still be published.
        return await asyncio.shield(self._commit_then_publish(write))

    async def inbox(
        self,
        user_id: str,
        *,
        unread_only: bool = False,
        before: int | None = None,
        limit: int = DEFAULT_PAGE,
    ) -> NotificationPage:
        """``user_id``'s own notifications plus broadcasts with ``id < before``, newest first.

        Raises:
            InvalidPaging: for a bad ``before`` or a ``limit`` outside 1..200.
        """
        return await self.store.notifications(
            user_id, unread_only=unread_only, before=before, limit=limit
        )

    async def get(self, user_id: str, id: int) -> Notification:
        """One notification as ``user_id`` sees it.

        Raises:
            NotFound: no such notification. Forbidden: it is another user's.
        """
        return await self.store.get_notification(id, user_id)

    async def mark_read(self, user_id: str, id: int) -> Notification:
        """Mark notification ``id`` read for ``user_id`` (idempotent), then publish ``read``.

        Returns:
            The notification, ``read=True``.

        Raises:
            NotFound: no such notification. Forbidden: it is another user's.
            BackendUnavailable: as for :meth:`notify`.
        """
        user_id = validate_user(user_id)
        self.hub.check_available()
        return await asyncio.shield(self._mark_read(user_id, id))

    async def mark_all_read(self, user_id: str) -> ReadAll:
        """Mark ``user_id``'s whole inbox read, then publish ``read`` with ``all: true``.

        Returns:
            How many were unread, and the id up to which everything is now read.

        Raises:
            BackendUnavailable: as for :meth:`notify`.
        """
        user_id = validate_user(user_id)
        self.hub.check_available()
        return await asyncio.shield(self._mark_all_read(user_id))

    async def unread_count(self, user_id: str) -> int:
        """How many notifications of ``user_id``'s inbox are unread."""
        return await self.store.unread_notification_count(user_id)

    async def subscribe(
        self, user_id: str, *, last_event_id: str | None = None, queue_size: int | None = None
    ) -> Subscription:
        """A hub subscription to ``user_id``'s live notifications and read syncs (in-process
        consumers such as a Panel session; remote ones use SSE or the Pusher socket).

        Args:
            last_event_id: resume after this cursor, as an SSE client would.
            queue_size: bound of the live queue; the hub's default when ``None``.
        """
        channels = [user_channel(validate_recipient(user_id)), BROADCAST_CHANNEL]
        return await self.hub.subscribe(
            channels, last_event_id=last_event_id, queue_size=queue_size
        )

    # -- internals ---------------------------------------------------------------------------

    async def _commit_then_publish(self, write: Awaitable[Notification]) -> Notification:
        async with self._lock:
            notification = await write
            await self._publish(
                notification_channel(notification.user),
                NOTIFICATION_EVENT,
                notification_json(notification),
                f"notification {notification.id} was stored",
            )
            return notification

    async def _mark_read(self, user_id: str, id: int) -> Notification:
        async with self._lock:
            notification = await self.store.mark_notification_read(id, user_id)
            unread = await self.store.unread_notification_count(user_id)
            await self._publish(
                user_channel(user_id),
                READ_EVENT,
                {"ids": [notification.id], "all": False, "unread_count": unread},
                f"notification {id} was marked read",
            )
            return notification

    async def _mark_all_read(self, user_id: str) -> ReadAll:
        async with self._lock:
            result = await self.store.mark_all_notifications_read(user_id)
            await self._publish(
                user_channel(user_id),
                READ_EVENT,
                {"ids": [], "all": True, "up_to": result.up_to, "unread_count": 0},
                f"{user_id}'s notifications were marked read",
            )
            return result

    async def _publish(self, channel: str, event: str, data: Any, done: str) -> None:
        try:
            await self.hub.publish(channel, event, data)
        except Exception:
            # The write is durable and the caller must hear that it succeeded: failing it
            # would invite a retry that stores a second copy. The inbox still shows it; only
            # live subscribers miss this one event.
            log.exception("%s; its %s event on %s was not published", done, event, channel)

    def _check_size(self, notification: Notification) -> None:
        text = json.dumps(
            notification_json(notification), separators=(",", ":"), ensure_ascii=False
        )
        size = len(text.encode("utf-8", "surrogatepass")) + _SIZE_MARGIN
        if size > self.hub.max_payload_bytes:
            raise PayloadTooLarge(
                f"the notification is too large to deliver ({size} bytes as JSON; the limit "
                f"is {self.hub.max_payload_bytes}); shorten the message or the data"
            )
