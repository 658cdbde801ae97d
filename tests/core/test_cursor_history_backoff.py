import itertools
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dashboard.core.backoff import backoff_delays
from dashboard.core.cursor import (
    Position,
    StreamCursor,
    decode_cursor,
    encode_cursor,
    max_cursor_length,
)
from dashboard.core.errors import InvalidCursor
from dashboard.core.events import Event
from dashboard.core.history import ChannelHistory, HistoryLimits

channel_names = st.text(alphabet="abcXYZ019_-=@,.;", min_size=1, max_size=20)


epochs = st.text(alphabet="abcXYZ019_-", min_size=1, max_size=24)
stream_channels = st.lists(channel_names, min_size=1, max_size=6, unique=True)


@given(data=st.data(), channels=stream_channels)
def test_cursor_round_trip(data, channels):
    positions = {
        name: Position(data.draw(epochs), data.draw(st.integers(0, 2**63 - 1))) for name in channels
    }
    cursor = decode_cursor(encode_cursor(channels, positions), channels)
    assert cursor == StreamCursor(positions)


@given(
    channels=st.lists(
        st.text(alphabet="abcXYZ019_-=@,.;", min_size=1, max_size=164),
        min_size=1,
        max_size=100,
        unique=True,
    ),
    offsets=st.lists(st.integers(0, 2**63 - 1), min_size=100, max_size=100),
    epoch=epochs,
)
def test_any_stream_within_the_caps_gets_an_id_it_can_send_back(channels, offsets, epoch):
    # 100 channels of 164 characters once made a 16,708-character id the server refused.
    positions = {name: Position(epoch, offsets[i]) for i, name in enumerate(channels)}
    text = encode_cursor(channels, positions)
    assert len(text) <= max_cursor_length(len(channels))
    assert len(text) <= 64 + 21 * len(channels)  # one epoch: the offsets are all it grows by
    assert decode_cursor(text, channels).positions == positions


def test_another_channel_list_resumes_nothing_instead_of_failing():
    text = encode_cursor(["a", "b"], {"a": Position("ep", 1), "b": Position("ep", 2)})
    assert decode_cursor(text, ["b", "a"]) == StreamCursor(mismatch=True)
    assert decode_cursor(text, ["a"]) == StreamCursor(mismatch=True)


def test_the_first_format_is_still_read():
    cursor = decode_cursor("ep|a:1|b:2", ["a", "b", "c"])
    assert cursor.positions == {"a": Position("ep", 1), "b": Position("ep", 2)}


@pytest.mark.parametrize(
    "text",
    [
        "",
        "epoch",
        "ep|a",
        "ep|a:",
        "ep|a:x",
        "ep|a:-1",
        "ep|:1",
        "e p|a:1",
        "ep|a b:1",
        "ep|a:١",
        "x" * 20000,
        "2~",
        "2~0123abcd~ep~",
        "2~0123abcd~ep~x",
        "2~0123abcd~e p~1",
        "2~0123abcd~ep~-1",
        "2~0123abcd~ep~e p.1",
        "2~0123abcd~ep~١",
        "2~0123abcd~ep~" + "9" * 20,
        "2~0123ABCD~ep~1",
        "2~zz~ep~1",
        "3~0123abcd~ep~1",
        "2~0123abcd~ep~1~1",
    ],
)
def test_bad_cursors(text):
    with pytest.raises(InvalidCursor):
        decode_cursor(text, ["a"])


def make_event(offset, at=0.0, channel="c"):
    return Event(channel, "e", "null", offset, "ep", at)


def test_history_replays_after_offset():
    history = ChannelHistory(HistoryLimits(max_events=3, max_age=100))
    for offset in range(1, 6):
        history.append(make_event(offset))
    assert history.tip == 5 and len(history) == 3
    assert [e.offset for e in history.after(2, now=0)] == [3, 4, 5]
    assert [e.offset for e in history.after(4, now=0)] == [5]
    assert history.after(5, now=0) == []
    assert history.after(1, now=0) is None  # offset 2 was evicted: a gap
    assert history.after(6, now=0) is None  # beyond the tip: never issued
    assert history.after(-1, now=0) is None


def test_history_expires_by_age():
    history = ChannelHistory(HistoryLimits(max_events=10, max_age=10))
    for offset, at in enumerate([0, 5, 8], start=1):
        history.append(make_event(offset, at))
    assert [e.offset for e in history.after(1, now=14)] == [2, 3]
    assert history.after(0, now=14) is None  # event 1 expired
    assert history.after(3, now=100) == []  # all expired, but nothing missed
    assert history.after(2, now=100) is None


def test_history_rejects_out_of_order_offsets():
    history = ChannelHistory()
    with pytest.raises(ValueError):
        history.append(make_event(2))


def test_backoff_grows_to_cap_with_jitter():
    delays = list(itertools.islice(backoff_delays(1, 8, rng=random.Random(1)), 8))
    envelopes = [1, 2, 4, 8, 8, 8, 8, 8]
    for delay, envelope in zip(delays, envelopes, strict=True):
        assert envelope * 0.5 <= delay <= envelope
    assert len(set(delays)) == len(delays)  # jittered


def test_backoff_without_jitter_is_deterministic():
    assert list(itertools.islice(backoff_delays(0.5, 3, jitter=0), 5)) == [0.5, 1, 2, 3, 3]
    assert list(itertools.islice(backoff_delays(0, 3, jitter=0), 3)) == [0, 1, 2]


def test_backoff_rejects_nonsense():
    with pytest.raises(ValueError):
        next(backoff_delays(initial=-1))
