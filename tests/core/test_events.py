import json
import math

import pytest

from dashboard.core.channels import ChannelKind, channel_kind, validate_channel, validate_channels
from dashboard.core.errors import (
    InvalidChannel,
    InvalidEventName,
    InvalidPayload,
    PayloadTooLarge,
    ValidationError,
)
from dashboard.core.events import Event, encode_payload, validate_event_name


@pytest.mark.parametrize(
    "name", ["a", "metrics", "private-user-1", "presence-room.1", "A-Z_0-9=@,.;", "x" * 164]
)
def test_valid_channels(name):
    assert validate_channel(name) == name


@pytest.mark.parametrize(
    "name, message",
    [
        ("", "empty"),
        ("x" * 165, "165 characters"),
        ("a b", "may only contain"),
        ("a/b", "may only contain"),
        ("a:b", "may only contain"),
        ("é", "may only contain"),
        (None, "string"),
        (5, "string"),
    ],
)
def test_invalid_channels(name, message):
    with pytest.raises(InvalidChannel, match=message):
        validate_channel(name)


def test_validate_channels_dedupes_and_requires_one():
    assert validate_channels(["b", "a", "b"]) == ("b", "a")
    with pytest.raises(InvalidChannel):
        validate_channels([])


@pytest.mark.parametrize(
    "name, kind",
    [
        ("metrics", ChannelKind.PUBLIC),
        ("private-x", ChannelKind.PRIVATE),
        ("presence-x", ChannelKind.PRESENCE),
        ("privatex", ChannelKind.PUBLIC),
    ],
)
def test_channel_kind(name, kind):
    assert channel_kind(name) is kind


@pytest.mark.parametrize("name", ["", "a\nb", "a\rb", "a\x00", "connected", "reset", "pusher:x", 1])
def test_invalid_event_names(name):
    with pytest.raises(InvalidEventName):
        validate_event_name(name)


def test_payload_is_compact_json_and_bounded():
    assert encode_payload({"a": [1, "é"]}) == '{"a":[1,"é"]}'
    assert encode_payload(None) == "null"
    with pytest.raises(PayloadTooLarge, match="limit is 10"):
        encode_payload("x" * 20, max_bytes=10)
    # The limit counts UTF-8 bytes, not characters.
    with pytest.raises(PayloadTooLarge):
        encode_payload("é" * 6, max_bytes=12)


def test_payload_with_unpaired_surrogates_is_invalid_not_a_crash():
    with pytest.raises(InvalidPayload, match="surrogates"):
        encode_payload({"text": "\ud800"})


@pytest.mark.parametrize("data", [math.nan, math.inf, {1j}, object(), {"a": b"x"}])
def test_payload_must_be_json(data):
    with pytest.raises(InvalidPayload, match="JSON"):
        encode_payload(data)


def test_errors_are_value_errors_with_codes():
    assert issubclass(ValidationError, ValueError)
    assert PayloadTooLarge.code == "payload_too_large"
    assert InvalidChannel.code == "invalid_channel"


def test_envelope_embeds_payload_text_verbatim():
    event = Event("c", "e", '{"v":1.50}', 3, "ep", 12.5)
    envelope = json.loads(event.envelope_json())
    assert envelope == {
        "channel": "c",
        "event": "e",
        "epoch": "ep",
        "offset": 3,
        "published_at": 12.5,
        "data": {"v": 1.5},
    }
    assert '"data":{"v":1.50}' in event.envelope_json()
    assert event.data == {"v": 1.5}
