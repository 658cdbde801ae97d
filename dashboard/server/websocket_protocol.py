"""Tornado's WebSocket protocol, made to fail the connection where RFC 6455 says it must.

Tornado (6.6) answers frames a client must never send instead of failing the connection, and
drops the TCP connection without a close frame on invalid UTF-8. RFC 6455 asks for:

* section 5.1: "The server MUST close the connection upon receiving a frame that is not
  masked. In this case, a server MAY send a Close frame with a status code of 1002
  (protocol error)";
* section 8.1: "When an endpoint is to interpret a byte stream as UTF-8 but finds that the
  byte stream is not, in fact, a valid UTF-8 stream, that endpoint MUST _Fail the WebSocket
  Connection_", with status 1007 (section 7.4.1).

:class:`StrictWebSocketProtocol` does both: it sends the Close frame with the code, ignores
every data frame after it, and lets the closing handshake (or Tornado's 5 s close timeout)
end the connection.
"""

from __future__ import annotations

from typing import Any

from tornado.websocket import WebSocketProtocol13

#: RFC 6455 section 7.4.1 status codes.
PROTOCOL_ERROR = 1002
INVALID_PAYLOAD = 1007

_TEXT, _BINARY = 0x1, 0x2
_MASK_BIT = 0x80


class StrictWebSocketProtocol(WebSocketProtocol13):
    """A server-side :class:`~tornado.websocket.WebSocketProtocol13` that fails the
    connection with 1002 on an unmasked frame and 1007 on a text message that is not UTF-8."""

    _at_frame_start = False
    _failed = False

    async def _receive_frame(self) -> None:
        # The first read of a frame is its two header bytes (Tornado's _receive_frame).
        self._at_frame_start = True
        await super()._receive_frame()

    async def _read_bytes(self, n: int) -> bytes:
        data = await super()._read_bytes(n)
        if self._at_frame_start:
            self._at_frame_start = False
            if len(data) == 2 and not data[1] & _MASK_BIT:
                self._fail(PROTOCOL_ERROR, "client frames must be masked")
        return data

    def _handle_message(self, opcode: int, data: bytes) -> Any:
        if opcode in (_TEXT, _BINARY) and self._failed:
            return None  # failing: no more data reaches the application
        if opcode == _TEXT and not self._frame_compressed:
            try:
                data.decode("utf-8")
            except UnicodeDecodeError:
                self._fail(INVALID_PAYLOAD, "text message is not valid UTF-8")
                return None
        return super()._handle_message(opcode, data)

    def _fail(self, code: int, reason: str) -> None:
        """_Fail the WebSocket Connection_ (RFC 6455 section 7.1.7) with ``code``."""
        if not self._failed:
            self._failed = True
            self.close(code, reason)
