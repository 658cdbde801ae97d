"""A user's notification inbox as one session sees it: stored history, then live, each once.

Channels (published by :class:`dashboard.notifications.NotificationService` after each commit):

* ``private-user-{id}``: the user's own notifications (event ``notification``) and read-state
  changes made in any of their sessions (event ``read``);
* ``private-notifications``: notifications for everyone.

Notification ids are strictly increasing and published in id order, so "new to this session"
is simply "above the highest id seen so far": that one number makes every notification
announced (toasted) exactly once per session, across reconnects and catch-up reads.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Final

from ..core.channels import BROADCAST_CHANNEL, USER_CHANNEL_PREFIX
from ..store.notifications import (
    Notification,
    notification_from_json,
)
from .listeners import Listeners
from .pusher_channels import Channel, PusherError, PusherEvent

if TYPE_CHECKING:
    from .connection import UserConnection

log = logging.getLogger("dashboard.client.inbox")

#: Notifications an inbox keeps in memory (the newest); older ones stay in the store.
MAX_ITEMS: Final = 200

NotificationListener = Callable[[Notification], None]


class Inbox:
    """The newest notifications of one user, kept current, with their unread count.

    Created by :meth:`UserConnection.inbox`. :attr:`items` holds the newest
    :data:`MAX_ITEMS` notifications, newest first. :meth:`on_new` listeners hear of each
    notification that reaches this session after it started, exactly once; :meth:`on_change`
    listeners of anything that changes what the inbox shows (new items, read state).
    """

    def __init__(self, connection: UserConnection, *, page_size: int = 50) -> None:
        self.connection = connection
        self.page_size = page_size
        #: id -> notification, newest first.
        self.items: dict[int, Notification] = {}
        #: Unread notifications in the whole inbox (not only :attr:`items`), per the server.
        self.unread_count = 0
        self._newest = 0  # highest id this session has seen: anything above it is new
        self._new_listeners: Listeners[NotificationListener] = Listeners()
        self._change_listeners: Listeners[Callable[[], None]] = Listeners()
        self._channels: list[Channel] = []
        self._unbind: list[Callable[[], None]] = []
        self._buffer: list[PusherEvent] | None = []  # live events that beat the first read
        self._refresh_task: asyncio.Task[None] | None = None
        self._started = False

    def on_new(self, listener: NotificationListener) -> Callable[[], None]:
        """Call ``listener(notification)`` once for each notification new to this session."""
        return self._new_listeners.add(listener)

    def on_change(self, listener: Callable[[], None]) -> Callable[[], None]:
        """Call ``listener()`` whenever :attr:`items` or :attr:`unread_count` change."""
        return self._change_listeners.add(listener)

    async def start(self) -> None:
        """Subscribe to the user's channels, then read the newest page. Idempotent.

        Raises:
            APIError: the inbox cannot be read (no identity, no store ...).
            PusherError: a subscription was refused.
        """
        if self._started:
            return
        self._started = True
        try:
            await self._subscribe_and_read()
        except BaseException:
            await self.stop()  # a later start() begins afresh
            self._started, self._buffer = False, []
            raise

    async def _subscribe_and_read(self) -> None:
        user = await self.connection.connect()
        pusher = self.connection.pusher
        # Subscribe before reading, so nothing committed in between is missed.
        for name in (USER_CHANNEL_PREFIX + user.user_id, BROADCAST_CHANNEL):
            channel = await pusher.subscribe(name)
            self._channels.append(channel)
            self._unbind += [
                channel.bind("notification", self._on_event),
                channel.bind("read", self._on_event),
                channel.bind("pusher:subscription_succeeded", self._on_resubscribed),
            ]
        await self._read(announce=False)
        buffered, self._buffer = self._buffer or [], None
        for event in buffered:
            self._handle(event)

    async def mark_read(self, id: int) -> None:
        """Mark one notification read, here and in every other session of this user."""
        self._apply_read([id], up_to=None, unread_count=None)
        await self.connection.api.mark_read(id)

    async def mark_all_read(self) -> None:
        """Mark every notification read, here and in every other session of this user."""
        self._apply_read([], up_to=self._newest, unread_count=0)
        await self.connection.api.mark_all_read()

    async def stop(self) -> None:
        """Stop following the user's channels."""
        for unbind in self._unbind:
            unbind()
        self._unbind.clear()
        if self._refresh_task is not None:
            self._refresh_task.cancel()
        channels, self._channels = self._channels, []
        for channel in channels:
            with contextlib.suppress(PusherError):
                await channel.unsubscribe()

    # -- internals -----------------------------------------------------------------------

    async def _read(self, *, announce: bool) -> None:
        page = await self.connection.api.notifications(limit=self.page_size)
        fresh = sorted((n for n in page.notifications if n.id > self._newest), key=lambda n: n.id)
        for notification in page.notifications:
            self.items[notification.id] = notification
        self._sort()
        # The count is as of the read; unread ones that arrived live since are not in it.
        read_up_to = max((n.id for n in page.notifications), default=0)
        self.unread_count = page.unread_count + sum(
            1 for id, n in self.items.items() if id > read_up_to and not n.read
        )
        if fresh:
            self._newest = fresh[-1].id
        if announce:
            for notification in fresh:
                self._announce(notification)
        self._changed()

    def _on_event(self, event: PusherEvent) -> None:
        if self._buffer is not None:
            self._buffer.append(event)
        else:
            self._handle(event)

    def _handle(self, event: PusherEvent) -> None:
        data = event.data if isinstance(event.data, dict) else {}
        try:
            if event.event == "notification":
                self._on_notification(notification_from_json(data))
            else:
                ids = [int(i) for i in data.get("ids", [])]
                up_to = int(data["up_to"]) if data.get("all") else None
                count = data.get("unread_count")
                self._apply_read(ids, up_to, int(count) if count is not None else None)
        except (TypeError, ValueError, KeyError):
            log.warning("ignoring a malformed %s event on %s", event.event, event.channel)

    def _on_notification(self, notification: Notification) -> None:
        if notification.id <= self._newest:
            return  # the read that started this session (or a catch-up read) had it
        self._newest = notification.id
        self.items[notification.id] = notification
        self._sort()
        if not notification.read:
            self.unread_count += 1
        self._announce(notification)
        self._changed()

    def _apply_read(self, ids: list[int], up_to: int | None, unread_count: int | None) -> None:
        newly_read = 0
        for id, notification in list(self.items.items()):
            if not notification.read and (id in ids or (up_to is not None and id <= up_to)):
                self.items[id] = dataclasses.replace(notification, read=True)
                newly_read += 1
        if unread_count is not None:
            self.unread_count = unread_count
        else:
            self.unread_count = max(0, self.unread_count - newly_read)
        self._changed()

    def _sort(self) -> None:
        newest = sorted(self.items, reverse=True)[:MAX_ITEMS]
        self.items = {id: self.items[id] for id in newest}

    def _on_resubscribed(self, _event: PusherEvent) -> None:
        # After a reconnect, whatever was published while the socket was down is only in the
        # store: read it again (new ones are announced, read states refreshed).
        if self._buffer is not None:
            return  # the first subscription: start() reads anyway
        if self._refresh_task is None or self._refresh_task.done():
            self._refresh_task = asyncio.get_running_loop().create_task(self._refresh())

    async def _refresh(self) -> None:
        try:
            await self._read(announce=True)
        except Exception as exc:
            log.warning("could not refresh the inbox after a reconnect: %s", exc)

    def _announce(self, notification: Notification) -> None:
        self._new_listeners.emit(notification)

    def _changed(self) -> None:
        self._change_listeners.emit()
