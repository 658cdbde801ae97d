"""ChatService on a real SQLite file and a real Hub: commit before broadcast, join without a gap,
and UPDATE/DELETE row-change events."""

from __future__ import annotations

import asyncio
import sqlite3

import pytest

from dashboard.chat import ChatService, change_from_event, message_json, room_channel
from dashboard.core.errors import InvalidChannel, PayloadTooLarge
from dashboard.hub import Hub
from dashboard.store import Forbidden, MessageDeleted, NotFound, SQLiteStore


@pytest.fixture
def db_path(tmp_path):
    return tmp_path / "chat.db"


@pytest.fixture
async def hub():
    async with Hub() as hub:
        yield hub


@pytest.fixture
async def chat(db_path, hub):
    # NORMAL: one fsync per write would only slow the concurrency tests down.
    async with SQLiteStore(db_path, synchronous="NORMAL") as store:
        yield ChatService(store, hub)


async def next_change(sub, timeout=3.0):
    return change_from_event(await asyncio.wait_for(anext(sub), timeout))


async def test_insert_is_committed_before_it_is_broadcast(chat, hub, db_path):
    reader = sqlite3.connect(db_path)  # a second connection, as another process would have
    seen_at_publish: list[tuple] = []

    def consume(event):
        # Runs synchronously inside hub.publish, i.e. at the moment of the broadcast.
        message_id = event.data["message"]["id"]
        row = reader.execute("SELECT text FROM messages WHERE id = ?", (message_id,)).fetchone()
        seen_at_publish.append((event.name, message_id, row))
        return True

    sub = await hub.subscribe([room_channel("lobby")])
    sub.set_direct_consumer(consume)
    message = await chat.post("lobby", "ada", "Ada", "hello")
    edited = await chat.edit(message.id, "ada", "hello again")
    await chat.delete(message.id, "ada")
    reader.close()
    sub.close()
    assert seen_at_publish == [
        ("INSERT", message.id, ("hello",)),
        ("UPDATE", message.id, ("hello again",)),
        ("DELETE", message.id, ("",)),
    ]
    assert edited.edited is not None


async def test_events_are_row_changes_named_by_op_on_the_room_channel(chat, hub):
    lobby = await hub.subscribe(["room-lobby"])
    other = await hub.subscribe(["room-other"])
    message = await chat.post("lobby", "ada", "Ada", "first")
    edited = await chat.edit(message.id, "ada", "first, edited", room="lobby")
    deleted = await chat.delete(message.id, "ada", room="lobby")

    events = [await asyncio.wait_for(anext(lobby), 3) for _ in range(3)]
    assert [event.name for event in events] == ["INSERT", "UPDATE", "DELETE"]
    assert [event.data for event in events] == [
        {"op": "INSERT", "message": message_json(message)},
        {"op": "UPDATE", "message": message_json(edited)},
        {"op": "DELETE", "message": message_json(deleted)},
    ]
    assert deleted.deleted and deleted.text == ""
    assert [change_from_event(event).message for event in events] == [message, edited, deleted]
    assert other.qsize() == 0
    lobby.close()
    other.close()


async def test_join_gives_the_last_50_then_live_changes(chat):
    posted = [await chat.post("lobby", "ada", "Ada", f"m{i}") for i in range(60)]
    async with await chat.join("lobby") as feed:
        assert [m.id for m in feed.history.messages] == [m.id for m in posted[-50:]]
        assert feed.history.next_before == posted[-50].id
        new = await chat.post("lobby", "bob", "Bob", "live")
        await chat.edit(posted[0].id, "ada", "old one, edited")  # older than the history
        first = await asyncio.wait_for(anext(feed), 3)
        second = await asyncio.wait_for(anext(feed), 3)
    assert (first.op, first.message) == ("INSERT", new)
    assert (second.op, second.message.id, second.message.text) == (
        "UPDATE",
        posted[0].id,
        "old one, edited",
    )
    assert feed.closed_reason == "closed"


class SlowReads(SQLiteStore):
    """A real SQLite store whose history reads take a while, as on a busy disk.

    Writes land both just before and just after the read, which is exactly where a join that
    reads before subscribing would lose messages, and one that does not de-duplicate would
    hand them out twice.
    """

    async def messages(self, room, *, before=None, limit=50):
        await asyncio.sleep(0.005)
        page = await super().messages(room, before=before, limit=limit)
        await asyncio.sleep(0.005)
        return page


@pytest.mark.parametrize("join_after", [0, 7, 40, 119])
async def test_join_under_concurrent_posting_has_no_gap_and_no_duplicate(db_path, hub, join_after):
    total = 120
    store = SlowReads(db_path, synchronous="NORMAL")
    await store.open()
    chat = ChatService(store, hub)
    started = asyncio.Event()
    ids: list[int] = []

    async def writer():
        for i in range(total):
            if i == join_after:
                started.set()
            ids.append((await chat.post("busy", "ada", "Ada", f"m{i}")).id)
            await asyncio.sleep(0)
        started.set()

    async def joiner():
        await started.wait()
        async with await chat.join("busy", limit=200) as feed:
            seen = [m.id for m in feed.history.messages]
            while len(seen) < total:
                change = await asyncio.wait_for(anext(feed), 5)
                assert change.op == "INSERT"
                seen.append(change.message.id)
            return seen

    # Several joiners racing the writer at slightly different moments.
    try:
        results = await asyncio.gather(writer(), *(joiner() for _ in range(3)))
    finally:
        await store.close()
    for seen in results[1:]:
        assert seen == ids, "history + live must be every message once, in order"


async def test_join_drops_inserts_the_history_already_holds(chat, hub):
    # Publish the INSERT of a message that is already in the history, as a commit that races
    # the history read would: the feed must not hand it out again.
    old = await chat.post("lobby", "ada", "Ada", "before join")
    async with await chat.join("lobby") as feed:
        assert [m.id for m in feed.history.messages] == [old.id]
        await hub.publish(
            room_channel("lobby"), "INSERT", {"op": "INSERT", "message": message_json(old)}
        )
        await hub.publish(room_channel("lobby"), "note", {"not": "a change"})
        new = await chat.post("lobby", "ada", "Ada", "after join")
        change = await asyncio.wait_for(anext(feed), 3)
    assert change.message == new


async def test_edit_and_delete_errors(chat):
    message = await chat.post("lobby", "ada", "Ada", "mine")
    with pytest.raises(Forbidden):
        await chat.edit(message.id, "bob", "not yours")
    with pytest.raises(Forbidden):
        await chat.delete(message.id, "bob")
    with pytest.raises(NotFound):
        await chat.edit(message.id, "ada", "wrong room", room="elsewhere")
    with pytest.raises(NotFound):
        await chat.delete(999_999, "ada")
    await chat.delete(message.id, "ada")
    with pytest.raises(MessageDeleted):
        await chat.delete(message.id, "ada")
    with pytest.raises(MessageDeleted):
        await chat.edit(message.id, "ada", "too late")


async def test_a_message_too_large_to_broadcast_is_refused_before_it_is_stored(db_path):
    async with Hub(max_payload_bytes=2000) as hub, SQLiteStore(db_path) as store:
        chat = ChatService(store, hub)
        with pytest.raises(PayloadTooLarge):
            await chat.post("lobby", "ada", "Ada", "é" * 1500)
        assert (await chat.history("lobby")).messages == []
        small = await chat.post("lobby", "ada", "Ada", "ok")
        with pytest.raises(PayloadTooLarge):
            await chat.edit(small.id, "ada", "é" * 1500)
        assert (await store.get_message(small.id)).text == "ok"


def test_room_channel_leaves_room_for_its_prefix():
    assert room_channel("lobby") == "room-lobby"
    assert room_channel("x" * 159) == "room-" + "x" * 159
    with pytest.raises(InvalidChannel, match="159"):
        room_channel("x" * 160)
    with pytest.raises(InvalidChannel):
        room_channel("no spaces")


async def test_messages_survive_a_restart(db_path, hub):
    async with SQLiteStore(db_path) as store:
        posted = await ChatService(store, hub).post("lobby", "ada", "Ada", "persisted")
    async with SQLiteStore(db_path) as store:
        feed = await ChatService(store, hub).join("lobby")
        feed.close()
    assert feed.history.messages == [posted]
