"""The /api/chat wire format, the render pacer and the per-user limiter: pure, table-driven."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dashboard.core.ai_stream import (
    DONE_FRAME,
    ChatDelta,
    ChatDone,
    ChatFailure,
    RenderPacer,
    content_frame,
    error_frame,
    parse_chat_event,
)
from dashboard.core.sse import ServerSentEvent, SSEDecoder
from dashboard.core.user_limits import KeyedRateLimiter


@given(st.lists(st.text(), max_size=5), st.integers(min_value=1, max_value=7))
def test_frames_round_trip_through_the_decoder_split_anywhere(chunks, step):
    raw = b"".join(content_frame(c) for c in chunks) + DONE_FRAME
    decoder = SSEDecoder()
    events = []
    for i in range(0, len(raw), step):
        events.extend(decoder.feed(raw[i : i + step]))
    assert [parse_chat_event(e) for e in events] == [ChatDelta(c) for c in chunks] + [ChatDone()]


@pytest.mark.parametrize(
    "event, expected",
    [
        (ServerSentEvent(data="[DONE]"), ChatDone()),
        (ServerSentEvent(data='{"content": "a\\nb"}'), ChatDelta("a\nb")),
        (ServerSentEvent(data='{"other": 1}'), None),
        (ServerSentEvent(event="ping", data="x"), None),
        (ServerSentEvent(data="{"), ChatFailure("upstream", "the server sent a malformed chunk")),
        (
            ServerSentEvent(event="error", data="oops"),
            ChatFailure("upstream", "the server reported an error"),
        ),
        (
            ServerSentEvent(event="error", data='{"error": "auth", "message": "no"}'),
            ChatFailure("auth", "no"),
        ),
    ],
)
def test_parse_chat_event(event, expected):
    assert parse_chat_event(event) == expected


def test_error_frame_is_one_error_event():
    (event,) = SSEDecoder().feed(error_frame("timeout", "too slow"))
    assert event.event == "error" and parse_chat_event(event) == ChatFailure("timeout", "too slow")


def test_pacer_spaces_renders():
    pacer = RenderPacer(30)
    assert pacer.delay(100.0) == 0.0
    pacer.rendered(100.0)
    assert pacer.delay(100.01) == pytest.approx(1 / 30 - 0.01)
    assert pacer.delay(100.04) == 0.0
    with pytest.raises(ValueError):
        RenderPacer(0)


def test_keyed_limiter_is_per_key_and_bounded():
    limiter = KeyedRateLimiter(rate=1.0, burst=2, max_keys=3, clock=lambda: 0.0)
    assert limiter.acquire("ada", 0.0) == 0.0
    assert limiter.acquire("ada", 0.0) == 0.0
    assert limiter.acquire("ada", 0.0) == pytest.approx(1.0)
    assert limiter.acquire("bob", 0.0) == 0.0
    assert limiter.acquire("ada", 0.5) == pytest.approx(0.5)
    assert limiter.acquire("ada", 1.0) == 0.0
    for user in ("c", "d", "e", "f"):
        limiter.acquire(user, 2.0)
    assert len(limiter) <= 3
    with pytest.raises(ValueError):
        KeyedRateLimiter(rate=0, burst=1)
