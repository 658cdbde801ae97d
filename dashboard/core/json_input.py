"""Untrusted JSON in, plain Python values out: the one parser every request body goes through.

Python's :mod:`json` accepts documents that fail later, far from the request that sent them:

* nesting deep enough to exhaust the interpreter's stack (``RecursionError``);
* integer literals of any length: ``int()`` refuses more than 4,300 digits with a
  ``ValueError``, and long ones cost quadratic time to convert;
* ``NaN``, ``Infinity`` and overflowing floats (``1e999``), which no other JSON parser reads;
* lone surrogates (``"\\udfff"``): valid escapes in a JSON string, yet no UTF-8 writer can
  encode them, so a later ``encode()`` fails when the value is stored, logged or relayed.

:func:`parse_json` refuses each of them, and bytes that are not UTF-8 or not JSON, with
:class:`InvalidJSON`, a :class:`~dashboard.core.errors.ValidationError` that the server turns
into a 400. Size is checked before any decoding work. RFC 8259 section 9 allows exactly these
limits ("An implementation may set limits on the size of texts that it accepts ... on the
maximum depth of nesting ... on the range and precision of numbers").
"""

from __future__ import annotations

import json
import math
import re
from typing import Any, Final

from .errors import PayloadTooLarge, ValidationError

#: Deepest nesting of arrays and objects accepted; real payloads stay far below it.
MAX_DEPTH: Final = 32
#: Longest number literal accepted, in characters (a 64-bit integer has at most 20).
MAX_NUMBER_LENGTH: Final = 100

# Strings (with their escapes) are skipped whole, so brackets inside them do not count.
_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.DOTALL)


class InvalidJSON(ValidationError):
    """Text that is not JSON, or JSON beyond the limits of :func:`parse_json` (HTTP 400)."""

    code = "invalid_json"


def parse_json(data: bytes | str, *, max_bytes: int, max_depth: int = MAX_DEPTH) -> Any:
    """Decode one JSON document from an untrusted source.

    Args:
        data: the document, UTF-8 bytes or text.
        max_bytes: the largest accepted size, in bytes of UTF-8.
        max_depth: the deepest accepted nesting of arrays and objects.

    Returns:
        The value: dicts, lists, str, int, float, bool or None. Every string in it (keys
        included) encodes to UTF-8, and every float is finite.

    Raises:
        PayloadTooLarge: ``data`` is over ``max_bytes`` (HTTP 413).
        InvalidJSON: not UTF-8, not JSON, nested deeper than ``max_depth``, a number literal
            over 100 characters, a non-finite number, or a lone surrogate.
    """
    size = len(data) if isinstance(data, bytes) else len(data.encode("utf-8", "surrogatepass"))
    if size > max_bytes:
        raise PayloadTooLarge(f"body is {size} bytes; the limit is {max_bytes}")
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidJSON(f"body is not UTF-8 text: {exc.reason} at byte {exc.start}") from None
    else:
        text = data
    _check_depth(text, max_depth)
    try:
        value = json.loads(
            text,
            parse_int=_parse_int,
            parse_float=_parse_float,
            parse_constant=_reject_constant,
        )
    except (ValueError, RecursionError) as exc:
        # JSONDecodeError is a ValueError, and so are the refusals of the hooks below.
        raise InvalidJSON(f"body is not valid JSON: {exc}") from None
    _check_strings(value)
    return value


def _check_depth(text: str, max_depth: int) -> None:
    depth = 0
    for token in _TOKENS.finditer(text):
        bracket = token.group()
        if bracket in "[{":
            depth += 1
            if depth > max_depth:
                raise InvalidJSON(f"JSON is nested more than {max_depth} levels deep")
        elif bracket in "]}":
            depth -= 1


def _parse_int(literal: str) -> int:
    if len(literal) > MAX_NUMBER_LENGTH:
        raise ValueError(f"a number has {len(literal)} digits; the limit is {MAX_NUMBER_LENGTH}")
    return int(literal)


def _parse_float(literal: str) -> float:
    if len(literal) > MAX_NUMBER_LENGTH:
        raise ValueError(
            f"a number has {len(literal)} characters; the limit is {MAX_NUMBER_LENGTH}"
        )
    value = float(literal)
    if not math.isfinite(value):
        raise ValueError(f"{literal} is out of range for a number")
    return value


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _check_strings(value: Any) -> None:
    """Refuse lone surrogates anywhere in ``value`` (its depth is already bounded)."""
    if isinstance(value, str):
        _encodable(value)
    elif isinstance(value, dict):
        for key, item in value.items():
            _encodable(key)
            _check_strings(item)
    elif isinstance(value, list):
        for item in value:
            _check_strings(item)


def _encodable(text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidJSON(
            f"a string holds a lone surrogate (\\u{ord(text[exc.start]):04x}), which is not text"
        ) from None
