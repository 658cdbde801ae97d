"""TokenBucket with a hand-stepped clock: Pusher's 10 client events per second per connection."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dashboard.core.ratelimit import TokenBucket


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_ten_per_second_then_rejected():
    clock = FakeClock()
    bucket = TokenBucket(rate=10, burst=10, clock=clock)
    assert [bucket.allow() for _ in range(11)] == [True] * 10 + [False]
    clock.now += 0.05
    assert not bucket.allow()  # half a token
    clock.now += 0.05
    assert bucket.allow() and not bucket.allow()
    clock.now += 5
    assert bucket.tokens() == 10  # refills up to the burst, no further
    assert sum(bucket.allow() for _ in range(20)) == 10


def test_rejections_do_not_consume_tokens():
    clock = FakeClock()
    bucket = TokenBucket(rate=1, burst=1, clock=clock)
    assert bucket.allow()
    for _ in range(100):
        assert not bucket.allow()
    clock.now += 1
    assert bucket.allow()


def test_explicit_now_and_a_clock_stepping_back():
    bucket = TokenBucket(rate=2, burst=2, clock=lambda: 0.0)
    assert bucket.allow(now=0.0) and bucket.allow(now=0.0) and not bucket.allow(now=0.0)
    assert not bucket.allow(now=-100.0)  # time going backwards earns nothing and costs nothing
    assert bucket.allow(now=0.5) and not bucket.allow(now=0.5)


@pytest.mark.parametrize(("rate", "burst"), [(0, 1), (-1, 1), (float("nan"), 1), (1, 0)])
def test_invalid_parameters(rate, burst):
    with pytest.raises(ValueError):
        TokenBucket(rate=rate, burst=burst)


@given(
    rate=st.integers(1, 50),
    burst=st.integers(1, 20),
    steps=st.lists(st.floats(0, 2, allow_nan=False), max_size=60),
)
def test_never_more_than_burst_plus_rate_times_elapsed(rate, burst, steps):
    clock = FakeClock()
    start = clock.now
    bucket = TokenBucket(rate=rate, burst=burst, clock=clock)
    allowed = 0
    for step in steps:
        clock.now += step
        allowed += bucket.allow()
        assert allowed <= burst + rate * (clock.now - start) + 1e-6
        assert 0 <= bucket.tokens() <= burst
