"""The one JSON parser for untrusted bodies: every malformed input is a ValidationError."""

from __future__ import annotations

import contextlib
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dashboard.core.errors import PayloadTooLarge, ValidationError
from dashboard.core.json_input import MAX_DEPTH, InvalidJSON, parse_json

LIMIT = 64 * 1024


@pytest.mark.parametrize(
    "document, why",
    [
        (b"[" * 100_000, "nesting that would exhaust the stack"),
        (b'{"a":' * 40 + b"1" + b"}" * 40, "objects nested past the limit"),
        (b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1), "one level too deep"),
        (b"1" * 5000, "a 5000-digit integer"),
        (b'{"n": ' + b"9" * 101 + b"}", "a 101-digit integer"),
        (b"1e999", "a float that overflows to infinity"),
        (b"-1e999", "negative infinity"),
        (b"NaN", "NaN"),
        (b'{"x": Infinity}', "Infinity"),
        (b'{"name": "\\udfff"}', "a lone low surrogate"),
        (b'{"\\ud800": 1}', "a lone surrogate in a key"),
        (b'["ok", ["\\ud83d"]]', "a high surrogate without its pair, nested"),
        (b"\xff\xfe{}", "bytes that are not UTF-8"),
        (b"\xef\xbb\xbf{}", "a UTF-8 byte order mark"),
        (b"", "an empty body"),
        (b"{", "a truncated object"),
        (b'{"a": 1,}', "a trailing comma"),
        (b"'single'", "single quotes"),
        (b'"unterminated', "an unterminated string"),
    ],
)
def test_malformed_documents_are_invalid_json(document, why):
    with pytest.raises(InvalidJSON):
        parse_json(document, max_bytes=10**6)


def test_size_is_checked_before_anything_else():
    with pytest.raises(PayloadTooLarge):
        parse_json(b"[" * (LIMIT + 1), max_bytes=LIMIT)
    with pytest.raises(PayloadTooLarge):
        parse_json("é" * (LIMIT // 2 + 1), max_bytes=LIMIT)  # counted in UTF-8 bytes


@pytest.mark.parametrize(
    "document, value",
    [
        (b'{"name": "Ada \\ud83d\\ude00"}', {"name": "Ada 😀"}),  # a valid surrogate pair
        (b"[" * MAX_DEPTH + b"]" * MAX_DEPTH, json.loads("[" * MAX_DEPTH + "]" * MAX_DEPTH)),
        (b'{"a": "[[[[{{{{"}', {"a": "[[[[{{{{"}),  # brackets inside strings do not nest
        (b'"\\"[[["', '"[[['),
        (b"12345678901234567890", 12345678901234567890),
        (b"-0.5e-3", -0.0005),
        (b"null", None),
    ],
)
def test_plain_json_passes(document, value):
    assert parse_json(document, max_bytes=LIMIT) == value


def containers(children):
    return st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**30), 10**30)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    containers,
    max_leaves=30,
)


@given(json_values)
def test_any_json_value_round_trips(value):
    # st.text() has no lone surrogates: those are refused (see the table above).
    parsed = parse_json(json.dumps(value, ensure_ascii=False).encode("utf-8"), max_bytes=10**7)
    assert parsed == value


@given(st.binary(max_size=200))
def test_arbitrary_bytes_parse_or_fail_with_a_validation_error(data):
    with contextlib.suppress(ValidationError):  # anything else escapes and fails the test
        parse_json(data, max_bytes=LIMIT)
