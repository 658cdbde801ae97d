"""NotificationService and DemoNotifier on a real SQLite file and a real Hub."""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3

import pytest

from dashboard.core.errors import PayloadTooLarge
from dashboard.core.events import Event
from dashboard.hub import Hub
from dashboard.notifications import NotificationService, notification_json, user_channel
from dashboard.notifications.demo import DemoNotifier, demo_notification
from dashboard.store import InvalidNotification, SQLiteStore


@pytest.fixture
def db_path(tmp_path):
    return tmp_path / "n.db"


@pytest.fixture
async def hub():
    async with Hub() as hub:
        yield hub


@pytest.fixture
async def service(db_path, hub):
    async with SQLiteStore(db_path, synchronous="NORMAL") as store:
        yield NotificationService(store, hub)


async def next_event(sub, timeout=3.0):
    return await asyncio.wait_for(anext(sub), timeout)


async def test_a_notification_is_committed_before_it_is_published(service, hub, db_path):
    reader = sqlite3.connect(db_path)
    seen = []

    def consume(event):
        row = reader.execute(
            "SELECT title FROM notifications WHERE id = ?", (event.data["id"],)
        ).fetchone()
        seen.append((event.channel, event.name, row))
        return True

    sub = await hub.subscribe([user_channel("ada"), "private-notifications"])
    sub.set_direct_consumer(consume)
    mine = await service.notify("ada", "for ada")
    await service.notify("*", "for all", type="success")
    await service.notify("bob", "not on ada's channels")
    sub.close()
    reader.close()
    assert seen == [
        ("private-user-ada", "notification", ("for ada",)),
        ("private-notifications", "notification", ("for all",)),
    ]
    assert mine.read is False


async def test_read_events_carry_the_unread_count_and_read_all_a_watermark(service):
    a = await service.notify("ada", "a")
    await service.notify("*", "b")
    c = await service.notify("ada", "c")
    sub = await service.subscribe("ada")
    assert (await service.mark_read("ada", a.id)).read is True
    event = await next_event(sub)
    assert (event.channel, event.name, event.data) == (
        "private-user-ada",
        "read",
        {"ids": [a.id], "all": False, "unread_count": 2},
    )
    result = await service.mark_all_read("ada")
    assert (result.marked, result.up_to) == (2, c.id)
    event = await next_event(sub)
    assert event.data == {"ids": [], "all": True, "up_to": c.id, "unread_count": 0}
    assert await service.unread_count("ada") == 0
    page = await service.inbox("ada")
    assert all(n.read for n in page.notifications)
    live = await service.notify("*", "later")
    assert (await next_event(sub)).data == notification_json(live)
    sub.close()


async def test_bad_or_oversize_input_writes_nothing(service):
    with pytest.raises(InvalidNotification):
        await service.notify("ada", "")
    with pytest.raises(PayloadTooLarge):
        await service.notify("ada", "t", "é" * 2000, link="/" + "x" * 2000, data="d" * 4090)
    assert (await service.inbox("ada")).notifications == []


async def test_a_failed_publish_is_logged_and_the_notification_still_stored(
    service, hub, caplog, monkeypatch
):
    async def broken(*args, **kwargs):
        raise RuntimeError("hub down")

    monkeypatch.setattr(hub, "publish", broken)
    with caplog.at_level(logging.ERROR, "dashboard.notifications"):
        stored = await service.notify("ada", "still stored")
    assert "was not published" in caplog.text
    assert (await service.inbox("ada")).notifications == [stored]


def alert(hub_event_severity, service="api"):
    return {"severity": hub_event_severity, "service": service, "message": "p95 high"}


async def test_demo_notifier_turns_severe_events_into_rate_limited_broadcasts(service, hub):
    notifier = DemoNotifier(hub, service, min_interval=0.3)
    await notifier.start()
    # The server's own listener is no subscriber to the Pusher HTTP API.
    assert hub.occupied_channels() == [] and hub.subscription_count("alerts") == 0
    try:
        await hub.publish("alerts", "alert", alert("warning"))  # not severe: ignored
        await hub.publish("alerts", "alert", alert("critical"))
        await hub.publish("alerts", "alert", alert("critical", "db"))  # within the interval
        await hub.publish("deploys", "deploy", {"service": "db", "status": "succeeded"})
        for _ in range(100):
            if notifier.sent:
                break
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.35)
        await hub.publish(
            "deploys", "deploy", {"service": "db", "version": "1.2.3", "status": "failed"}
        )
        for _ in range(100):
            if notifier.sent == 2:
                break
            await asyncio.sleep(0.02)
    finally:
        await notifier.stop()
    page = await service.inbox("anyone")
    assert [(n.user, n.type, n.title) for n in page.notifications] == [
        ("*", "warning", "Deploy of db 1.2.3 failed"),
        ("*", "error", "Critical alert on api"),
    ]


async def test_demo_source_alerts_map_to_valid_notifications(service, hub):
    event = Event("alerts", "alert", json.dumps(alert("critical")), 1, "e", 0.0)
    kwargs = demo_notification(event)
    assert kwargs is not None
    stored = await service.notify("*", **kwargs)
    assert stored.link == "/" and stored.data["severity"] == "critical"
