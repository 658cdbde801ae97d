"""The shared store suite: every backend in ``conftest.BACKENDS`` must pass all of it."""

import asyncio

import pytest

from dashboard.core.errors import InvalidChannel, ValidationError
from dashboard.store import (
    Change,
    Forbidden,
    InvalidMessage,
    InvalidPaging,
    InvalidUser,
    MessageDeleted,
    NotFound,
    StoreClosed,
)


async def add(store, room, n, user="u1"):
    return [await store.add_message(room, user, user.upper(), f"{room} {i}") for i in range(n)]


async def test_add_then_get_returns_the_committed_row(store):
    message = await store.add_message("lobby", "u1", "Ada", "hello")
    assert message.id >= 1
    assert (message.room, message.user_id, message.user_name, message.text) == (
        "lobby",
        "u1",
        "Ada",
        "hello",
    )
    assert (message.edited, message.deleted) == (None, False)
    assert await store.get_message(message.id) == message
    assert Change("INSERT", message).room == "lobby"


async def test_rooms_are_created_once_and_listed_by_name(store):
    first = await store.ensure_room("b")
    assert await store.ensure_room("b") == first  # created time is kept
    await store.add_message("a", "u1", "U1", "creates the room")
    assert [room.name for room in await store.list_rooms()] == ["a", "b"]


async def test_ids_strictly_increase_across_rooms(store):
    ids = [(await store.add_message(room, "u1", "U1", "x")).id for room in "abcabca"]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)


async def test_latest_page_is_oldest_first_and_limited_to_the_room(store):
    ours = []
    for _ in range(5):
        ours += await add(store, "a", 1)
        await add(store, "b", 1)
    page = await store.messages("a", limit=3)
    assert page.messages == ours[2:]
    assert page.next_before == ours[2].id


async def test_paging_with_before_walks_the_whole_history_without_gaps(store):
    ours = await add(store, "a", 7)
    await add(store, "b", 3)
    seen, before = [], None
    while True:
        page = await store.messages("a", before=before, limit=3)
        seen = page.messages + seen
        if page.next_before is None:
            break
        before = page.next_before
    assert seen == ours
    assert (await store.messages("a", before=ours[1].id, limit=3)).messages == ours[:1]


async def test_next_before_is_none_when_the_page_reaches_the_first_message(store):
    ours = await add(store, "a", 6)
    newer = await store.messages("a", limit=3)
    older = await store.messages("a", before=newer.next_before, limit=3)
    assert older.messages == ours[:3]
    assert older.next_before is None
    assert (await store.messages("a", limit=6)).next_before is None
    assert (await store.messages("a", before=ours[0].id)).messages == []


async def test_default_page_is_the_latest_fifty(store):
    ours = await add(store, "a", 55)
    page = await store.messages("a")
    assert page.messages == ours[5:]
    assert page.next_before == ours[5].id


async def test_unknown_room_has_an_empty_page(store):
    page = await store.messages("nobody-here")
    assert (page.messages, page.next_before) == ([], None)


@pytest.mark.parametrize("limit", [1, 200])
async def test_limit_bounds_are_inclusive(store, limit):
    await add(store, "a", 2)
    assert len((await store.messages("a", limit=limit)).messages) == min(limit, 2)


@pytest.mark.parametrize(
    "kwargs",
    [{"limit": 0}, {"limit": 201}, {"limit": True}, {"limit": "5"}, {"before": 0}, {"before": -3}],
)
async def test_out_of_range_paging_is_rejected(store, kwargs):
    with pytest.raises(InvalidPaging):
        await store.messages("a", **kwargs)


async def test_author_edits_and_others_are_forbidden(store):
    message = await store.add_message("a", "author", "Author", "first")
    with pytest.raises(Forbidden):
        await store.edit_message(message.id, "someone-else", "hijack")
    edited = await store.edit_message(message.id, "author", "second")
    assert (edited.id, edited.text, edited.deleted) == (message.id, "second", False)
    assert edited.edited is not None and edited.edited >= message.created
    assert await store.get_message(message.id) == edited


async def test_delete_is_a_soft_tombstone_by_the_author_only(store):
    keep, doomed = await add(store, "a", 2, user="author")
    with pytest.raises(Forbidden):
        await store.delete_message(doomed.id, "someone-else")
    assert (await store.get_message(doomed.id)).text == doomed.text
    deleted = await store.delete_message(doomed.id, "author")
    assert (deleted.id, deleted.text, deleted.deleted) == (doomed.id, "", True)
    assert (await store.messages("a")).messages == [keep, deleted]
    with pytest.raises(MessageDeleted):
        await store.edit_message(doomed.id, "author", "back from the dead")
    with pytest.raises(MessageDeleted):
        await store.delete_message(doomed.id, "author")
    assert await store.get_message(doomed.id) == deleted


async def test_unknown_ids_are_not_found(store):
    (message,) = await add(store, "a", 1)
    for call in (
        store.get_message(message.id + 1),
        store.get_message(0),
        store.edit_message(message.id + 1, "u1", "x"),
        store.delete_message(message.id + 1, "u1"),
    ):
        with pytest.raises(NotFound):
            await call


@pytest.mark.parametrize(
    "room, user_id, user_name, text, error",
    [
        ("a", "u", "U", "", InvalidMessage),
        ("a", "u", "U", " \n\t", InvalidMessage),
        ("a", "u", "U", "x" * 4001, InvalidMessage),
        ("a", "u", "U", None, InvalidMessage),
        ("a", "u", "U", "lone \ud800 surrogate", InvalidMessage),
        ("a", "u", "U", "nul \x00 inside", InvalidMessage),
        ("a", "u\x00", "U", "hi", InvalidUser),
        ("a", "u", "U\x00", "hi", InvalidUser),
        ("", "u", "U", "hi", InvalidChannel),
        ("has space", "u", "U", "hi", InvalidChannel),
        ("r" * 165, "u", "U", "hi", InvalidChannel),
        ("a", "", "U", "hi", InvalidUser),
        ("a", "u" * 129, "U", "hi", InvalidUser),
        ("a", 7, "U", "hi", InvalidUser),
        ("a", "u", "", "hi", InvalidUser),
    ],
)
async def test_invalid_input_is_rejected_and_nothing_is_stored(
    store, room, user_id, user_name, text, error
):
    with pytest.raises(error) as raised:
        await store.add_message(room, user_id, user_name, text)
    assert isinstance(raised.value, ValidationError)
    assert await store.list_rooms() == []


async def test_nul_is_refused_alike_by_every_store(store):
    # PostgreSQL text cannot hold NUL; SQLite could, but a store must not accept what the
    # other refuses, and the refusal must be a validation error (a 400), not a driver error.
    message = await store.add_message("a", "u", "U", "fine")
    for text in ("\x00", "a\x00b", "\x00" * 4000):
        with pytest.raises(InvalidMessage, match="NUL"):
            await store.edit_message(message.id, "u", text)
    assert await store.get_message(message.id) == message


async def test_limits_themselves_are_allowed(store):
    message = await store.add_message("r" * 164, "u" * 128, "n" * 128, "x" * 4000)
    assert await store.get_message(message.id) == message
    with pytest.raises(InvalidMessage):
        await store.edit_message(message.id, "u" * 128, "x" * 4001)


async def test_everything_survives_close_and_reopen(make_store):
    store = await make_store()
    kept = await add(store, "a", 3) + await add(store, "b", 2)
    edited = await store.edit_message(kept[0].id, "u1", "edited")
    deleted = await store.delete_message(kept[1].id, "u1")
    await store.close()

    reopened = await make_store()
    assert [room.name for room in await reopened.list_rooms()] == ["a", "b"]
    assert (await reopened.messages("a")).messages == [edited, deleted, kept[2]]
    assert (await reopened.messages("b")).messages == kept[3:]
    later = await reopened.add_message("a", "u1", "U1", "after restart")
    assert later.id > max(m.id for m in kept)


async def test_concurrent_writers_are_all_committed_with_unique_ids(store):
    sent = await asyncio.gather(
        *(store.add_message("ab"[i % 2], f"u{i}", "U", f"m{i}") for i in range(200))
    )
    assert len({m.id for m in sent}) == 200
    for room in "ab":
        page = await store.messages(room, limit=200)
        assert page.messages == sorted((m for m in sent if m.room == room), key=lambda m: m.id)
        assert page.next_before is None


async def test_closed_store_refuses_calls_and_open_close_are_idempotent(make_store):
    store = await make_store()
    await store.open()
    await store.close()
    await store.close()
    with pytest.raises(StoreClosed):
        await store.list_rooms()
    async with store:
        assert await store.list_rooms() == []


async def test_health_is_one_round_trip_and_down_once_closed(make_store):
    store = await make_store()
    report = await store.health()
    assert report["kind"] in ("sqlite", "postgresql") and report["state"] == "ok"
    assert 0 <= report["latency_ms"] < store.health_timeout * 1000
    assert "password" not in str(report)
    await store.close()
    closed = await store.health()  # never raises for the database's state
    assert closed["state"] == "down" and "not open" in closed["last_error"]


async def test_health_reports_down_when_the_database_does_not_answer_in_time(
    make_store, monkeypatch
):
    store = await make_store()
    store.health_timeout = 0.2

    async def hangs() -> None:
        await asyncio.sleep(10)

    monkeypatch.setattr(store, "ping", hangs)
    report = await asyncio.wait_for(store.health(), 2)
    assert report["state"] == "down" and report["last_error"] == "no answer within 0.2 s"
