"""Pusher WebSocket load client for the benchmarks: the SSE client's epoll loop, WebSocket framing.

:class:`WsLoadClient` reuses :class:`_sse_load.LoadClient` (connect, pump, close and the
``measure`` protocol of :func:`_sse_load.run_client`) and replaces only what is on the wire:

* the request is a hand-written WebSocket handshake without ``Sec-WebSocket-Extensions``, so
  no server compresses; after the ``101`` the client sends one masked ``pusher:subscribe`` and a
  connection is ready once ``pusher_internal:subscription_succeeded`` arrives;
* server frames (unmasked, unfragmented) are walked by their length headers only; the complete
  ones are kept, the rest waits for the next read. Tick frames are counted by their ``\\"seq\\":``
  key (the payload sits JSON-escaped in the Pusher ``data`` string) and, on every 4th
  connection, the send time ``\\"t\\":`` is read for latency;
* ``pusher:ping`` is answered with ``pusher:pong`` (the server pings a client that has said
  nothing for its activity timeout and drops it 30 s later), WebSocket pings with a pong, and a
  close frame ends the connection.
"""

from __future__ import annotations

import base64
import json
import os
import re
import time
from collections.abc import Callable
from typing import Any

import _sse_load
from _sse_load import LoadClient, Stream

_SEQ = b'\\"seq\\":'
_SEND_TIME = re.compile(rb'\\"t\\":([0-9.]+)')
_SUBSCRIBED = b'"pusher_internal:subscription_succeeded"'
_PUSHER_PING = b'"event":"pusher:ping"'
OP_CLOSE, OP_PING, OP_PONG, OP_TEXT = 0x8, 0x9, 0xA, 0x1


def client_frame(payload: bytes, opcode: int = OP_TEXT) -> bytes:
    """One masked, final client frame (RFC 6455 section 5.2) carrying ``payload``."""
    size = len(payload)
    if size < 126:
        head = bytes([0x80 | opcode, 0x80 | size])
    elif size < 1 << 16:
        head = bytes([0x80 | opcode, 0x80 | 126]) + size.to_bytes(2, "big")
    else:
        head = bytes([0x80 | opcode, 0x80 | 127]) + size.to_bytes(8, "big")
    mask = os.urandom(4)
    key = int.from_bytes((mask * (size // 4 + 1))[:size], "big")
    return head + mask + (int.from_bytes(payload, "big") ^ key).to_bytes(size, "big")


def _pong(ping_body: bytes) -> bytes:
    return client_frame(ping_body, OP_PONG)


def _pusher(event: str, **fields: Any) -> bytes:
    return client_frame(json.dumps({"event": event, **fields}).encode())


class WsLoadClient(LoadClient):
    """Holds Pusher WebSocket connections to ``ws://host:port/path``, all on ``channel``."""

    # The event's data is a JSON string inside the frame, so its quotes arrive escaped.
    seq_marker = _SEQ
    send_time_pattern = _SEND_TIME

    def __init__(
        self, host: str, port: int, path: str, channel: str = "bench", sample_every: int = 4
    ) -> None:
        super().__init__(host, port, path, sample_every)
        key = base64.b64encode(os.urandom(16)).decode()
        self.request = (
            f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
        self.subscribe = _pusher("pusher:subscribe", data={"channel": channel})
        self.pong = _pusher("pusher:pong", data={})

    ACCEPTED_STATUS = (b"HTTP/1.1 101",)

    def _feed(self, stream: Stream, data: bytes) -> None:
        now = time.time() if stream.timed else 0.0
        upgraded = stream.in_body
        body = self._take_head(stream, stream.tail + data if stream.tail else data)
        if body is None:
            return
        buf = body
        if not upgraded and not self._send(stream, self.subscribe):
            return
        # Walk the frame headers to the end of the last complete frame.
        pos, size = 0, len(buf)
        while pos + 2 <= size:
            length, start = buf[pos + 1] & 0x7F, pos + 2
            if length == 126:
                length, start = int.from_bytes(buf[pos + 2 : pos + 4], "big"), pos + 4
            elif length == 127:
                length, start = int.from_bytes(buf[pos + 2 : pos + 10], "big"), pos + 10
            if start + length > size:
                break
            opcode = buf[pos] & 0x0F
            if opcode == OP_CLOSE:
                self._close(stream)
                return
            if opcode == OP_PING and not self._send(stream, _pong(buf[start : start + length])):
                return  # closed
            pos = start + length
        if pos == 0:
            stream.tail = buf
            return
        complete, stream.tail = buf[:pos], buf[pos:]
        if _PUSHER_PING in complete and not self._send(stream, self.pong):
            return  # closed
        # No tick: connection_established, subscription_succeeded or a ping.
        if not self._count(stream, complete, now) and _SUBSCRIBED in complete:
            stream.ready = True

    def _send(self, stream: Stream, frame: bytes) -> bool:
        """Send a small frame; closes the connection and returns False if it does not fit."""
        try:
            if stream.sock.send(frame) == len(frame):
                return True
        except OSError:
            pass
        self._close(stream)
        return False


def run_client(
    host: str, port: int, ack_port: int, path: str, emit: Callable[[dict[str, Any]], None]
) -> None:
    """:func:`_sse_load.run_client` (same commands and answers) over Pusher WebSockets."""
    # run_client builds its client from the module's LoadClient; this process only ever runs
    # this one client, so pointing the name at the WebSocket client is enough.
    _sse_load.LoadClient = WsLoadClient  # type: ignore[misc]
    _sse_load.run_client(host, port, ack_port, path, emit)
