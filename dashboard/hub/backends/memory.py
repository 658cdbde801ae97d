"""In-process backend: history in bounded deques, delivery by direct call. The embedded default."""

from __future__ import annotations

import secrets
import time
from collections import OrderedDict
from collections.abc import Callable

from ...core.cursor import Position
from ...core.events import Event
from ...core.history import ChannelHistory, HistoryLimits
from .base import Backend, Deliver, Lost


class MemoryBackend(Backend):
    """Keeps history for at most ``max_channels`` channels, each bounded by ``limits``.

    When a new channel would exceed ``max_channels``, the channel used least recently is
    forgotten. Its history, if it comes back, starts in a new epoch, so a client resuming on it
    gets an explicit reset, never a silent gap (see :mod:`.base`). Epochs are random per
    instance (a restarted process has new histories): channels start in the instance's epoch,
    and in ``<epoch><n>`` once ``n`` histories have been forgotten.
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
        self._forgotten = 0  # histories evicted so far: the epoch of those created from now

    async def start(self, deliver: Deliver, lost: Lost | None = None) -> None:
        self._deliver = deliver  # nothing is ever lost in transit: ``lost`` is never called

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
        history = self._history(channel)
        event = Event(
            channel,
            name,
            data_json,
            history.tip + 1,
            history.epoch,
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

    async def after(self, channel: str, position: Position) -> list[Event] | None:
        history = self._histories.get(channel)
        if history is None or history.epoch != position.epoch:
            return None  # that history is gone (evicted, or from another process)
        return history.after(position.offset, self._clock())

    async def position(self, channel: str) -> Position:
        history = self._history(channel)
        return Position(history.epoch, history.tip)

    def _history(self, channel: str) -> ChannelHistory:
        """The channel's history, made in the current epoch if it has none; most recent."""
        history = self._histories.get(channel)
        if history is not None:
            self._histories.move_to_end(channel)
            return history
        epoch = self.epoch if not self._forgotten else f"{self.epoch}{self._forgotten:x}"
        history = self._histories[channel] = ChannelHistory(self.limits, epoch)
        while len(self._histories) > self.max_channels:
            self._histories.popitem(last=False)
            self._forgotten += 1
        return history

    def health(self) -> dict[str, object]:
        return {"kind": "memory", "state": "ok"}

    async def channels(self) -> list[str]:
        return list(self._histories)
