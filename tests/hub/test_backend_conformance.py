"""The promise of every backend: a resume is exact, or it says ``reset``; never a silent gap.

Whatever loses a channel's history (eviction, age, a restart), a cursor from before the loss
gets an explicit reset for that channel, and live subscribers keep receiving.
"""

from __future__ import annotations

from dashboard.core.cursor import Reset
from tests.hub.conftest import Clock


async def test_eviction_of_a_channels_history_resets_its_resume(make_hub):
    # The scenario: 3 events on orders, the cursor kept, so many other channels that
    # orders' history is dropped (for Redis: its stream evicted), 5 more on orders: the resume must not hand back the last two
    # as if they were all that was missed. It says reset, then replays the new history whole.
    hub = make_hub(max_channels=50)
    for n in range(3):
        await hub.publish("orders", "order", n)
    reader = await hub.subscribe(["orders"])
    kept = reader.cursor_id()
    reader.close()
    await make_hub.evict(hub, "orders")
    for n in range(3, 8):
        await hub.publish("orders", "order", n)
    resumed = await hub.subscribe(["orders"], last_event_id=kept)
    assert resumed.resets == (Reset("orders", "epoch", 0),)  # from the new history's start
    assert [event.data for event in resumed.next_nowait()] == [3, 4, 5, 6, 7]
    await hub.publish("orders", "order", 8)
    assert [event.data for event in resumed.next_nowait()] == [8]


async def test_a_live_subscriber_keeps_receiving_across_an_eviction(make_hub):
    hub = make_hub(max_channels=10)
    live = await hub.subscribe(["orders"])
    await hub.publish("orders", "order", 1)
    await make_hub.evict(hub, "orders")
    await hub.publish("orders", "order", 2)  # a new history: its offsets start over
    assert [event.data for event in live.next_nowait()] == [1, 2]
    # And its cursor, now in the new history, resumes exactly.
    kept = live.cursor_id()
    live.close()
    await hub.publish("orders", "order", 3)
    resumed = await hub.subscribe(["orders"], last_event_id=kept)
    assert resumed.resets == () and [e.data for e in resumed.next_nowait()] == [3]


async def test_events_older_than_the_history_window_reset_the_resume(make_hub):
    clock = Clock()
    hub = make_hub(max_age=60, clock=clock)
    reader = await hub.subscribe(["orders"])
    await hub.publish("orders", "order", 1)
    reader.next_nowait()
    kept = reader.cursor_id()
    reader.close()
    await hub.publish("orders", "order", 2)
    clock.now += 120  # event 2 ages out of the window
    await hub.publish("orders", "order", 3)
    resumed = await hub.subscribe(["orders"], last_event_id=kept)
    assert resumed.resets == (Reset("orders", "expired", 3, missed=2),)
    assert resumed.next_nowait() == []


async def test_a_restart_resets_every_resumed_channel(make_hub):
    hub = make_hub()
    await hub.publish("orders", "order", 1)
    await hub.publish("alerts", "alert", 1)
    reader = await hub.subscribe(["orders", "alerts"])
    kept = reader.cursor_id()
    reader.close()
    restarted = make_hub.restart(hub)
    await restarted.publish("orders", "order", 2)
    resumed = await restarted.subscribe(["orders", "alerts"], last_event_id=kept)
    assert {reset.channel: reset.reason for reset in resumed.resets} == {
        "orders": "epoch",
        "alerts": "epoch",
    }
    # What the restarted server published since is news, and its history still has it all.
    assert [event.data for event in resumed.next_nowait()] == [2]


async def test_a_cursor_of_another_channel_list_resumes_nothing_and_says_so(make_hub):
    hub = make_hub()
    reader = await hub.subscribe(["a", "b"])
    kept = reader.cursor_id()
    reader.close()
    await hub.publish("a", "x", 1)
    resumed = await hub.subscribe(["b", "a"], last_event_id=kept)
    assert sorted((r.channel, r.reason) for r in resumed.resets) == [
        ("a", "stream"),
        ("b", "stream"),
    ]


async def test_after_a_reset_a_new_history_already_trimmed_continues_from_its_tip(make_hub):
    hub = make_hub(max_events=2)
    await hub.publish("orders", "order", 1)
    reader = await hub.subscribe(["orders"])
    kept = reader.cursor_id()
    reader.close()
    restarted = make_hub.restart(hub)
    for n in range(2, 6):  # 4 events into a history of 2: its start is gone already
        await restarted.publish("orders", "order", n)
    resumed = await restarted.subscribe(["orders"], last_event_id=kept)
    assert resumed.resets == (Reset("orders", "epoch", 4),)
    assert resumed.next_nowait() == []
