"""Stream ids for tests: build one for a stream's channel list, read one back as offsets."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from dashboard.core.cursor import Position, decode_cursor, encode_cursor


def cursor_for(channels: Sequence[str], epoch: str, offsets: Mapping[str, int]) -> str:
    """The id a stream of ``channels`` would send, at ``offsets`` of ``epoch`` (0 elsewhere)."""
    return encode_cursor(
        tuple(channels), {name: Position(epoch, offsets.get(name, 0)) for name in channels}
    )


def offsets_of(cursor_id: str, channels: Sequence[str]) -> dict[str, int]:
    """The offset per channel in the id a stream of ``channels`` sent."""
    positions = decode_cursor(cursor_id, tuple(channels)).positions
    return {name: position.offset for name, position in positions.items()}
