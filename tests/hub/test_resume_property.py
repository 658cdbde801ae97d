"""Resume exactness under random interleavings of publish, consume, disconnect and resume."""

import asyncio

from hypothesis import given, settings
from hypothesis import strategies as st

from dashboard.core.history import HistoryLimits
from dashboard.hub import Hub, MemoryBackend

CHANNELS = ["a", "b", "c"]
#: Channels nobody follows: publishing to them makes a small backend drop other histories.
NOISE = [f"noise-{n}" for n in range(6)]
actions = st.lists(
    st.one_of(
        st.tuples(st.just("publish"), st.sampled_from(CHANNELS + NOISE), st.integers(1, 4)),
        st.tuples(st.just("consume"), st.integers(0, 5)),
        st.tuples(st.just("disconnect")),
        st.tuples(st.just("resume")),
    ),
    max_size=60,
)


async def scenario(steps, max_events, max_channels=10_000):
    hub = Hub(MemoryBackend(HistoryLimits(max_events=max_events), max_channels=max_channels))
    channels = ["a", "b"]
    published = {ch: [] for ch in CHANNELS + NOISE}
    seen = {ch: [] for ch in channels}
    resets = []
    sub = await hub.subscribe(channels)
    counter = 0

    def take(limit):
        for event in sub.next_nowait(limit):
            seen[event.channel].append(event.data)

    for step in steps:
        if step[0] == "publish":
            for _ in range(step[2]):
                counter += 1
                await hub.publish(step[1], "e", counter)
                published[step[1]].append(counter)
        elif step[0] == "consume" and sub.closed_reason is None:
            take(step[1])
        elif step[0] == "disconnect":
            sub.close()
        elif step[0] == "resume" and sub.closed_reason is not None:
            sub = await hub.subscribe(channels, last_event_id=sub.cursor_id())
            resets.extend(sub.resets)
    if sub.closed_reason is not None:
        sub = await hub.subscribe(channels, last_event_id=sub.cursor_id())
        resets.extend(sub.resets)
    take(10_000)
    return published, seen, resets


@settings(max_examples=200, deadline=None)
@given(actions)
def test_resume_is_exact_when_history_suffices(steps):
    published, seen, resets = asyncio.run(scenario(steps, max_events=10_000))
    assert resets == []
    for channel, values in seen.items():
        assert values == published[channel]


@settings(max_examples=200, deadline=None)
@given(actions)
def test_small_window_resets_explicitly_and_never_duplicates(steps):
    published, seen, resets = asyncio.run(scenario(steps, max_events=3))
    reset_channels = {r.channel for r in resets}
    for channel, values in seen.items():
        assert len(values) == len(set(values))  # no duplicates
        assert values == sorted(values)  # in order
        assert set(values) <= set(published[channel])
        if channel not in reset_channels:
            assert values == published[channel]  # no silent gap


@settings(max_examples=200, deadline=None)
@given(actions)
def test_dropped_histories_reset_explicitly_and_never_leave_a_silent_gap(steps):
    # Room for 3 histories while 9 channels are used: histories are dropped all the time.
    published, seen, resets = asyncio.run(scenario(steps, max_events=10_000, max_channels=3))
    reset_channels = {r.channel for r in resets}
    for channel, values in seen.items():
        assert len(values) == len(set(values))  # no duplicates
        assert values == sorted(values)  # in order
        assert set(values) <= set(published[channel])
        if channel not in reset_channels:
            assert values == published[channel]  # no silent gap
