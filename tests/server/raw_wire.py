"""HTTP/1.1 and WebSocket clients at byte level, for requests no real client would send.

aiohttp refuses to send a malformed ``Content-Length`` or an unmasked WebSocket frame, and hides
how a server ended a connection; these helpers write exactly the bytes they are given and report
what came back: a whole response, a dropped connection, or nothing before a deadline.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import select
import socket
import struct
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

#: Seconds any one exchange may take: a server that neither answers nor closes "hangs".
DEADLINE = 5.0


@dataclass
class Reply:
    """What a server sent back for one request.

    Attributes:
        status: the final status code; ``None`` when no whole response arrived.
        headers: lower-cased names; a repeated header keeps its last value.
        body: the body, de-chunked.
        outcome: ``"response"``, ``"dropped"`` (closed before a whole response) or
            ``"hang"`` (neither before the deadline).
        informational: the 1xx statuses sent before the final one (``100 Continue``).
        sent: body bytes the client managed to send before the server stopped it.
        closed: whether the server closed the connection (seen only with ``keep_sending``).
    """

    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    outcome: str = "response"
    informational: list[int] = field(default_factory=list)
    sent: int = 0
    closed: bool = False

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def framing_rejection(self) -> bool:
        """Tornado's HTTP/1 parser refusing the message before any handler runs: a bare
        ``400 Bad Request`` with no headers and no body, then a close."""
        return self.status == 400 and not self.headers and not self.body

    def __str__(self) -> str:
        if self.status is None:
            return self.outcome
        return f"{self.status} {self.body[:160]!r}"


def _parse_response(data: bytes, eof: bool) -> Reply | None:
    """The first final response in ``data``, or ``None`` while it is incomplete."""
    reply = Reply()
    while True:
        end = data.find(b"\r\n\r\n")
        if end < 0:
            return None
        lines = data[:end].decode("latin-1").split("\r\n")
        data = data[end + 4 :]
        status = int(lines[0].split(" ", 2)[1])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if 100 <= status < 200:
            reply.informational.append(status)
            continue
        break
    if "content-length" in headers:
        length = int(headers["content-length"])
        if len(data) < length:
            return None
        body = data[:length]
    elif "chunked" in headers.get("transfer-encoding", ""):
        pieces = []
        while True:
            line_end = data.find(b"\r\n")
            if line_end < 0:
                return None
            size = int(data[:line_end].split(b";")[0], 16)
            if len(data) < line_end + 2 + size + 2:
                return None
            pieces.append(data[line_end + 2 : line_end + 2 + size])
            data = data[line_end + 2 + size + 2 :]
            if size == 0:
                break
        body = b"".join(pieces)
    elif eof:  # delimited by the close
        body = data
    else:
        return None
    reply.status, reply.headers, reply.body = status, headers, body
    return reply


def _informational(data: bytes) -> list[int]:
    """The 1xx statuses at the start of ``data``."""
    statuses = []
    while data.startswith(b"HTTP/1.1 1") and b"\r\n\r\n" in data:
        head, _, data = data.partition(b"\r\n\r\n")
        statuses.append(int(head.split(b" ", 2)[1]))
    return statuses


def _exchange(
    port: int,
    head: bytes,
    parts: Iterator[bytes],
    half_close: bool,
    deadline: float,
    send_for: float | None,
    keep_sending: bool,
) -> Reply:
    """:func:`exchange` on a blocking socket: sends and receives are independent, so a
    reset that stops our sending never costs us bytes the server sent before it."""
    started = time.monotonic()
    received = bytearray()
    pending, body_sent = head, -len(head)
    sending, eof, closed = True, False, False
    answer: Reply | None = None
    with socket.create_connection(("127.0.0.1", port), timeout=deadline) as sock:
        sock.setblocking(False)
        while time.monotonic() - started < deadline:
            elapsed = time.monotonic() - started
            if sending and (
                (answer is not None and not keep_sending)
                or (send_for is not None and elapsed > send_for)
            ):
                sending = False
            if sending and not pending:
                pending = next(parts, b"")
                if not pending:
                    sending = False
                    if half_close:
                        sock.shutdown(socket.SHUT_WR)
            if answer is not None and (eof or not keep_sending or (not sending and closed)):
                break
            if eof:
                break
            readable, writable, _ = select.select([sock], [sock] if sending else [], [], 0.05)
            if readable:
                try:
                    data = sock.recv(256 * 1024)
                except ConnectionError:
                    data = b""
                if not data:
                    eof = closed = True
                received += data
                answer = answer or _parse_response(bytes(received), eof)
            if writable and sending:
                try:
                    count = sock.send(pending)
                except (BrokenPipeError, ConnectionResetError):
                    sending, closed = False, True
                else:
                    pending, body_sent = pending[count:], body_sent + count
        if keep_sending and answer is not None and not closed:
            # Has the server closed the connection (or does it go on reading)?
            sock.settimeout(1.0)
            try:
                while sock.recv(64 * 1024):
                    pass
                closed = True
            except ConnectionError:
                closed = True
            except TimeoutError:
                pass
    if answer is None:
        # No final response; keep what came before it (a 100 Continue, say).
        answer = Reply(outcome="dropped" if eof else "hang")
        answer.informational = _informational(bytes(received))
    answer.sent, answer.closed = max(body_sent, 0), closed
    return answer


async def exchange(
    port: int,
    head: bytes,
    body: bytes | Iterable[bytes] = b"",
    *,
    half_close: bool = False,
    deadline: float = DEADLINE,
    send_for: float | None = None,
    keep_sending: bool = False,
) -> Reply:
    """Send ``head`` (request line and headers, ending in a blank line), then ``body``, while
    reading the answer; return the first final response.

    Runs in a thread, so the server may share this event loop.

    Args:
        port: the server's loopback port.
        head: the request head, sent as is.
        body: the body, or its chunks; sending stops once the server has answered, or after
            ``send_for`` seconds.
        half_close: shut our sending side once the body is sent (an incomplete request then
            ends instead of waiting for more).
        deadline: seconds to wait for the whole response.
        send_for: stop sending body chunks after this many seconds.
        keep_sending: go on sending the body after the answer, until the server closes the
            connection (then :attr:`Reply.closed`) or ``send_for`` runs out.
    """
    parts = iter([body] if isinstance(body, bytes) else body)
    return await asyncio.to_thread(
        _exchange, port, head, parts, half_close, deadline, send_for, keep_sending
    )


def request_head(method: str, path: str, headers: Iterable[tuple[str, str]] = ()) -> bytes:
    """A request head; header values are encoded as Latin-1, as HTTP/1.1 allows."""
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1"]
    lines += [f"{name}: {value}" for name, value in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def chunked(data: bytes, size: int = 16 * 1024) -> list[bytes]:
    """``data`` in ``Transfer-Encoding: chunked`` framing, with the final empty chunk."""
    pieces = [data[i : i + size] for i in range(0, len(data), size)]
    return [b"%x\r\n%s\r\n" % (len(piece), piece) for piece in pieces] + [b"0\r\n\r\n"]


# -- WebSocket (RFC 6455) ----------------------------------------------------------------

TEXT, CLOSE, PING = 0x1, 0x8, 0x9


def ws_frame(opcode: int, payload: bytes, *, masked: bool = True) -> bytes:
    """One final frame; a client must mask (section 5.1), this sends unmasked on request."""
    length = len(payload)
    head = bytes([0x80 | opcode])
    mask_bit = 0x80 if masked else 0
    if length < 126:
        head += bytes([mask_bit | length])
    elif length < 1 << 16:
        head += bytes([mask_bit | 126]) + struct.pack("!H", length)
    else:
        head += bytes([mask_bit | 127]) + struct.pack("!Q", length)
    if not masked:
        return head + payload
    key = os.urandom(4)
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


class RawWebSocket:
    """A WebSocket client that writes any frame it is given and reads frames as they come."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def connect(cls, port: int, path: str) -> RawWebSocket:
        """Open a connection and complete the opening handshake by hand (section 4.1)."""
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write(
            request_head(
                "GET",
                path,
                [
                    ("Upgrade", "websocket"),
                    ("Connection", "Upgrade"),
                    ("Sec-WebSocket-Key", key),
                    ("Sec-WebSocket-Version", "13"),
                ],
            )
        )
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), DEADLINE)
        assert head.startswith(b"HTTP/1.1 101"), head
        return cls(reader, writer)

    async def send(self, frame: bytes) -> None:
        self.writer.write(frame)
        await self.writer.drain()

    async def recv(self) -> tuple[int, bytes]:
        """The next frame from the server: ``(opcode, payload)``."""

        async def read() -> tuple[int, bytes]:
            first, second = await self.reader.readexactly(2)
            length = second & 0x7F
            if length == 126:
                (length,) = struct.unpack("!H", await self.reader.readexactly(2))
            elif length == 127:
                (length,) = struct.unpack("!Q", await self.reader.readexactly(8))
            assert not second & 0x80, "a server must not mask its frames"
            return first & 0x0F, await self.reader.readexactly(length)

        return await asyncio.wait_for(read(), DEADLINE)

    async def recv_close(self) -> tuple[int, str]:
        """Skip frames until a Close; its status code and reason."""
        while True:
            opcode, payload = await self.recv()
            if opcode == CLOSE:
                (code,) = struct.unpack("!H", payload[:2])
                return code, payload[2:].decode("utf-8", "replace")

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError):
            await self.writer.wait_closed()
