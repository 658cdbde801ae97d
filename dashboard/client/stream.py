"""A networked :class:`~dashboard.core.connection.EventStream`: hub events over SSE.

It is the remote twin of :class:`dashboard.hub.HubStream`, so UI components take either one and
never know the transport. Reconnecting and resuming are the job of the underlying
:class:`~dashboard.client.sse.SSESubscription`; this class turns the hub's SSE protocol back
into :class:`~dashboard.core.events.Event` objects:

- ``connected`` (first block of every connection) carries the hub's epoch;
- ``reset`` says that a channel could not be resumed (history expired or a new epoch): it
  becomes a :class:`~dashboard.core.cursor.Reset`, reported in order with the events, as
  :class:`~dashboard.hub.HubStream` reports the hub's;
- every other event's data is an envelope ``{"channel", "event", "offset", "published_at",
  "data"}``.

Any other SSE source works too: events whose data is not an envelope are wrapped as events of
one local channel, so a component can show a third-party feed the same way.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any

import aiohttp
from yarl import URL

from ..core.connection import ConnectionStatus, ResetWatchers
from ..core.cursor import Reset
from ..core.events import Event
from ..core.sse import ServerSentEvent
from .sse import SSEError, SSESubscription, validate_url

#: Where a hub serves its event stream, used when the URL given has no path.
EVENTS_PATH = "/api/events"
#: Channel of wrapped foreign events when the URL does not name exactly one channel.
FOREIGN_CHANNEL = "feed"
#: Epoch of wrapped foreign events; their offsets only count events seen by this client.
FOREIGN_EPOCH = "external"
_ENVELOPE_FIELDS: dict[str, type | tuple[type, ...]] = {
    "channel": str,
    "event": str,
    "offset": int,
    "published_at": (int, float),
}


def events_url(url: str | URL, channels: Iterable[str] = ()) -> URL:
    """Build the URL of an event stream.

    Args:
        url: a hub's base URL (no path: :data:`EVENTS_PATH` is used) or any SSE URL.
        channels: channel names, appended as ``channel`` query parameters.

    Raises:
        ValueError: when ``url`` is not an absolute http(s) URL.
    """
    parsed = validate_url(url)
    if parsed.path in ("", "/"):
        parsed = parsed.with_path(EVENTS_PATH).with_query(parsed.query)
    channels = list(channels)
    if channels:
        parsed = parsed.extend_query([("channel", channel) for channel in channels])
    return parsed


def _json_object(text: str) -> dict[str, Any] | None:
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _count(value: Any) -> int | None:
    """``value`` when it is a non-negative int (not a bool), else ``None``."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    return None


def _is_envelope(value: dict[str, Any] | None) -> bool:
    if value is None or "data" not in value:
        return False
    for name, kind in _ENVELOPE_FIELDS.items():
        field = value.get(name)
        # bool is an int subclass, but no envelope carries one as offset or time.
        if not isinstance(field, kind) or isinstance(field, bool):
            return False
    return True


class HubEventStream:
    """Events of ``channels`` from a hub server (or any SSE URL), with a connection status.

    Args:
        url: the hub's base URL, e.g. ``http://127.0.0.1:5006``, or the full URL of an SSE
            endpoint, used as is.
        channels: channel names to subscribe to, sent as ``channel`` query parameters.
        session: aiohttp session to use; when ``None`` the stream owns one.
        last_event_id: a cursor to resume from.
        on_reset: called with a :class:`~dashboard.core.cursor.Reset` when the server could
            not resume a channel, so a component can reload its state (the same as
            :meth:`watch_resets`).
        **sse_kwargs: passed on to :class:`SSESubscription` (timeouts, backoff, ...).

    Raises:
        ValueError: when ``url`` is not an absolute http(s) URL.
    """

    def __init__(
        self,
        url: str | URL,
        channels: Iterable[str] = (),
        *,
        session: aiohttp.ClientSession | None = None,
        last_event_id: str | None = None,
        on_reset: Callable[[Reset], None] | None = None,
        **sse_kwargs: Any,
    ):
        self.channels = tuple(channels)
        self.url = events_url(url, self.channels)
        self.subscription = SSESubscription(
            self.url, session=session, last_event_id=last_event_id, **sse_kwargs
        )
        self._reset_watchers = ResetWatchers()
        if on_reset is not None:
            self._reset_watchers.watch(on_reset)
        #: The hub's epoch, from the latest ``connected`` event.
        self.epoch: str | None = None
        # Last position delivered per channel: a server that resends an event after a
        # reconnect (e.g. an id that was lost with the connection) cannot duplicate it.
        self._positions: dict[str, tuple[str, int]] = {}
        requested = self.url.query.getall("channel", [])
        self._foreign_channel = requested[0] if len(requested) == 1 else FOREIGN_CHANNEL
        self._foreign_offset = 0

    @property
    def status(self) -> ConnectionStatus:
        """The underlying subscription's status: this stream only reinterprets its events."""
        return self.subscription.status

    @property
    def last_event_id(self) -> str:
        """The cursor the next connection resumes from."""
        return self.subscription.last_event_id

    @property
    def fatal_error(self) -> SSEError | None:
        """Why the stream stopped for good, if it did."""
        return self.subscription.fatal_error

    @property
    def resets(self) -> list[Reset]:
        """The latest ``reset`` notices, oldest first (at most 100)."""
        return self._reset_watchers.resets

    def watch_status(self, callback: Callable[[ConnectionStatus], None]) -> Callable[[], None]:
        """Call ``callback(status)`` on every change.

        Returns:
            A function that stops watching.
        """
        return self.subscription.watch_status(callback)

    async def wait_open(self) -> None:
        """Return once the stream is connected (see
        :meth:`~dashboard.hub.status.OpenWaiter.wait_open`)."""
        await self.subscription.wait_open()

    def watch_resets(self, callback: Callable[[Reset], None]) -> Callable[[], None]:
        """Call ``callback(reset)`` when the server says a channel could not resume exactly,
        before the first event after the gap.

        Returns:
            A function that stops watching.
        """
        return self._reset_watchers.watch(callback)

    async def __aiter__(self) -> AsyncIterator[Event]:
        async for message in self.subscription:
            event = self._convert(message)
            if event is not None:
                yield event

    async def __aenter__(self) -> HubEventStream:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Stop the stream; a consumer blocked in iteration finishes at once."""
        await self.subscription.aclose()

    def _convert(self, message: ServerSentEvent) -> Event | None:
        """Turn one SSE event into an :class:`Event`, or ``None`` for control events."""
        # Control events are recognised by their shape too, so that a foreign source that
        # happens to use the names still reaches the consumer.
        if message.event == "connected":
            info = _json_object(message.data)
            if info is not None and isinstance(info.get("epoch"), str):
                self.epoch = info["epoch"]
                return None
        elif message.event == "reset":
            info = _json_object(message.data)
            if info is not None and isinstance(info.get("channel"), str):
                self._on_reset(info)
                return None
        envelope = _json_object(message.data)
        if envelope is not None and _is_envelope(envelope):
            return self._unwrap(envelope, message)
        return self._wrap(message)

    def _on_reset(self, info: dict[str, Any]) -> None:
        channel = info["channel"]
        reason = info.get("reason")
        reason = reason if isinstance(reason, str) else "unknown"
        offset = _count(info.get("offset"))
        missed = _count(info.get("missed"))
        # The channel continues from wherever the server is now, not from our last offset.
        last = self._positions.pop(channel, None)
        if missed is None and reason == "expired" and offset is not None and last is not None:
            # A server that does not say: the same epoch, so the offsets in between are gone.
            missed = offset - last[1] if offset >= last[1] else None
        self._reset_watchers.report(Reset(channel, reason, offset or 0, missed))

    def _unwrap(self, envelope: dict[str, Any], message: ServerSentEvent) -> Event | None:
        channel, offset = envelope["channel"], envelope["offset"]
        # The channel's epoch; a server from before per-channel epochs sent none.
        sent = envelope.get("epoch")
        epoch = (sent if isinstance(sent, str) else None) or self.epoch or FOREIGN_EPOCH
        last = self._positions.get(channel)
        if offset and last is not None and last[0] == epoch and offset <= last[1]:
            return None  # seen already (offset 0: a client event, never stored, never resent)
        if offset:
            self._positions[channel] = (epoch, offset)
        # Re-encoding gives back the publisher's text: it was compact JSON to begin with.
        data_json = json.dumps(envelope["data"], separators=(",", ":"), ensure_ascii=False)
        return Event(
            channel=channel,
            name=envelope["event"],
            data_json=data_json,
            offset=offset,
            epoch=epoch,
            published_at=float(envelope["published_at"]),
        )

    def _wrap(self, message: ServerSentEvent) -> Event:
        try:
            json.loads(message.data)
            data_json = message.data
        except ValueError:
            data_json = json.dumps(message.data, ensure_ascii=False)
        self._foreign_offset += 1
        return Event(
            channel=self._foreign_channel,
            name=message.event,
            data_json=data_json,
            offset=self._foreign_offset,
            epoch=FOREIGN_EPOCH,
            published_at=time.time(),
        )
