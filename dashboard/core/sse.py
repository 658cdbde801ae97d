"""Sans-I/O Server-Sent Events codec.

:class:`SSEDecoder` turns bytes into :class:`ServerSentEvent` objects and :func:`encode_sse`
turns one event into bytes. Neither touches a socket, so the server, the client and the
benchmarks share them, and the tests can split streams at every byte.

The decoder follows the WHATWG "event stream interpretation" rules exactly:
https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation

"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass

__all__ = ["ServerSentEvent", "SSEDecoder", "encode_sse"]

# Only CRLF, CR and LF end a line. str.splitlines() also splits on \v, \f, \x1c-\x1e, \x85,
# \u2028 and \u2029, which the spec treats as ordinary data.
_LINE_END = re.compile(r"\r\n|\r|\n")
_HAS_LINE_END = re.compile(r"[\r\n]")


@dataclass(frozen=True, slots=True)
class ServerSentEvent:
    """One dispatched event.

    Attributes:
        event: Event type; ``"message"`` when the block set none or an empty one.
        data: Data lines of the block joined with ``"\\n"``.
        id: Last event ID in effect when the event was dispatched. It persists across
            events until a later ``id`` field changes it, as the spec requires.
        retry: Reconnection time in milliseconds if this block set a valid one, else ``None``.

    """

    event: str = "message"
    data: str = ""
    id: str = ""
    retry: int | None = None


class SSEDecoder:
    """Incremental decoder for a ``text/event-stream`` body.

    Feeding a stream in any number of chunks, split anywhere (inside a UTF-8 sequence or
    between CR and LF), yields the same events as feeding it whole. An event that is not
    followed by a blank line before the stream ends is never dispatched, so there is no flush.

    Attributes:
        last_event_id: The value a client sends as ``Last-Event-ID`` when it reconnects.
            Updated each time a blank line ends a block, even one without data.
        retry: Latest valid reconnection time in milliseconds, or ``None`` if never set.

    """

    def __init__(self) -> None:
        # errors="replace" as the spec mandates; the incremental decoder holds back an
        # incomplete multi-byte sequence until the next chunk completes it.
        self._utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._started = False  # whether the first character (a possible BOM) has been seen
        self._pending_cr = False  # the previous chunk ended with CR: drop a leading LF
        self._partial: list[str] = []  # pieces of the line not yet terminated

        # The three buffers of the spec. Data lines are kept in a list; the spec's buffer
        # is "\n".join(lines) + "\n", so "empty buffer" means "no data lines".
        self._event_type = ""
        self._data: list[str] = []
        self._id_buffer = ""
        self._block_retry: int | None = None

        self.last_event_id = ""
        self.retry: int | None = None

    def feed(self, chunk: bytes) -> list[ServerSentEvent]:
        """Decode the next chunk of the stream.

        Args:
            chunk: Bytes as they arrived; may be empty or split anywhere.

        Returns:
            Events completed by this chunk, in stream order; often empty.

        """
        text = self._utf8.decode(chunk)
        if not text:
            return []
        if not self._started:
            self._started = True
            # Only the very first character can be a BOM; one later on is data.
            if text[0] == "\ufeff":
                text = text[1:]
        if self._pending_cr:
            self._pending_cr = False
            if text[:1] == "\n":
                text = text[1:]
        # Fast path for small chunks inside a long line: buffer without splitting, so
        # byte-at-a-time feeding stays linear.
        if not _HAS_LINE_END.search(text):
            if text:
                self._partial.append(text)
            return []

        lines = _LINE_END.split(text)
        if self._partial:
            self._partial.append(lines[0])
            lines[0] = "".join(self._partial)
        # The last piece has no terminator yet. When the text ends with CR it is "", and
        # the CR already ended the line, but an LF opening the next chunk belongs to it.
        tail = lines.pop()
        self._partial = [tail] if tail else []
        self._pending_cr = text[-1] == "\r"

        events: list[ServerSentEvent] = []
        for line in lines:
            if line:
                self._process_field(line)
            else:
                event = self._dispatch()
                if event is not None:
                    events.append(event)
        return events

    def _process_field(self, line: str) -> None:
        if line[0] == ":":
            return  # comment, e.g. a heartbeat
        name, colon, value = line.partition(":")
        if colon and value[:1] == " ":
            value = value[1:]  # exactly one space, so " x" can still be sent as "data:  x"
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event_type = value
        elif name == "id":
            # A NUL could truncate the Last-Event-ID header, so the spec ignores such ids.
            if "\0" not in value:
                self._id_buffer = value
        # isdigit() alone would also accept non-ASCII digits such as "\u0661".
        elif name == "retry" and value.isascii() and value.isdigit():
            self.retry = self._block_retry = int(value)
        # Any other field name is ignored, leaving room for future extensions.

    def _dispatch(self) -> ServerSentEvent | None:
        # The id buffer is never reset: it sticks until the server sends another id.
        self.last_event_id = self._id_buffer
        retry, self._block_retry = self._block_retry, None
        data, self._data = self._data, []
        event_type, self._event_type = self._event_type, ""
        if not data:
            return None
        return ServerSentEvent(
            event=event_type or "message",
            data="\n".join(data),
            id=self._id_buffer,
            retry=retry,
        )


def encode_sse(
    data: str | None = None,
    event: str | None = None,
    id: str | None = None,
    retry: int | None = None,
    comment: str | None = None,
) -> bytes:
    """Encode one block of an event stream, ending with a blank line.

    Fields left as ``None`` are omitted. A block without ``data`` dispatches no event on the
    receiving side but still updates its last event ID and retry time; a block with only a
    ``comment`` (``b": heartbeat\\n\\n"``) keeps idle connections and proxies alive.

    Decoding the result yields ``data`` exactly when its line breaks are LF. The spec turns
    every CR and CRLF into LF on the way in, so such data arrives LF-normalised. A value is
    always written after ``": "`` because the decoder strips exactly one space; leading
    spaces of the value therefore survive.

    Args:
        data: Event payload; each line becomes a ``data:`` line. ``""`` sends an event with
            empty data.
        event: Event type; the receiver uses ``"message"`` when absent or empty.
        id: Last event ID to set; ``""`` resets the receiver's last event ID.
        retry: Reconnection time in milliseconds.
        comment: Text for ``:`` comment lines, which every receiver ignores.

    Returns:
        UTF-8 encoded block.

    Raises:
        ValueError: If ``event`` or ``id`` contains CR or LF, ``id`` contains NUL, or
            ``retry`` is not a non-negative integer.

    """
    lines: list[str] = []
    if comment is not None:
        lines.extend(": " + line for line in _LINE_END.split(comment))
    if event is not None:
        if _HAS_LINE_END.search(event):
            raise ValueError(f"event type must not contain CR or LF: {event!r}")
        lines.append("event: " + event)
    if id is not None:
        if _HAS_LINE_END.search(id):
            raise ValueError(f"id must not contain CR or LF: {id!r}")
        if "\0" in id:
            # The receiver would silently ignore it.
            raise ValueError(f"id must not contain NUL: {id!r}")
        lines.append("id: " + id)
    if retry is not None:
        # bool is an int subclass, but retry=True is certainly a mistake.
        if isinstance(retry, bool) or not isinstance(retry, int) or retry < 0:
            raise ValueError(f"retry must be a non-negative int: {retry!r}")
        lines.append(f"retry: {retry}")
    if data is not None:
        lines.extend("data: " + line for line in _LINE_END.split(data))
    lines.append("\n")
    return "\n".join(lines).encode("utf-8")
