"""RFC 6455 server-to-client frames, built once so fan-out can write the same bytes to every
socket (https://www.rfc-editor.org/rfc/rfc6455#section-5.2).

Only what the server sends for a hub event: one final, unmasked, uncompressed text frame.
"""

from __future__ import annotations

import struct

_FIN_TEXT = 0x81  # FIN bit + opcode 0x1 (text)


def text_frame(payload: bytes) -> bytes:
    """A complete unmasked text frame carrying ``payload`` (UTF-8 text)."""
    length = len(payload)
    if length < 126:
        header = struct.pack("!BB", _FIN_TEXT, length)
    elif length <= 0xFFFF:
        header = struct.pack("!BBH", _FIN_TEXT, 126, length)
    else:
        header = struct.pack("!BBQ", _FIN_TEXT, 127, length)
    return header + payload
