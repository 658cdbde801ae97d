"""The hub: validates and publishes events, resumes subscribers exactly, fans out once."""

from __future__ import annotations

import asyncio
import heapq
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from ..core.channels import validate_channel, validate_channels
from ..core.cursor import Position, Reset, StreamCursor, decode_cursor
from ..core.events import (
    DEFAULT_MAX_PAYLOAD_BYTES,
    TRANSIENT,
    Event,
    check_payload_size,
    validate_event_name,
    validate_publication,
)
from .backends import Backend, MemoryBackend
from .subscription import RESYNC, SHUTDOWN, Subscription

DEFAULT_QUEUE_SIZE = 1000


@dataclass(frozen=True)
class HubStats:
    """What :meth:`Hub.stats` reports: open subscriptions, channels with subscribers, events
    published (stored) and relayed (transient) since the hub started."""

    subscribers: int
    channels: int
    published: int
    relayed: int = 0


class Hub:
    """Publish/subscribe with history, on top of a :class:`Backend`.

    Args:
        backend: where history lives; an in-process :class:`MemoryBackend` by default.
        queue_size: default bound of each subscriber's queue (see :class:`Subscription`).
        max_payload_bytes: largest accepted JSON payload, in UTF-8 bytes.

    Usage::

        hub = Hub()
        async with await hub.subscribe(["metrics"]) as sub:
            await hub.publish("metrics", "cpu", {"value": 0.42})
            event = await anext(sub)
    """

    def __init__(
        self,
        backend: Backend | None = None,
        *,
        queue_size: int = DEFAULT_QUEUE_SIZE,
        max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES,
    ) -> None:
        self.backend = backend or MemoryBackend()
        self.queue_size = queue_size
        self.max_payload_bytes = max_payload_bytes
        self.started_at = time.time()
        self._subscribers: dict[str, set[Subscription]] = {}
        self._all: set[Subscription] = set()
        self._started = False
        self._published = 0
        self._relayed = 0
        self._occupancy_watchers: list[Callable[[str], None]] = []

    @property
    def epoch(self) -> str:
        return self.backend.epoch

    async def start(self) -> None:
        """Connect the backend. Called implicitly by the first publish or subscribe."""
        if not self._started:
            self._started = True
            try:
                await self.backend.start(self._deliver, self._lost)
            except BaseException:
                self._started = False
                raise

    async def stop(self) -> None:
        """Close every subscription (reason ``"shutdown"``) and stop the backend."""
        for subscription in list(self._all):
            subscription.close(SHUTDOWN)
        if self._started:
            self._started = False
            await self.backend.stop()

    async def __aenter__(self) -> Hub:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    def check_available(self) -> None:
        """Raise :class:`BackendUnavailable` at once while the backend is known to be down
        (see :meth:`Backend.check_available`)."""
        self.backend.check_available()

    async def publish(
        self,
        channel: str,
        event: str,
        data: Any = None,
        *,
        socket_id: str | None = None,
        user_id: str | None = None,
    ) -> Event:
        """Publish ``data`` as ``event`` on ``channel``.

        Args:
            channel: the channel.
            event: the event name.
            data: any JSON-serialisable value.
            socket_id: a Pusher socket that must not receive this event (its sender).
            user_id: the sender's user id, relayed on presence channels.

        Returns:
            The stored event, with its offset; ``event.frames`` is shared by all transports.

        Raises:
            ValidationError: for a bad channel or event name, or a payload that is not JSON
                or is larger than ``max_payload_bytes``.
        """
        channel, event, data_json = validate_publication(
            channel, event, data, self.max_payload_bytes
        )
        return await self._append(channel, event, data_json, socket_id, user_id)

    async def publish_json(
        self,
        channel: str,
        event: str,
        data_json: str,
        *,
        socket_id: str | None = None,
        user_id: str | None = None,
    ) -> Event:
        """Like :meth:`publish`, with the payload already encoded as JSON text.

        For relaying what a client sent without decoding and re-encoding it. ``data_json``
        must be valid JSON (the caller parsed it); only its size is checked here.

        Raises:
            ValidationError: for a bad channel or event name, or a payload larger than
                ``max_payload_bytes``.
        """
        channel, event = validate_channel(channel), validate_event_name(event)
        check_payload_size(data_json, self.max_payload_bytes)
        return await self._append(channel, event, data_json, socket_id, user_id)

    async def relay_json(
        self,
        channel: str,
        event: str,
        data_json: str,
        *,
        socket_id: str | None = None,
        user_id: str | None = None,
    ) -> Event:
        """Deliver an event to the channel's subscribers of this moment without storing it.

        For Pusher client events (``client-*``): nothing replays them, so keeping them would
        only let a sender fill the history. The event is *transient* (offset 0): it advances
        no subscriber's resume position and is never replayed.

        Raises:
            ValidationError: as :meth:`publish_json`.
        """
        channel, event = validate_channel(channel), validate_event_name(event)
        check_payload_size(data_json, self.max_payload_bytes)
        await self.start()
        self._relayed += 1
        relayed = Event(
            channel,
            event,
            data_json,
            TRANSIENT,
            self.epoch,
            time.time(),
            socket_id=socket_id,
            user_id=user_id,
        )
        await self.backend.relay(relayed)
        return relayed

    async def _append(
        self, channel: str, event: str, data_json: str, socket_id: str | None, user_id: str | None
    ) -> Event:
        await self.start()
        # An outage the process knows of: refuse at once, not after a command timeout.
        self.backend.check_available()
        self._published += 1
        return await self.backend.append(
            channel, event, data_json, socket_id=socket_id, user_id=user_id
        )

    async def subscribe(
        self,
        channels: Iterable[str],
        *,
        last_event_id: str | None = None,
        queue_size: int | None = None,
        counted: bool = True,
    ) -> Subscription:
        """Subscribe to ``channels``, resuming after ``last_event_id`` when given.

        ``counted=False`` is for the server's own listeners (the demo notifier): they get
        every event but are no subscriber in the channels' occupancy (the Pusher HTTP API's
        ``occupied`` and ``subscription_count``), which counts clients.

        Resuming replays exactly the events missed since that id, then continues live with no
        gap and no duplicate. Where that is impossible (the id is older than the history window,
        its channel's history was lost or restarted, or it was made for another channel list)
        the subscription carries a :class:`Reset` in ``resets`` and the channel continues from
        now.

        Raises:
            InvalidChannel: for a bad channel name.
            InvalidCursor: for a ``last_event_id`` no stream of these channels was given.
            BackendUnavailable: the backend cannot be reached (nothing is subscribed).
        """
        names = validate_channels(channels)
        cursor = decode_cursor(last_event_id, names) if last_event_id else None
        await self.start()
        subscription = Subscription(names, queue_size or self.queue_size, on_close=self._forget)
        subscription.counted = counted
        # Register first, so that live events published while we read history are buffered
        # (and de-duplicated against the replay) rather than missed; and have the backend
        # deliver the channels before reading where they are, for the same reason.
        self._all.add(subscription)
        for name in names:
            self._subscribers.setdefault(name, set()).add(subscription)
            self._occupancy_changed(name)
        try:
            await asyncio.gather(*(self.backend.watch(name) for name in names))
            await self._resume(subscription, names, cursor)
        except BaseException:
            subscription.close()
            raise
        return subscription

    async def _resume(
        self, subscription: Subscription, names: tuple[str, ...], cursor: StreamCursor | None
    ) -> None:
        replays: list[list[Event]] = []
        positions: dict[str, Position] = {}
        resets: list[Reset] = []
        for name in names:
            tip = positions[name] = await self.backend.position(name)
            if cursor is None:
                continue
            if cursor.mismatch:
                resets.append(Reset(name, "stream", tip.offset))
                continue
            since = cursor.positions.get(name)
            if since is None:
                continue  # a channel new to this stream starts live: nothing was missed
            missed = await self.backend.after(name, since)
            if missed is None:
                if since.epoch == tip.epoch:
                    gap = tip.offset - since.offset  # negative: a cursor from the future
                    resets.append(Reset(name, "expired", tip.offset, gap if gap >= 0 else None))
                    continue
                # The history the cursor spoke of is gone (a restart, or it was dropped), but
                # the channel's new one is news to this subscriber too: replay it whole when
                # nothing of it was dropped yet, rather than skip it.
                fresh = await self.backend.after(name, Position(tip.epoch, 0))
                if fresh is None:
                    resets.append(Reset(name, "epoch", tip.offset))
                    continue
                resets.append(Reset(name, "epoch", 0))
                replays.append(fresh)
                positions[name] = Position(tip.epoch, 0)
                continue
            replays.append(missed)
            positions[name] = since
        subscription.resets = tuple(resets)
        # Interleave channels in publication order; merge keeps each channel's own order even
        # if the clock stepped back.
        replay = list(heapq.merge(*replays, key=lambda event: event.published_at))
        subscription._go_live(replay, positions)

    async def add_channel(self, subscription: Subscription, channel: str) -> None:
        """Deliver ``channel``'s events to ``subscription`` from now on (live, no replay).

        For transports whose clients join and leave channels on an open connection (Pusher).
        An event published while the channel is being added may or may not be delivered, but
        never twice. A no-op for a closed subscription or a channel it already has.

        Raises:
            InvalidChannel: for a bad channel name.
            BackendUnavailable: the backend cannot be reached (the channel is not added).
        """
        channel = validate_channel(channel)
        try:
            await self.backend.watch(channel)
            tip = await self.backend.position(channel)
        except BaseException:
            self._unwatch_if_idle(channel)
            raise
        # No await from here on: registration and the start position agree.
        if subscription.closed_reason is not None or channel in subscription.channels:
            self._unwatch_if_idle(channel)
            return
        subscription._add_channel(channel, tip)
        self._subscribers.setdefault(channel, set()).add(subscription)
        self._occupancy_changed(channel)

    def _unwatch_if_idle(self, channel: str) -> None:
        if not self._subscribers.get(channel):
            self.backend.unwatch(channel)

    def remove_channel(self, subscription: Subscription, channel: str) -> None:
        """Stop delivering ``channel`` to ``subscription`` and drop its queued events."""
        if channel not in subscription.channels:
            return
        subscription._remove_channel(channel)
        subscribers = self._subscribers.get(channel)
        if subscribers is not None:
            subscribers.discard(subscription)
            if not subscribers:
                del self._subscribers[channel]
                self.backend.unwatch(channel)
            self._occupancy_changed(channel)

    def _deliver(self, event: Event) -> None:
        subscribers = self._subscribers.get(event.channel)
        if subscribers:
            # A push may close (and unregister) a slow subscriber: iterate over a copy.
            for subscription in tuple(subscribers):
                subscription._push(event)

    def _forget(self, subscription: Subscription) -> None:
        self._all.discard(subscription)
        for name in subscription.channels:
            subscribers = self._subscribers.get(name)
            if subscribers is not None:
                subscribers.discard(subscription)
                if not subscribers:
                    del self._subscribers[name]
                    self.backend.unwatch(name)
                self._occupancy_changed(name)

    def watch_occupancy(self, callback: Callable[[str], None]) -> None:
        """Call ``callback(channel)`` whenever the channel's :meth:`subscription_count` changes
        (for a cluster-wide count, :mod:`dashboard.hub.occupancy`). It must not block."""
        self._occupancy_watchers.append(callback)

    def _occupancy_changed(self, channel: str) -> None:
        for callback in self._occupancy_watchers:
            callback(channel)

    def _lost(self, channel: str) -> None:
        """The backend cannot fill a gap in ``channel``'s live events: every subscription of
        it ends (reason ``"resync"``) so that its consumer resumes from its cursor and is told
        ``reset`` (an SSE client reconnects with its ``Last-Event-ID``)."""
        for subscription in tuple(self._subscribers.get(channel, ())):
            subscription.close(RESYNC)

    def occupied_channels(self) -> list[str]:
        """Channels with at least one open subscription in this process, any transport.

        What the Pusher HTTP API calls *occupied*; read-only, for ``GET /apps/{id}/channels``.
        """
        return [name for name, subscribers in self._subscribers.items() if _counts(subscribers)]

    def subscription_count(self, channel: str) -> int:
        """Open subscriptions to ``channel`` in this process: one per Pusher socket or stream
        (not the server's own listeners: ``subscribe(counted=False)``)."""
        return _counts(self._subscribers.get(channel, ()))

    def stats(self) -> HubStats:
        return HubStats(
            subscribers=len(self._all),
            channels=len(self._subscribers),
            published=self._published,
            relayed=self._relayed,
        )


def _counts(subscriptions: Iterable[Subscription]) -> int:
    return sum(1 for subscription in subscriptions if subscription.counted)
