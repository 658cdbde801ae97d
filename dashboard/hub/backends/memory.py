"""In-process backend: history in bounded deques, delivery by direct call. The embedded default."""

from __future__ import annotations

import secrets
import time
from collections import OrderedDict
from collections.abc import Callable

from ...core.events import Event
from ...core.history import ChannelHistory, HistoryLimits
from .base import Backend, Deliver


class MemoryBackend(Backend):
    """Keeps history for at most ``max_channels`` channels, each bounded by ``limits``.

    When a publish would exceed ``max_channels``, the channel published to least recently is
    forgotten; a client resuming on it then gets an explicit reset, never a silent gap.
    The epoch is random per instance: a restarted process has a new history.
    """

    def __init__(
        self,
        limits: HistoryLimits | None = None,
        *,
        max_channels: int = 10_000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.epoch = secrets.token_urlsafe(6)
        self.limits = limits or HistoryLimits()
        self.max_channels = max_channels
        self._clock = clock
        self._histories: OrderedDict[str, ChannelHistory] = OrderedDict()
        self._deliver: Deliver | None = None

    async def start(self, deliver: Deliver) -> None:
        self._deliver = deliver

    async def stop(self) -> None:
        self._deliver = None

    async def append(
        self,
        channel: str,
        name: str,
        data_json: str,
        *,
        socket_id: str | None = None,
        user_id: str | None = None,
    ) -> Event:
        history = self._histories.get(channel)
        if history is None:
            history = self._histories[channel] = ChannelHistory(self.limits)
            while len(self._histories) > self.max_channels:
                self._histories.popitem(last=False)
        else:
            self._histories.move_to_end(channel)
        event = Event(
            channel,
            name,
            data_json,
            history.tip + 1,
            self.epoch,
            self._clock(),
            socket_id=socket_id,
            user_id=user_id,
        )
        history.append(event)
        if self._deliver is not None:
            self._deliver(event)
        return event

    async def relay(self, event: Event) -> None:
        if self._deliver is not None:
            self._deliver(event)

    async def after(self, channel: str, offset: int) -> list[Event] | None:
        history = self._histories.get(channel)
        if history is None:
            return [] if offset == 0 else None
        return history.after(offset, self._clock())

    async def tip(self, channel: str) -> int:
        history = self._histories.get(channel)
        return history.tip if history is not None else 0

    async def channels(self) -> list[str]:
        return list(self._histories)
