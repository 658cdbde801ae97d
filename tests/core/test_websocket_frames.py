import struct

import pytest

from dashboard.core.websocket_frames import text_frame


@pytest.mark.parametrize(
    "length, header",
    [
        (0, b"\x81\x00"),
        (125, b"\x81\x7d"),
        (126, b"\x81\x7e" + struct.pack("!H", 126)),
        (65535, b"\x81\x7e" + struct.pack("!H", 65535)),
        (65536, b"\x81\x7f" + struct.pack("!Q", 65536)),
    ],
)
def test_text_frame_length_encodings(length, header):
    payload = b"x" * length
    assert text_frame(payload) == header + payload
