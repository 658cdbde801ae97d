"""Pusher protocol 7 frames: table-driven parsing, exact server frames, presence channel_data.

https://pusher.com/docs/channels/library_auth_reference/pusher-websockets-protocol/
"""

from __future__ import annotations

import contextlib
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dashboard.core.errors import InvalidChannelData, ValidationError
from dashboard.core.events import Event
from dashboard.core.pusher_frames import (
    ProtocolError,
    PusherErrorCode,
    PusherFrame,
    channel_event,
    connection_established,
    error,
    event_data_string,
    hub_event_frame,
    is_client_event,
    member_added,
    member_removed,
    parse_channel_data,
    parse_client_frame,
    ping,
    pong,
    signin_success,
    subscription_error,
    subscription_succeeded,
)

F = PusherFrame

# What pusher-js sends (Connection.send_event = JSON.stringify({event, data, channel?})).
PARSED: dict[str, tuple[str, PusherFrame]] = {
    "ping": ('{"event":"pusher:ping","data":{}}', F("pusher:ping", data={}, raw_data="{}")),
    "pong without data": ('{"event":"pusher:pong"}', F("pusher:pong")),
    "subscribe public": (
        '{"event":"pusher:subscribe","data":{"auth":"","channel":"my-channel"}}',
        F(
            "pusher:subscribe",
            "my-channel",
            {"auth": "", "channel": "my-channel"},
            '{"auth":"","channel":"my-channel"}',
        ),
    ),
    "subscribe presence keeps channel_data verbatim": (
        '{"event":"pusher:subscribe","data":{"auth":"k:s","channel_data":"{\\"user_id\\": 10}",'
        '"channel":"presence-room"}}',
        F(
            "pusher:subscribe",
            "presence-room",
            {"auth": "k:s", "channel_data": '{"user_id": 10}', "channel": "presence-room"},
            '{"auth":"k:s","channel_data":"{\\"user_id\\": 10}","channel":"presence-room"}',
        ),
    ),
    "subscribe with double-encoded data": (
        '{"event":"pusher:subscribe","data":"{\\"channel\\":\\"private-a\\"}"}',
        F("pusher:subscribe", "private-a", {"channel": "private-a"}, '{"channel":"private-a"}'),
    ),
    "unsubscribe": (
        '{"event":"pusher:unsubscribe","data":{"channel":"private-a"}}',
        F("pusher:unsubscribe", "private-a", {"channel": "private-a"}, '{"channel":"private-a"}'),
    ),
    "signin": (
        '{"event":"pusher:signin","data":{"auth":"k:s","user_data":"{\\"id\\":\\"1\\"}"}}',
        F(
            "pusher:signin",
            None,
            {"auth": "k:s", "user_data": '{"id":"1"}'},
            '{"auth":"k:s","user_data":"{\\"id\\":\\"1\\"}"}',
        ),
    ),
    "client event, object data kept as sent": (
        '{ "event" : "client-typing" , "data" : {"b": 1.50, "a": [ 1e2 ]} , "channel":"private-a" }',
        F("client-typing", "private-a", {"b": 1.5, "a": [100.0]}, '{"b": 1.50, "a": [ 1e2 ]}'),
    ),
    "client event, string data is not decoded": (
        '{"event":"client-x","channel":"presence-a","data":"{\\"a\\":1}"}',
        F("client-x", "presence-a", '{"a":1}', '{"a":1}'),
    ),
    "client event, number data": (
        '{"event":"client-x","channel":"private-a","data":-0.5}',
        F("client-x", "private-a", -0.5, "-0.5"),
    ),
    "client event, null data": (
        '{"event":"client-x","channel":"private-a","data":null}',
        F("client-x", "private-a", None, "null"),
    ),
    "repeated key: the last one wins, as in JSON.parse": (
        '{"event":"client-x","channel":"private-a","data":1,"data":[2]}',
        F("client-x", "private-a", [2], "[2]"),
    ),
    "non-ascii and escapes": (
        '{"event":"client-x","channel":"private-a","data":{"t":"é\\u00e9\\n"}}',
        F("client-x", "private-a", {"t": "éé\n"}, '{"t":"é\\u00e9\\n"}'),
    ),
    "unknown events are left to the caller": (
        '{"event":"my-event","extra":true}',
        F("my-event"),
    ),
}


@pytest.mark.parametrize(("text", "frame"), PARSED.values(), ids=PARSED.keys())
def test_parse(text, frame):
    assert parse_client_frame(text) == frame


MALFORMED: dict[str, tuple[str, str]] = {
    "empty": ("", "not valid JSON"),
    "not JSON": ("hello", "not valid JSON"),
    "truncated": ('{"event":"pusher:ping"', "not valid JSON"),
    "NaN": ('{"event":"client-x","channel":"private-a","data":NaN}', "not valid JSON"),
    "Infinity": ('{"event":"client-x","channel":"private-a","data":-Infinity}', "not valid JSON"),
    "deep nesting": ('{"event":"client-x","data":' + "[" * 5000 + "]" * 5000 + "}", "JSON"),
    "array": ('[{"event":"pusher:ping"}]', "must be a JSON object, not list"),
    "string": ('"pusher:ping"', "must be a JSON object, not str"),
    "no event": ('{"data":{}}', "non-empty string event"),
    "empty event": ('{"event":""}', "non-empty string event"),
    "event not a string": ('{"event":42}', "non-empty string event"),
    "event too long": ('{"event":"client-' + "x" * 200 + '"}', "longer than 200"),
    "bad top-level channel": ('{"event":"client-x","channel":"private a"}', "channel: channel"),
    "channel not a string": ('{"event":"client-x","channel":7}', "channel must be a string"),
    "client event without channel": ('{"event":"client-x","data":{}}', "needs a channel"),
    "subscribe without data": ('{"event":"pusher:subscribe"}', "data must be an object"),
    "subscribe data a list": ('{"event":"pusher:subscribe","data":[]}', "must be an object"),
    "subscribe data undecodable string": (
        '{"event":"pusher:subscribe","data":"private-a"}',
        "must be an object",
    ),
    "subscribe without channel": ('{"event":"pusher:subscribe","data":{}}', "is required"),
    "subscribe to a bad channel": (
        '{"event":"pusher:subscribe","data":{"channel":"' + "a" * 165 + '"}}',
        "the limit is 164",
    ),
    "subscribe with auth not a string": (
        '{"event":"pusher:subscribe","data":{"channel":"private-a","auth":1}}',
        "data.auth must be a string",
    ),
    "subscribe with channel_data an object": (
        '{"event":"pusher:subscribe","data":{"channel":"presence-a","channel_data":{"user_id":1}}}',
        "data.channel_data must be a string",
    ),
    "unsubscribe without channel": ('{"event":"pusher:unsubscribe","data":{}}', "is required"),
    "signin without user_data": (
        '{"event":"pusher:signin","data":{"auth":"k:s"}}',
        "data.user_data must be a string",
    ),
}


@pytest.mark.parametrize(("text", "message"), MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_frames_raise_protocol_error_without_code(text, message):
    with pytest.raises(ProtocolError, match=message) as info:
        parse_client_frame(text)
    assert info.value.code is None
    assert json.loads(error(info.value.message, info.value.code))["data"]["code"] is None


def test_binary_frames_are_refused():
    with pytest.raises(ProtocolError, match="binary"):
        parse_client_frame(b'{"event":"pusher:ping"}')  # type: ignore[arg-type]


def test_size_limit_counts_utf8_bytes():
    head, tail = '{"event":"client-x","channel":"private-a","data":"', '"}'
    n = 10 * 1024 - len(head) - len(tail)
    fits = head + "x" * n + tail
    assert parse_client_frame(fits).raw_data == "x" * n
    # One byte over, by one more character or by a two-byte character in place of "x".
    for oversize in (fits + " ", head + "é" + "x" * (n - 1) + tail):
        with pytest.raises(ProtocolError, match="larger than 10240 bytes") as info:
            parse_client_frame(oversize)
        assert info.value.code == PusherErrorCode.CLIENT_EVENT_REJECTED == 4301
    with pytest.raises(ProtocolError):
        parse_client_frame('{"event":"pusher:ping"}', max_bytes=10)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=10),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=10,
)
whitespace = st.text(" \t\r\n", max_size=3)


@given(
    value=json_values,
    ws=st.lists(whitespace, min_size=8, max_size=8),
    indent=st.none() | st.integers(0, 2),
)
def test_raw_data_is_the_exact_text_sent(value, ws, indent):
    data_text = json.dumps(value, indent=indent)
    text = (
        f'{ws[0]}{{{ws[1]}"channel"{ws[2]}:{ws[3]}"private-a",{ws[4]}"data"{ws[5]}:{ws[6]}'
        f'{data_text}{ws[7]},"event":"client-x"}}'
    )
    frame = parse_client_frame(text, max_bytes=10**6)
    assert frame.data == value
    assert frame.raw_data == (value if isinstance(value, str) else data_text)


@given(st.text(max_size=200))
def test_arbitrary_text_raises_only_protocol_error(text):
    try:
        frame = parse_client_frame(text)
    except ProtocolError:
        return
    assert isinstance(frame.event, str) and frame.event


@given(st.dictionaries(st.sampled_from(["event", "channel", "data"]), json_values))
def test_arbitrary_objects_raise_only_protocol_error(message):
    with contextlib.suppress(ProtocolError):
        parse_client_frame(json.dumps(message))


def test_is_client_event():
    assert is_client_event("client-x") and not is_client_event("pusher:ping")


# --- frames the server sends --------------------------------------------------------------


def test_connection_established_double_encodes_data():
    text = connection_established("123.456", 120)
    assert text == (
        '{"event":"pusher:connection_established",'
        '"data":"{\\"socket_id\\":\\"123.456\\",\\"activity_timeout\\":120}"}'
    )
    assert json.loads(json.loads(text)["data"]) == {"socket_id": "123.456", "activity_timeout": 120}


def test_error_ping_pong():
    assert json.loads(error("Over capacity", PusherErrorCode.OVER_CAPACITY)) == {
        "event": "pusher:error",
        "data": {"message": "Over capacity", "code": 4100},
    }
    assert json.loads(error("bad frame")) == {
        "event": "pusher:error",
        "data": {"message": "bad frame", "code": None},
    }
    assert json.loads(ping()) == {"event": "pusher:ping", "data": {}}
    assert json.loads(pong()) == {"event": "pusher:pong", "data": {}}


def test_subscription_succeeded():
    assert json.loads(subscription_succeeded("my-channel")) == {
        "event": "pusher_internal:subscription_succeeded",
        "channel": "my-channel",
        "data": "{}",
    }
    presence = {"presence": {"ids": ["1"], "hash": {"1": {"name": "A"}}, "count": 1}}
    frame = json.loads(subscription_succeeded("presence-a", presence))
    assert frame["channel"] == "presence-a" and json.loads(frame["data"]) == presence


def test_subscription_error_has_pusher_js_shape():
    assert json.loads(subscription_error("private-a", 401, "Invalid signature")) == {
        "event": "pusher:subscription_error",
        "channel": "private-a",
        "data": {"type": "AuthError", "error": "Invalid signature", "status": 401},
    }
    frame = json.loads(subscription_error("presence-a", 403, "full", error_type="LimitReached"))
    assert frame["data"]["type"] == "LimitReached"


def test_member_added_and_removed():
    added = json.loads(member_added("presence-a", "7", {"name": "Ada"}))
    assert added["event"] == "pusher_internal:member_added" and added["channel"] == "presence-a"
    assert json.loads(added["data"]) == {"user_id": "7", "user_info": {"name": "Ada"}}
    removed = json.loads(member_removed("presence-a", "7"))
    assert removed["event"] == "pusher_internal:member_removed"
    assert json.loads(removed["data"]) == {"user_id": "7"}


def test_signin_success_echoes_user_data_verbatim():
    user_data = '{"id": "1", "user_info": {}}'
    frame = json.loads(signin_success(user_data))
    assert frame == {"event": "pusher:signin_success", "data": {"user_data": user_data}}


def test_channel_event_sends_data_as_the_published_string():
    frame = channel_event("my-channel", "my-event", '{"a": 1}')
    assert frame == '{"event":"my-event","channel":"my-channel","data":"{\\"a\\": 1}"}'
    relayed = json.loads(channel_event("presence-a", "client-x", "[1]", user_id="7"))
    assert relayed == {"event": "client-x", "channel": "presence-a", "data": "[1]", "user_id": "7"}


def test_a_relayed_client_event_round_trips():
    sent = '{"event":"client-x","channel":"private-a","data":{"k": "v"}}'
    frame = parse_client_frame(sent)
    out = json.loads(channel_event(frame.channel, frame.event, frame.raw_data))
    assert out["data"] == '{"k": "v"}' and json.loads(out["data"]) == frame.data


def test_lone_surrogates_are_escaped_so_frames_stay_valid_utf8():
    frame = parse_client_frame('{"event":"client-x","channel":"private-a","data":"\\ud800"}')
    channel_event("private-a", "client-x", frame.raw_data).encode("utf-8")


# --- presence channel_data ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"user_id":10,"user_info":{"name":"Mr. Pusher"}}', ("10", {"name": "Mr. Pusher"})),
        ('{"user_id": "abc"}', ("abc", None)),
        ('{"user_id":-3,"user_info":[1,2]}', ("-3", [1, 2])),
        ('{"user_id":"' + "u" * 128 + '"}', ("u" * 128, None)),
        ('{"user_id":"é","user_info":"' + "x" * 1022 + '"}', ("é", "x" * 1022)),
    ],
)
def test_parse_channel_data(text, expected):
    assert parse_channel_data(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (None, "must be a JSON string"),
        ({"user_id": 1}, "must be a JSON string"),
        ("{user_id: 1}", "not valid JSON"),
        ('["user_id"]', "must be a JSON object"),
        ('{"user_info":{}}', "no user_id"),
        ('{"user_id":""}', "non-empty string or an integer"),
        ('{"user_id":null}', "non-empty string or an integer"),
        ('{"user_id":true}', "non-empty string or an integer"),
        ('{"user_id":1.5}', "non-empty string or an integer"),
        ('{"user_id":{"id":1}}', "non-empty string or an integer"),
        ('{"user_id":"' + "u" * 129 + '"}', "129 characters long; the limit is 128"),
        (
            '{"user_id":"1","user_info":"' + "x" * 1023 + '"}',
            "1025 bytes of JSON; the limit is 1024",
        ),
        ('{"user_id":"1","user_info":"' + "é" * 512 + '"}', "1026 bytes"),
    ],
)
def test_parse_channel_data_rejects(text, message):
    with pytest.raises(InvalidChannelData, match=message) as info:
        parse_channel_data(text)
    assert isinstance(info.value, ValidationError)
    assert info.value.code == "invalid_channel_data"


@pytest.mark.parametrize(
    ("data_json", "sent"),
    [
        ('{"v":1}', '{"v":1}'),
        ('"hello"', "hello"),
        ('"a\\"b"', 'a"b'),
        ("[1,2]", "[1,2]"),
        ("3", "3"),
        ("null", "null"),
    ],
)
def test_event_data_string(data_json, sent):
    assert event_data_string(data_json) == sent


def test_hub_event_frame_is_built_once_and_carries_the_user_id():
    event = Event("presence-a", "client-x", '{"v":1}', 1, "ep", 0.0, user_id="7")
    frame = hub_event_frame(event)
    assert hub_event_frame(event) is frame
    assert json.loads(frame) == {
        "event": "client-x",
        "channel": "presence-a",
        "data": '{"v":1}',
        "user_id": "7",
    }
    plain = Event("a", "e", '"text"', 1, "ep", 0.0)
    assert json.loads(hub_event_frame(plain)) == {"event": "e", "channel": "a", "data": "text"}
