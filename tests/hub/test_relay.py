"""Transient events (Pusher client events): relayed to the subscribers of the moment, never
stored, never replayed, and no resume position, on every backend."""

from __future__ import annotations

import json

from tests.cursors import cursor_for, offsets_of


async def test_relayed_events_reach_subscribers_but_not_history(make_hub):
    hub = make_hub()
    await hub.publish("presence-room-a", "stored", 1)
    async with await hub.subscribe(["presence-room-a"]) as sub:
        cursor = sub.cursor_id()
        relayed = await hub.relay_json("presence-room-a", "client-typing", json.dumps({"t": 1}))
        assert relayed.transient and relayed.offset == 0
        (got,) = sub.next_nowait()
        assert (got.name, got.data, got.transient) == ("client-typing", {"t": 1}, True)
        assert sub.cursor_id() == cursor  # nothing to resume from
        await hub.publish("presence-room-a", "stored", 2)
        (after,) = sub.next_nowait()
        assert after.offset == 2  # stored offsets carry on as if nothing was relayed
    assert (await hub.backend.position("presence-room-a")).offset == 2
    late = await hub.subscribe(["presence-room-a"], last_event_id=cursor)
    assert [e.name for e in late.next_nowait()] == ["stored"]  # replay has no client events
    late.close()
    assert hub.stats().relayed == 1 and hub.stats().published == 2


async def test_relaying_many_events_keeps_nothing(make_hub):
    hub = make_hub(max_events=1000)
    payload = json.dumps("x" * 9000)
    for n in range(2000):
        await hub.relay_json(f"presence-room-{n % 20}", "client-burst", payload)
    assert await hub.backend.channels() == []  # no history was created for any of them


async def test_a_relay_while_a_subscriber_is_replaying_is_delivered_once(make_hub):
    hub = make_hub()
    for n in range(3):
        await hub.publish("c", "stored", n)
    sub = await hub.subscribe(["c"], last_event_id=cursor_for(["c"], hub.epoch, {"c": 0}))
    await hub.relay_json("c", "client-x", "1")
    names = [event.name for event in sub.next_nowait()]
    assert names == ["stored", "stored", "stored", "client-x"]
    assert offsets_of(sub.cursor_id(), ["c"]) == {"c": 3}
    sub.close()
