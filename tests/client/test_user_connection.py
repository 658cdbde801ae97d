"""UserConnection against a real server with a real SQLite store: history, live changes,
typing, presence, reconnects."""

from __future__ import annotations

import asyncio

import pytest

from dashboard.client.api import APIError
from dashboard.client.connection import UserConnection
from dashboard.core.connection import ConnectionState
from dashboard.core.errors import InvalidChannel
from dashboard.server.pusher_ws import close_all
from tests.waiting import until


@pytest.fixture
def server(store_server):
    return store_server


@pytest.fixture
def ada(connect_user):
    return connect_user("ada")


@pytest.fixture
def bob(connect_user):
    return connect_user("bob", reconnect_delay=0.3)


async def test_join_gets_history_then_live_messages_without_gaps(server, ada, bob):
    for n in range(3):
        await server.ctx.chat.post("lobby", "carol", "Carol", f"old {n}")
    room = await ada.join_room("lobby", history=2)
    assert [m.text for m in room.messages.values()] == ["old 1", "old 2"]
    seen = []
    room.on_change(lambda change: seen.append((change.op, change.message.text)))

    bob_room = await bob.join_room("lobby")
    posted = await bob_room.post("hello <b>ada</b>")
    await until(lambda: posted.id in room.messages)
    assert room.messages[posted.id].user_name == "Bob"

    await bob_room.edit(posted.id, "hello ada")
    await until(lambda: room.messages[posted.id].edited is not None)
    await bob_room.delete(posted.id)
    await until(lambda: room.messages[posted.id].deleted)
    assert seen == [
        ("INSERT", "hello <b>ada</b>"),
        ("UPDATE", "hello ada"),
        ("DELETE", ""),
    ]


async def test_only_the_author_may_edit(ada, bob):
    bob_room = await bob.join_room("lobby")
    message = await bob_room.post("mine")
    ada_room = await ada.join_room("lobby")
    with pytest.raises(APIError) as caught:
        await ada_room.edit(message.id, "hijacked")
    assert caught.value.status == 403


async def test_typing_reaches_others_and_stops_on_send(ada, bob):
    ada_room = await ada.join_room("lobby")
    bob_room = await bob.join_room("lobby")
    ada_heard: list[tuple[str, str, str]] = []
    bob_heard: list[tuple[str, str, str]] = []
    ada_room.on_activity(lambda *activity: ada_heard.append(activity))
    bob_room.on_activity(lambda *activity: bob_heard.append(activity))

    await ada_room.typing()
    await until(lambda: ("typing", "ada", "Ada") in bob_heard)
    await ada_room.post("done typing")
    await until(lambda: ("stopped", "ada", "Ada") in bob_heard)
    assert not [a for a in ada_heard if a[0] in ("typing", "stopped") and a[1] == "ada"]


async def test_typing_signals_are_throttled(ada, bob):
    ada_room = await ada.join_room("lobby")
    bob_room = await bob.join_room("lobby")
    heard: list[str] = []
    bob_room.on_activity(lambda kind, user_id, name: heard.append(kind))
    for _ in range(20):  # a burst of keystrokes
        await ada_room.typing()
    await until(lambda: heard)
    await asyncio.sleep(0.3)
    assert heard == ["typing"]


async def test_members_joining_and_leaving_are_announced(ada, bob):
    ada_room = await ada.join_room("lobby")
    heard: list[tuple[str, str, str]] = []
    ada_room.on_activity(lambda *activity: heard.append(activity))
    bob_room = await bob.join_room("lobby")
    await until(lambda: ("joined", "bob", "Bob") in heard)
    assert set(ada_room.members) == {"ada", "bob"}
    await bob_room.leave()
    await until(lambda: ("left", "bob", "Bob") in heard)
    assert set(ada_room.members) == {"ada"}


async def test_dashboard_presence_lists_every_connection(ada, bob):
    ada_presence = await ada.join_presence()
    await bob.join_presence()
    await until(lambda: set(ada_presence.members) == {"ada", "bob"})
    assert ada_presence.members["bob"] == {"name": "Bob"}
    await bob.aclose()
    await until(lambda: set(ada_presence.members) == {"ada"})


async def test_messages_missed_while_disconnected_are_fetched_again(server, ada, bob):
    bob_room = await bob.join_room("lobby")
    # Cut bob's socket off the room's channel behind his back, as a lost connection would.
    handler = server.ctx.pusher_sockets[bob.pusher.socket_id]
    server.ctx.hub.remove_channel(handler.subscription, "room-lobby")
    missed = await server.ctx.chat.post("lobby", "ada", "Ada", "while you were away")
    await asyncio.sleep(0.3)
    assert missed.id not in bob_room.messages
    close_all(server.ctx)  # every socket reconnects and resubscribes
    await until(lambda: missed.id in bob_room.messages)
    assert bob.pusher.status.state is ConnectionState.OPEN


async def test_bad_room_names_and_tokens_are_clear_errors(server, ada):
    with pytest.raises(InvalidChannel, match="invalid room name"):
        await ada.join_room("no spaces please")
    with pytest.raises(InvalidChannel):
        await ada.join_room("x" * 151)
    stranger = UserConnection(server.url, server.ctx.app.key, "not-a-token")
    try:
        with pytest.raises(APIError) as caught:
            await stranger.connect()
        assert caught.value.status == 401
    finally:
        await stranger.aclose()
