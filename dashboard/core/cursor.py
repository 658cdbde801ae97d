"""Stream cursors: the SSE ``id`` that lets a reconnecting client resume exactly.

A stream carries one or more channels. Each channel's history has an *epoch*, which names one
unbroken history of it (a restart, or the loss of its history, starts a new epoch), and an
*offset* in it. A cursor records the position ``(epoch, offset)`` in every channel of the
stream, **by index into the stream's own channel list**, which the client sends again on
reconnect (``EventSource`` reconnects to the same URL)::

    2~<list hash>~<common epoch>~<position>,<position>,...

A position is ``<offset>`` when the channel is in the common epoch (the usual case: every
channel of a process starts in the backend's epoch), else ``<epoch>.<offset>``. So an id costs
a few characters per channel, whatever the channel names, and at most
:data:`MAX_POSITION_LENGTH` + 1: a stream within the channel cap always gets an id the server
accepts back. The list hash tells a cursor of another channel list; such a cursor resumes
nothing and says so (a ``reset`` per channel), instead of being refused.

The first format (``<epoch>|<channel>:<offset>|...``) named the channels; it is still read.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from .channels import validate_channel
from .errors import InvalidChannel, InvalidCursor

VERSION = "2"
#: Longest epoch: base64url text.
MAX_EPOCH_LENGTH = 24
#: Longest position: an epoch, a dot and an offset below 2**63 (19 digits).
MAX_POSITION_LENGTH = MAX_EPOCH_LENGTH + 1 + 19
#: Longest header: version, list hash, common epoch and separators.
MAX_HEADER_LENGTH = 1 + 1 + 8 + 1 + MAX_EPOCH_LENGTH + 1
#: Longest cursor of the first format, which named the channels.
MAX_LEGACY_LENGTH = 16 * 1024

_EPOCH_RE = re.compile(rf"[A-Za-z0-9_-]{{1,{MAX_EPOCH_LENGTH}}}")
_OFFSET_RE = re.compile(r"[0-9]{1,19}")
_HASH_RE = re.compile(r"[0-9a-f]{8}")


class Position(NamedTuple):
    """Where a subscriber is in one channel: the history's epoch and the last offset seen."""

    epoch: str
    offset: int


@dataclass(frozen=True)
class StreamCursor:
    """The position of a stream in each of its channels.

    Attributes:
        positions: channel -> :class:`Position`; a channel missing from it starts live.
        mismatch: the cursor was made for another channel list: nothing can be resumed.
    """

    positions: Mapping[str, Position] = field(default_factory=dict)
    mismatch: bool = False


def max_cursor_length(channel_count: int) -> int:
    """The longest id :func:`encode_cursor` issues for a stream of ``channel_count`` channels."""
    return MAX_HEADER_LENGTH + channel_count * (MAX_POSITION_LENGTH + 1)


def _list_hash(channels: Sequence[str]) -> str:
    return hashlib.sha256("\n".join(channels).encode()).hexdigest()[:8]


def encode_cursor(channels: Sequence[str], positions: Mapping[str, Position]) -> str:
    """Format the positions of a stream of ``channels`` (in the stream's order) as an SSE id.

    Args:
        channels: the stream's channel list, as the client asked for it.
        positions: the position in each of them.
    """
    counts = Counter(positions[channel].epoch for channel in channels)
    common = counts.most_common(1)[0][0] if counts else ""
    parts = []
    for channel in channels:
        epoch, offset = positions[channel]
        parts.append(str(offset) if epoch == common else f"{epoch}.{offset}")
    return f"{VERSION}~{_list_hash(channels)}~{common}~{','.join(parts)}"


def decode_cursor(text: str, channels: Sequence[str]) -> StreamCursor:
    """Read an SSE id that a stream of ``channels`` sent back.

    Args:
        text: the ``Last-Event-ID``.
        channels: the stream's channel list, in the order of the request.

    Returns:
        The positions; ``mismatch`` when the id was made for another channel list.

    Raises:
        InvalidCursor: when ``text`` is not a cursor any stream could have been given.
    """
    if "|" in text:
        return _decode_legacy(text)
    if len(text) > max_cursor_length(len(channels)):
        raise InvalidCursor(
            f"Last-Event-ID is {len(text)} characters long; a stream of {len(channels)} "
            "channels never issues one that long"
        )
    version, *rest = text.split("~")
    if version != VERSION or len(rest) != 3:
        raise InvalidCursor(f"Last-Event-ID {text[:80]!r} is not a stream position")
    digest, common, encoded = rest
    if not _HASH_RE.fullmatch(digest) or not encoded:
        raise InvalidCursor(f"Last-Event-ID {text[:80]!r} is not a stream position")
    if common and not _EPOCH_RE.fullmatch(common):
        raise InvalidCursor(f"Last-Event-ID {text[:80]!r} has a bad epoch")
    positions = [_position(part, common) for part in encoded.split(",")]
    if digest != _list_hash(channels) or len(positions) != len(channels):
        return StreamCursor(mismatch=True)
    return StreamCursor(dict(zip(channels, positions, strict=True)))


def _position(part: str, common: str) -> Position:
    epoch, dot, offset = part.rpartition(".")
    if not dot:
        epoch = common
    elif not _EPOCH_RE.fullmatch(epoch):
        raise InvalidCursor(f"Last-Event-ID position {part[:40]!r} has a bad epoch")
    if not _OFFSET_RE.fullmatch(offset):
        raise InvalidCursor(f"Last-Event-ID position {part[:40]!r} is not an offset")
    return Position(epoch, int(offset))


def _decode_legacy(text: str) -> StreamCursor:
    """``<epoch>|<channel>:<offset>|...``: one epoch for every named channel."""
    if len(text) > MAX_LEGACY_LENGTH:
        raise InvalidCursor("Last-Event-ID is too long")
    epoch, *parts = text.split("|")
    if not _EPOCH_RE.fullmatch(epoch) or not parts:
        raise InvalidCursor(f"Last-Event-ID {text[:80]!r} is not a stream position")
    positions: dict[str, Position] = {}
    for part in parts:
        channel, sep, offset = part.rpartition(":")
        # An offset is below 2**63 (19 digits): longer ones were never issued, and int()
        # refuses (and slowly converts) thousands of digits.
        if not sep or not _OFFSET_RE.fullmatch(offset):
            raise InvalidCursor(f"Last-Event-ID part {part[:80]!r} is not channel:offset")
        try:
            positions[validate_channel(channel)] = Position(epoch, int(offset))
        except InvalidChannel as exc:
            raise InvalidCursor(f"Last-Event-ID names a bad channel: {exc}") from None
    return StreamCursor(positions)


@dataclass(frozen=True)
class Reset:
    """A resume that could not be exact for one channel: some events may have been missed.

    Attributes:
        channel: the channel whose position was lost.
        reason: ``"expired"`` (older than the history window), ``"epoch"`` (the history the
            cursor spoke of is gone: a restart, or the channel's history was dropped) or
            ``"stream"`` (the cursor was made for another channel list).
        offset: where the stream continues from: the channel's tip at subscribe time, or 0
            after an ``"epoch"`` reset when the new history is whole and replayed from its
            start.
        missed: how many of the channel's events the subscriber will never see, when known:
            for ``"expired"``, those between its cursor and ``offset``. ``None`` when nobody
            can know (``"epoch"``: the old history is gone).
    """

    channel: str
    reason: str
    offset: int
    missed: int | None = None
