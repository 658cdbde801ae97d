"""Channels added to and removed from an open subscription, and pre-encoded publishes."""

import pytest

from dashboard.core.errors import InvalidChannel, InvalidEventName, PayloadTooLarge


async def test_added_channel_starts_live_and_removed_channel_stops(make_hub):
    hub = make_hub()
    await hub.publish("b", "old", 0)  # history before the add is not replayed
    sub = await hub.subscribe(["a"])
    await hub.add_channel(sub, "b")
    assert sub.channels == ("a", "b")
    await hub.publish("b", "new", 1)
    await hub.publish("a", "x", 2)
    assert [(e.channel, e.data) for e in sub.next_nowait()] == [("b", 1), ("a", 2)]
    await hub.publish("b", "queued", 3)
    hub.remove_channel(sub, "b")  # its queued event is dropped too
    await hub.publish("b", "after", 4)
    await hub.publish("a", "x", 5)
    assert [(e.channel, e.data) for e in sub.next_nowait()] == [("a", 5)]
    assert sub.channels == ("a",)
    assert hub.stats().channels == 1


async def test_add_is_idempotent_and_a_subscription_may_run_empty(make_hub):
    hub = make_hub()
    sub = await hub.subscribe(["a"])
    await hub.add_channel(sub, "a")
    hub.remove_channel(sub, "a")
    hub.remove_channel(sub, "a")
    assert sub.channels == ()
    await hub.add_channel(sub, "a")
    await hub.publish("a", "x", 1)
    assert [e.data for e in sub.next_nowait()] == [1]
    with pytest.raises(InvalidChannel):
        await hub.add_channel(sub, "bad name")
    sub.close()
    await hub.add_channel(sub, "c")  # closed: ignored
    assert hub.stats().subscribers == 0 and hub.stats().channels == 0


async def test_publish_json_keeps_the_text_and_carries_the_sender(make_hub):
    hub = make_hub(max_events=10)
    sub = await hub.subscribe(["private-a"])
    event = await hub.publish_json(
        "private-a", "client-x", '{"b": 1}', socket_id="1.2", user_id="u"
    )
    assert (event.data_json, event.socket_id, event.user_id) == ('{"b": 1}', "1.2", "u")
    plain = await hub.publish("private-a", "e", 1, socket_id="3.4")
    assert plain.socket_id == "3.4" and plain.user_id is None
    assert sub.next_nowait() == [event, plain]
    with pytest.raises(PayloadTooLarge):
        await hub.publish_json("private-a", "client-x", '"' + "x" * hub.max_payload_bytes + '"')
    with pytest.raises(InvalidEventName):
        await hub.publish_json("private-a", "pusher:x", "1")
