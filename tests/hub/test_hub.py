import asyncio

import pytest

from dashboard.core.errors import InvalidChannel, InvalidCursor, PayloadTooLarge
from dashboard.hub import HubStream, Reset
from dashboard.hub.subscription import OVERFLOW, SHUTDOWN
from tests.cursors import cursor_for, offsets_of


async def test_publish_assigns_increasing_offsets_per_channel(make_hub):
    hub = make_hub()
    events = [await hub.publish(ch, "e", i) for i, ch in enumerate("aabab")]
    assert [(e.channel, e.offset) for e in events] == [
        ("a", 1),
        ("a", 2),
        ("b", 1),
        ("a", 3),
        ("b", 2),
    ]
    assert {e.epoch for e in events} == {hub.epoch}


async def test_subscribers_get_live_events_in_order(make_hub):
    hub = make_hub()
    async with await hub.subscribe(["a", "b"]) as sub:
        await hub.publish("a", "x", 1)
        await hub.publish("c", "x", 2)  # not subscribed
        await hub.publish("b", "y", 3)
        batch = sub.next_nowait()
    assert [(e.channel, e.data) for e in batch] == [("a", 1), ("b", 3)]


async def test_fresh_subscription_starts_at_the_tip(make_hub):
    hub = make_hub()
    await hub.publish("a", "x", 1)
    sub = await hub.subscribe(["a"])
    assert sub.next_nowait() == []
    assert offsets_of(sub.cursor_id(), ["a"]) == {"a": 1}


async def test_resume_replays_exactly_the_missed_events(make_hub):
    hub = make_hub()
    sub = await hub.subscribe(["a", "b"])
    await hub.publish("a", "x", 1)
    sub.next_nowait()
    cursor = sub.cursor_id()
    sub.close()
    for i in range(2, 5):
        await hub.publish("a", "x", i)
    await hub.publish("b", "x", "b1")
    resumed = await hub.subscribe(["a", "b"], last_event_id=cursor)
    await hub.publish("a", "x", 5)
    assert [e.data for e in resumed.next_nowait()] == [2, 3, 4, "b1", 5]
    assert resumed.resets == ()


async def test_resume_outside_window_is_an_explicit_reset(make_hub):
    hub = make_hub(max_events=2)
    for i in range(5):
        await hub.publish("a", "x", i)
    sub = await hub.subscribe(["a"], last_event_id=cursor_for(["a"], hub.epoch, {"a": 1}))
    assert sub.resets == (Reset("a", "expired", 5, missed=4),)  # offsets 2-5 are lost
    assert sub.next_nowait() == []
    await hub.publish("a", "x", "live")
    assert [e.data for e in sub.next_nowait()] == ["live"]


async def test_resume_from_another_epoch_is_a_reset(make_hub):
    hub = make_hub()
    await hub.publish("a", "x", 1)
    sub = await hub.subscribe(["a", "b"], last_event_id="otherEpoch|a:1")
    assert sub.resets == (Reset("a", "epoch", 0, missed=None),)  # the old history is gone
    assert [e.data for e in sub.next_nowait()] == [1]  # this one is whole: replayed


async def test_resume_from_a_future_offset_is_a_reset(make_hub):
    hub = make_hub()
    sub = await hub.subscribe(["a"], last_event_id=cursor_for(["a"], hub.epoch, {"a": 99}))
    assert sub.resets == (Reset("a", "expired", 0, missed=None),)  # nobody knows how many


async def test_channel_added_on_resume_starts_live_without_reset(make_hub):
    hub = make_hub()
    await hub.publish("b", "x", 1)
    # An id of the first format names its channels: one it does not name starts live.
    sub = await hub.subscribe(["a", "b"], last_event_id=f"{hub.epoch}|a:0")
    assert sub.resets == () and sub.next_nowait() == []


async def test_bad_input_raises_typed_errors(make_hub):
    hub = make_hub()
    with pytest.raises(InvalidChannel):
        await hub.subscribe(["bad channel"])
    with pytest.raises(InvalidCursor):
        await hub.subscribe(["a"], last_event_id="garbage")
    with pytest.raises(PayloadTooLarge):
        await hub.publish("a", "x", "y" * 20_000)


async def test_slow_consumer_is_dropped_and_memory_stays_bounded(make_hub):
    hub = make_hub(queue_size=10)
    slow = await hub.subscribe(["a"])
    fast = await hub.subscribe(["a"])
    for i in range(10):
        await hub.publish("a", "x", i)
    assert slow.qsize() == 10 and slow.closed_reason is None
    fast.next_nowait()
    await hub.publish("a", "x", 10)
    assert slow.closed_reason == OVERFLOW
    assert slow.qsize() == 0  # its queue is freed at once
    assert hub.stats().subscribers == 1  # and it no longer receives fan-out
    for i in range(11, 1000):
        await hub.publish("a", "x", i)
        fast.next_nowait()
    assert fast.closed_reason is None and fast.qsize() == 0
    # Nothing lost: the dropped consumer resumes from its cursor through history.
    resumed = await hub.subscribe(["a"], last_event_id=slow.cursor_id())
    assert [e.data for e in resumed.next_nowait(limit=10_000)] == list(range(1000))


async def test_iteration_ends_when_closed_and_waiters_wake(make_hub):
    hub = make_hub()
    sub = await hub.subscribe(["a"])
    reader = asyncio.create_task(sub.next_batch())
    await asyncio.sleep(0)
    await hub.stop()
    assert await asyncio.wait_for(reader, 1) == []
    assert sub.closed_reason == SHUTDOWN
    assert [e async for e in sub] == []


async def test_hub_stream_survives_overflow_without_loss(make_hub):
    hub = make_hub(queue_size=5)
    stream = HubStream(hub, ["a"], queue_size=5)
    statuses = []
    stream.watch_status(lambda status: statuses.append(status.state.value))
    received = []
    # The consumer stalls on its first event until every publish is done, so the queue
    # overflows whether or not a publish yields to it (a Redis publish does).
    published = asyncio.Event()

    async def consume():
        async for event in stream:
            await published.wait()
            received.append(event.data)
            if len(received) == 50:
                await stream.aclose()

    consumer = asyncio.create_task(consume())
    await asyncio.sleep(0.05)
    for i in range(50):
        await hub.publish("a", "x", i)
    published.set()
    await asyncio.wait_for(consumer, 5)
    assert received == list(range(50))
    assert "reconnecting" in statuses and statuses[-1] == "closed"


async def test_publish_frames_are_cached_once_per_event(make_hub):
    from dashboard.core.event_stream import event_frame

    hub = make_hub()
    subs = [await hub.subscribe(["a"]) for _ in range(3)]
    await hub.publish("a", "x", {"v": 1})
    events = [sub.next_nowait()[0] for sub in subs]
    assert events[0] is events[1] is events[2]  # one object fanned out, not copies
    assert event_frame(events[0]) is event_frame(events[2])


async def test_multi_channel_replay_keeps_publication_order(make_hub):
    hub = make_hub()
    sub = await hub.subscribe(["a", "b"])
    cursor = sub.cursor_id()
    sub.close()
    for i in range(6):
        await hub.publish("ab"[i % 2], "x", i)
    resumed = await hub.subscribe(["a", "b"], last_event_id=cursor)
    assert [e.data for e in resumed.next_nowait()] == list(range(6))


async def test_direct_consumer_takes_events_only_while_nothing_is_queued(make_hub):
    hub = make_hub(queue_size=3)
    sub = await hub.subscribe(["a"])
    taken, busy = [], False

    def consume(event):
        if busy:
            return False
        taken.append(event.data)
        return True

    sub.set_direct_consumer(consume)
    await hub.publish("a", "x", 1)
    assert taken == [1] and sub.qsize() == 0
    assert offsets_of(sub.cursor_id(), ["a"]) == {"a": 1}  # handed out = consumed
    busy = True
    await hub.publish("a", "x", 2)
    busy = False
    await hub.publish("a", "x", 3)  # must queue behind 2 to keep order
    assert taken == [1] and [e.data for e in sub.next_nowait()] == [2, 3]
    busy = True
    for i in range(4, 8):  # a consumer that stays busy still hits the queue bound
        await hub.publish("a", "x", i)
    assert sub.closed_reason == OVERFLOW


async def test_a_backlog_is_reported_only_when_nobody_waits(make_hub):
    hub = make_hub()
    sub = await hub.subscribe(["a"])
    busy = [True]
    backlogs: list[int] = []
    sub.set_direct_consumer(lambda event: not busy[0])
    sub.set_backlog_callback(lambda: backlogs.append(sub.qsize()))
    await hub.publish("a", "x", 1)  # declined by the busy consumer: queued, reported
    await hub.publish("a", "x", 2)
    assert backlogs == [1, 2] and [e.data for e in sub.next_nowait()] == [1, 2]
    busy[0] = False
    await hub.publish("a", "x", 3)  # taken directly: no backlog
    assert backlogs == [1, 2] and sub.qsize() == 0
    busy[0] = True
    waiting = asyncio.ensure_future(sub.next_batch())
    await asyncio.sleep(0)
    await hub.publish("a", "x", 4)  # a task waits: it is woken instead
    assert [e.data for e in await waiting] == [4] and backlogs == [1, 2]
    sub.close()
    await hub.publish("a", "x", 5)
    assert backlogs == [1, 2]


async def test_wait_open_then_publish_is_never_missed(make_hub):
    # The README's example: iterate in a task, wait for the stream to open, publish.
    for _ in range(20):
        hub = make_hub()
        stream = HubStream(hub, ["metrics"])
        first: asyncio.Future = asyncio.get_running_loop().create_future()

        async def consume(stream=stream, first=first):
            async for event in stream:
                first.set_result(event.data)
                return

        task = asyncio.create_task(consume())
        await asyncio.wait_for(stream.wait_open(), 5)
        await stream.wait_open()  # open already: at once
        await hub.publish("metrics", "cpu", {"value": 41.5})
        assert await asyncio.wait_for(first, 5) == {"value": 41.5}
        await stream.aclose()
        await task


async def test_wait_open_on_a_stream_closed_before_it_opened_raises(make_hub):
    stream = HubStream(make_hub(), ["metrics"])
    waiting = asyncio.ensure_future(stream.wait_open())
    await asyncio.sleep(0)
    await stream.aclose()
    async for _ in stream:  # closed: ends at once, and says so
        pass
    with pytest.raises(ConnectionError, match="closed before it opened"):
        await asyncio.wait_for(waiting, 5)


async def test_an_uncounted_subscription_gets_events_but_is_no_occupant(make_hub):
    hub = make_hub()
    listener = await hub.subscribe(["alerts"], counted=False)
    assert hub.occupied_channels() == [] and hub.subscription_count("alerts") == 0
    client = await hub.subscribe(["alerts"])
    assert hub.occupied_channels() == ["alerts"] and hub.subscription_count("alerts") == 1
    await hub.publish("alerts", "alert", 1)
    assert [event.data for event in await listener.next_batch()] == [1]
    client.close()
    assert hub.occupied_channels() == [] and hub.subscription_count("alerts") == 0
    listener.close()
