"""Stream cursors: the SSE ``id`` that lets a reconnecting client resume exactly.

A stream may carry several channels, each with its own offsets, so the id records the position
in every channel of the stream plus the hub's epoch::

    <epoch>|<channel>:<offset>|<channel>:<offset>...

``|`` and ``:`` never occur in epochs or channel names, so the format needs no escaping.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from .channels import validate_channel
from .errors import InvalidChannel, InvalidCursor

MAX_CURSOR_LENGTH = 16 * 1024
_EPOCH_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")


@dataclass(frozen=True)
class StreamCursor:
    """Position of a subscriber: the last offset it has seen in each channel."""

    epoch: str
    offsets: Mapping[str, int]

    def encode(self) -> str:
        return encode_cursor(self.epoch, self.offsets)


def encode_cursor(epoch: str, offsets: Mapping[str, int]) -> str:
    """Format a cursor as an SSE id."""
    return epoch + "".join(f"|{channel}:{offset}" for channel, offset in offsets.items())


def decode_cursor(text: str) -> StreamCursor:
    """Parse an SSE id produced by :func:`encode_cursor`.

    Raises:
        InvalidCursor: when ``text`` is not a cursor this hub could have issued.
    """
    if len(text) > MAX_CURSOR_LENGTH:
        raise InvalidCursor("Last-Event-ID is too long")
    epoch, *parts = text.split("|")
    if not _EPOCH_RE.fullmatch(epoch) or not parts:
        raise InvalidCursor(f"Last-Event-ID {text[:80]!r} is not a stream position")
    offsets: dict[str, int] = {}
    for part in parts:
        channel, sep, offset = part.rpartition(":")
        # An offset is below 2**63 (19 digits): longer ones were never issued, and int()
        # refuses (and slowly converts) thousands of digits.
        if not sep or not offset.isdigit() or not offset.isascii() or len(offset) > 19:
            raise InvalidCursor(f"Last-Event-ID part {part[:80]!r} is not channel:offset")
        try:
            offsets[validate_channel(channel)] = int(offset)
        except InvalidChannel as exc:
            raise InvalidCursor(f"Last-Event-ID names a bad channel: {exc}") from None
    return StreamCursor(epoch, offsets)


@dataclass(frozen=True)
class Reset:
    """A resume that could not be exact for one channel: some events may have been missed.

    Attributes:
        channel: the channel whose position was lost.
        reason: ``"expired"`` (older than the history window) or ``"epoch"`` (another hub
            history, e.g. after a restart).
        offset: where the stream continues from (the channel's tip at subscribe time).
        missed: how many of the channel's events the subscriber will never see, when known:
            for ``"expired"``, those between its cursor and ``offset``. ``None`` when nobody
            can know (``"epoch"``: the old history is gone).
    """

    channel: str
    reason: str
    offset: int
    missed: int | None = None
