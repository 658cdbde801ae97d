"""The hub's read-only occupancy view, which the Pusher HTTP API reports."""


async def test_occupied_channels_and_subscription_counts_follow_subscriptions(make_hub):
    hub = make_hub()
    assert hub.occupied_channels() == [] and hub.subscription_count("a") == 0
    first = await hub.subscribe(["a", "b"])
    second = await hub.subscribe(["a"])
    assert sorted(hub.occupied_channels()) == ["a", "b"]
    assert (hub.subscription_count("a"), hub.subscription_count("b")) == (2, 1)
    await hub.add_channel(second, "c")
    hub.remove_channel(first, "b")
    assert sorted(hub.occupied_channels()) == ["a", "c"]
    await hub.publish("d", "e", 1)  # publishing alone does not occupy a channel
    assert "d" not in hub.occupied_channels()
    second.close()
    assert hub.occupied_channels() == ["a"] and hub.subscription_count("a") == 1
    first.close()
    assert hub.occupied_channels() == [] and hub.subscription_count("a") == 0
