"""Our SSE stream protocol on top of the generic SSE codec: what ``/api/events`` writes.

A stream is::

    retry: 3000 / event: connected / id: <cursor> / data: {"channels", "epoch", "heartbeat"}
    event: reset / id: <cursor> / data: {"channel", "reason", "offset"}    (once per lost channel;
                                         plus "missed" when the number of lost events is known)
    event: <name> / id: <cursor> / data: <envelope>                        (one per event)
    : heartbeat                                                            (when idle)
    : waiting for the hub's backend       (first, while the backend is down; then connected)

Every ``id`` is a full :mod:`~dashboard.core.cursor`, so any of them resumes the whole stream.
Event frames are cached on the :class:`Event` itself, so a publish to N subscribers of one
channel encodes its frame once.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from .cursor import Position, Reset, encode_cursor
from .events import Event
from .sse import encode_sse

HEARTBEAT_FRAME = encode_sse(comment="heartbeat")
#: Opens a stream whose ``connected`` event waits for the hub's backend (Redis) to be back.
WAITING_FRAME = encode_sse(comment="waiting for the hub's backend")
_FRAME = "sse"
_BODY = "sse-body"


def connected_frame(
    cursor_id: str, channels: Sequence[str], epoch: str, heartbeat: float, retry_ms: int
) -> bytes:
    """The first block of a stream: reconnect hint, subscription info and the start cursor."""
    data = json.dumps({"channels": list(channels), "epoch": epoch, "heartbeat": heartbeat})
    return encode_sse(data, event="connected", id=cursor_id, retry=retry_ms)


def reset_frame(reset: Reset, cursor_id: str) -> bytes:
    """Tells the client that ``reset.channel`` could not resume and may have a gap; how many
    events it missed (``"missed"``) only when that is known."""
    fields: dict[str, object] = {
        "channel": reset.channel,
        "reason": reset.reason,
        "offset": reset.offset,
    }
    if reset.missed is not None:
        fields["missed"] = reset.missed
    data = json.dumps(fields)
    return encode_sse(data, event="reset", id=cursor_id)


def event_frame(event: Event) -> bytes:
    """The frame of ``event`` for a single-channel stream, whose cursor is the event's own."""
    frame = event.frames.get(_FRAME)
    if frame is None:
        frame = event.frames[_FRAME] = b"id: %s\n%s" % (
            single_cursor(event).encode(),
            _body(event),
        )
    return frame


def transient_frame(event: Event) -> bytes:
    """The frame of a transient event (relayed, never stored): no ``id`` line, so a browser's
    ``Last-Event-ID`` stays at the last stored event (WHATWG HTML, "dispatch the event")."""
    return _body(event)


def single_cursor(event: Event) -> str:
    """The id of ``event`` in a stream of its channel alone: the same for every such stream."""
    return encode_cursor((event.channel,), {event.channel: Position(event.epoch, event.offset)})


def event_frame_with_cursor(event: Event, cursor_id: str) -> bytes:
    """The frame of ``event`` in a multi-channel stream: the shared body under its own id."""
    return b"id: %s\n%s" % (cursor_id.encode(), _body(event))


def _body(event: Event) -> bytes:
    body = event.frames.get(_BODY)
    if body is None:
        body = event.frames[_BODY] = encode_sse(event.envelope_json(), event=event.name)
    return body
