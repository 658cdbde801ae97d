"""Conformance tests for the SSE codec against the WHATWG event stream rules.

https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation
"""

from __future__ import annotations

from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dashboard.core.sse import ServerSentEvent, SSEDecoder, encode_sse

E = ServerSentEvent


def decode(stream: bytes) -> list[ServerSentEvent]:
    return SSEDecoder().feed(stream)


def decode_chunks(chunks: list[bytes]) -> tuple[list[ServerSentEvent], str, int | None]:
    decoder = SSEDecoder()
    events = [event for chunk in chunks for event in decoder.feed(chunk)]
    return events, decoder.last_event_id, decoder.retry


# (stream, expected events)
CASES: dict[str, tuple[bytes, list[ServerSentEvent]]] = {
    # --- the examples of the spec section ---
    "spec: three messages": (
        b"data: This is the first message.\n\n"
        b"data: This is the second message, it\n"
        b"data: has two lines.\n\n"
        b"data: This is the third message.\n\n",
        [
            E(data="This is the first message."),
            E(data="This is the second message, it\nhas two lines."),
            E(data="This is the third message."),
        ],
    ),
    "spec: event types": (
        b"event: add\ndata: 73857293\n\nevent: remove\ndata: 2153\n\nevent: add\ndata: 113411\n\n",
        [
            E(event="add", data="73857293"),
            E(event="remove", data="2153"),
            E(event="add", data="113411"),
        ],
    ),
    "spec: stock ticker": (b"data: YHOO\ndata: +2\ndata: 10\n\n", [E(data="YHOO\n+2\n10")]),
    "spec: comment, id set and reset": (
        b": test stream\n\ndata: first event\nid: 1\n\ndata:second event\nid\n\n"
        b"data:  third event\n\n",
        [E(data="first event", id="1"), E(data="second event"), E(data=" third event")],
    ),
    "spec: last event needs a blank line": (
        b": test stream\n\ndata: first event\nid: 1\n\ndata:second event\nid\n\n"
        b"data:  third event\n",
        [E(data="first event", id="1"), E(data="second event")],
    ),
    "spec: bare data fields": (
        b"data\n\ndata\ndata\n\ndata:",
        [E(data=""), E(data="\n")],
    ),
    "spec: space after colon optional": (
        b"data:test\n\ndata: test\n\n",
        [E(data="test"), E(data="test")],
    ),
    # --- byte order mark ---
    "BOM at start stripped": (b"\xef\xbb\xbfdata: x\n\n", [E(data="x")]),
    "only one BOM stripped": (b"\xef\xbb\xbf\xef\xbb\xbfdata: x\n\n", []),
    "BOM later is data": (b"data: \xef\xbb\xbfx\n\n", [E(data="\ufeffx")]),
    "BOM on a later line is part of the field name": (
        b"data: a\n\n\xef\xbb\xbfdata: b\n\n",
        [E(data="a")],
    ),
    # --- line endings ---
    "LF": (b"data: a\ndata: b\n\n", [E(data="a\nb")]),
    "CR": (b"data: a\rdata: b\r\r", [E(data="a\nb")]),
    "CRLF": (b"data: a\r\ndata: b\r\n\r\n", [E(data="a\nb")]),
    "mixed endings": (b"data: a\rdata: b\r\ndata: c\n\r\n", [E(data="a\nb\nc")]),
    "LF CR is two line ends": (b"data: a\n\rdata: b\n\n", [E(data="a"), E(data="b")]),
    "other Unicode line breaks are data": (
        b"data: a\x0bb\x0cc\x1cd\xc2\x85e\xe2\x80\xa8f\n\n",
        [E(data="a\x0bb\x0cc\x1cd\x85e\u2028f")],
    ),
    # --- comments and field parsing ---
    "comment ignored": (b": hello\ndata: x\n:\n\n", [E(data="x")]),
    "comment-only block dispatches nothing": (b": heartbeat\n\n", []),
    "field without colon has empty value": (b"data\n\n", [E(data="")]),
    "exactly one leading space stripped": (b"data:  x\n\n", [E(data=" x")]),
    "trailing spaces kept": (b"data: x  \n\n", [E(data="x  ")]),
    "only the first colon splits": (b"data: a: b:c\n\n", [E(data="a: b:c")]),
    "unknown field ignored": (b"foo: bar\ndata: x\nDATA: y\n\n", [E(data="x")]),
    "field names are exact": (b"data : x\n data: y\n\n", []),
    # --- event type ---
    "empty event type is message": (b"event:\ndata: x\n\n", [E(data="x")]),
    "last event field wins": (b"event: a\nevent: b\ndata: x\n\n", [E(event="b", data="x")]),
    "event type reset after dispatch": (
        b"event: a\ndata: x\n\ndata: y\n\n",
        [E(event="a", data="x"), E(data="y")],
    ),
    "event without data does not dispatch": (b"event: a\n\ndata: y\n\n", [E(data="y")]),
    "event type reset by block without data": (b"event: a\n\ndata: y\n\n", [E(data="y")]),
    # --- data ---
    "empty data value dispatches": (b"data:\n\n", [E(data="")]),
    "one trailing newline removed": (b"data: a\ndata:\n\n", [E(data="a\n")]),
    "data with non-ASCII": (
        "data: héllo 🌍\n\n".encode(),
        [E(data="héllo 🌍")],
    ),
    "invalid UTF-8 replaced": (b"data: a\xffb\n\n", [E(data="a\ufffdb")]),
    "NUL in data kept": (b"data: a\x00b\n\n", [E(data="a\x00b")]),
    "repeated blank lines": (b"\n\n\ndata: x\n\n\n\n", [E(data="x")]),
    # --- id ---
    "id persists across events": (
        b"id: 1\ndata: a\n\ndata: b\n\n",
        [E(data="a", id="1"), E(data="b", id="1")],
    ),
    "empty id resets": (
        b"id: 1\ndata: a\n\nid:\ndata: b\n\n",
        [E(data="a", id="1"), E(data="b")],
    ),
    "id without colon resets": (
        b"id: 1\ndata: a\n\nid\ndata: b\n\n",
        [E(data="a", id="1"), E(data="b")],
    ),
    "id with NUL ignored": (
        b"id: 1\ndata: a\n\nid: 2\x003\ndata: b\n\n",
        [E(data="a", id="1"), E(data="b", id="1")],
    ),
    "id in block without data still sticks": (b"id: 7\n\ndata: a\n\n", [E(data="a", id="7")]),
    "id after data in same block applies": (b"data: a\nid: 9\n\n", [E(data="a", id="9")]),
    # --- retry ---
    "retry digits": (b"retry: 3000\ndata: x\n\n", [E(data="x", retry=3000)]),
    "retry with letters ignored": (b"retry: 12a\ndata: x\n\n", [E(data="x")]),
    "retry negative ignored": (b"retry: -1\ndata: x\n\n", [E(data="x")]),
    "retry empty ignored": (b"retry: \ndata: x\n\n", [E(data="x")]),
    "retry non-ASCII digits ignored": ("retry: \u0661\ndata: x\n\n".encode(), [E(data="x")]),
    "retry only on its own block": (
        b"retry: 5\ndata: a\n\ndata: b\n\n",
        [E(data="a", retry=5), E(data="b")],
    ),
    # --- end of stream ---
    "unterminated event discarded": (b"data: a\n\ndata: b\n", [E(data="a")]),
    "unterminated line discarded": (b"data: a\n\ndata: b", [E(data="a")]),
    "empty stream": (b"", []),
}


@pytest.mark.parametrize(("stream", "expected"), CASES.values(), ids=CASES.keys())
def test_decode_table(stream: bytes, expected: list[ServerSentEvent]) -> None:
    assert decode(stream) == expected
    # Byte-at-a-time feeding exercises every split point, including CR|LF and UTF-8.
    assert decode_chunks([stream[i : i + 1] for i in range(len(stream))])[0] == expected


@pytest.mark.parametrize(
    ("stream", "retry"),
    [
        (b"retry: 3000\n", 3000),
        (b"retry: 12a\n", None),
        (b"retry: -1\n", None),
        (b"retry: \n", None),
        (b"retry\n", None),
        (b"retry: 1 \n", None),
        (b"retry: 007\n", 7),
        (b"retry: 10\nretry: x\n", 10),
        (b"retry: 10\n\nretry: 20\n", 20),
    ],
)
def test_retry_updates_decoder_immediately(stream: bytes, retry: int | None) -> None:
    decoder = SSEDecoder()
    assert decoder.feed(stream) == []
    assert decoder.retry == retry


def test_last_event_id_updates_on_blank_line() -> None:
    decoder = SSEDecoder()
    assert decoder.last_event_id == ""
    decoder.feed(b"id: 7\n")
    # Only a completed block counts as received, so a reconnect would not claim 7 yet.
    assert decoder.last_event_id == ""
    assert decoder.feed(b"\n") == []
    assert decoder.last_event_id == "7"
    decoder.feed(b"data: x\n\nid: \x00\n\n")
    assert decoder.last_event_id == "7"
    decoder.feed(b"id\n\n")
    assert decoder.last_event_id == ""


def test_crlf_split_across_chunks() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\r") == []
    # The LF completes the CRLF of the previous line, it is not a blank line.
    assert decoder.feed(b"\ndata: b\r") == []
    assert decoder.feed(b"\n\r") == [E(data="a\nb")]
    assert decoder.feed(b"\n") == []


def test_bom_split_across_chunks() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"\xef") == []
    assert decoder.feed(b"\xbb") == []
    assert decoder.feed(b"\xbfdata: x\n\n") == [E(data="x")]


def test_bom_after_empty_chunk_still_stripped() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"") == []
    assert decoder.feed(b"\xef\xbb\xbfdata: x\n\n") == [E(data="x")]


def test_long_line_fed_bytewise() -> None:
    decoder = SSEDecoder()
    payload = "é" * 20_000
    events = [e for b in f"data: {payload}\n\n".encode() for e in decoder.feed(bytes([b]))]
    assert events == [E(data=payload)]


def test_event_is_frozen() -> None:
    event = E(data="x")
    with pytest.raises(AttributeError):
        event.data = "y"  # type: ignore[misc]


# --- encoder -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"data": "x"}, b"data: x\n\n"),
        ({"data": ""}, b"data: \n\n"),
        ({"data": "a\nb"}, b"data: a\ndata: b\n\n"),
        ({"data": "a\r\nb\rc"}, b"data: a\ndata: b\ndata: c\n\n"),
        ({"data": " x"}, b"data:  x\n\n"),
        ({"data": "a\n"}, b"data: a\ndata: \n\n"),
        ({"comment": "heartbeat"}, b": heartbeat\n\n"),
        ({"comment": "a\nb"}, b": a\n: b\n\n"),
        (
            {"data": "x", "event": "tick", "id": "42", "retry": 1000},
            b"event: tick\nid: 42\nretry: 1000\ndata: x\n\n",
        ),
        ({"id": ""}, b"id: \n\n"),
        ({"retry": 0}, b"retry: 0\n\n"),
        ({}, b"\n"),
        ({"data": "🌍"}, "data: 🌍\n\n".encode()),
    ],
)
def test_encode_table(kwargs: dict[str, object], expected: bytes) -> None:
    assert encode_sse(**kwargs) == expected  # type: ignore[arg-type]


def test_encode_empty_data_dispatches_empty_event() -> None:
    assert decode(encode_sse(data="")) == [E(data="")]


def test_encode_heartbeat_dispatches_nothing() -> None:
    assert decode(encode_sse(comment="heartbeat")) == []


def test_encode_id_without_data_sets_last_event_id() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(encode_sse(id="5", retry=250)) == []
    assert (decoder.last_event_id, decoder.retry) == ("5", 250)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"event": "a\nb"},
        {"event": "a\rb"},
        {"event": "\r\n"},
        {"id": "1\n"},
        {"id": "\r1"},
        {"id": "1\x002"},
        {"retry": -1},
        {"retry": 1.5},
        {"retry": "100"},
        {"retry": True},
    ],
)
def test_encode_rejects_invalid_fields(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        encode_sse(data="x", **kwargs)  # type: ignore[arg-type]


# --- properties ----------------------------------------------------------------------------

_values = st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=12)
_field_names = st.sampled_from(["data", "event", "id", "retry", "", "foo", "dat", "datax"])
_endings = st.sampled_from(["\n", "\r", "\r\n"])


@st.composite
def _lines(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(["field", "field", "field", "comment", "blank", "bare"]))
    if kind == "blank":
        return ""
    if kind == "comment":
        return ":" + draw(_values)
    if kind == "bare":
        return draw(_field_names)
    name = draw(_field_names)
    value = draw(st.one_of(_values, st.from_regex(r"\A[0-9]{1,5}\Z"), st.just("\x00")))
    return name + draw(st.sampled_from([":", ": ", ":  "])) + value


@st.composite
def _streams(draw: st.DrawFn) -> bytes:
    parts = ["\ufeff"] if draw(st.booleans()) else []
    for line in draw(st.lists(_lines(), max_size=25)):
        # Strip line breaks from values so the line structure is the one we chose.
        parts.append(line.replace("\r", "").replace("\n", "") + draw(_endings))
    stream = "".join(parts).encode("utf-8")
    # Splice in arbitrary bytes to exercise invalid UTF-8 across chunk boundaries.
    if draw(st.booleans()):
        junk = draw(st.binary(min_size=1, max_size=4))
        at = draw(st.integers(0, len(stream)))
        stream = stream[:at] + junk + stream[at:]
    return stream


def _split(stream: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({min(c, len(stream)) for c in cuts})
    bounds = [0, *points, len(stream)]
    return [stream[a:b] for a, b in pairwise(bounds)]


@settings(deadline=None)
@given(stream=_streams(), cuts=st.lists(st.integers(0, 2_000), max_size=30))
def test_chunk_split_invariance(stream: bytes, cuts: list[int]) -> None:
    whole = decode_chunks([stream])
    assert decode_chunks(_split(stream, cuts)) == whole
    assert decode_chunks([stream[i : i + 1] for i in range(len(stream))]) == whole


@settings(deadline=None)
@given(stream=_streams())
def test_every_single_split_point(stream: bytes) -> None:
    whole = decode_chunks([stream])
    for i in range(len(stream) + 1):
        assert decode_chunks([stream[:i], stream[i:]]) == whole


_no_newline = st.text(
    alphabet=st.characters(exclude_categories=["Cs"], exclude_characters="\r\n"), max_size=20
)
_any_text = st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=40)


@settings(deadline=None)
@given(
    data=_any_text.map(lambda s: s.replace("\r", "")),
    event=st.none() | _no_newline,
    id=st.none() | _no_newline.map(lambda s: s.replace("\x00", "")),
    retry=st.none() | st.integers(min_value=0, max_value=2**40),
    comment=st.none() | _any_text,
)
def test_encode_round_trip(
    data: str, event: str | None, id: str | None, retry: int | None, comment: str | None
) -> None:
    encoded = encode_sse(data=data, event=event, id=id, retry=retry, comment=comment)
    assert decode(encoded) == [E(event=event or "message", data=data, id=id or "", retry=retry)]


@settings(deadline=None)
@given(data=_any_text)
def test_encode_normalises_cr_and_crlf_to_lf(data: str) -> None:
    expected = data.replace("\r\n", "\n").replace("\r", "\n")
    assert decode(encode_sse(data=data)) == [E(data=expected)]


@settings(deadline=None)
@given(blocks=st.lists(st.tuples(_any_text, _no_newline), min_size=1, max_size=5))
def test_encoded_stream_decodes_in_order(blocks: list[tuple[str, str]]) -> None:
    stream = b"".join(encode_sse(data=d, event=e) for d, e in blocks)
    decoded = decode(stream)
    assert [(e.data, e.event) for e in decoded] == [
        (d.replace("\r\n", "\n").replace("\r", "\n"), e or "message") for d, e in blocks
    ]
