"""Notifications in the shared store suite: every backend in ``conftest.BACKENDS`` runs these."""

import pytest

from dashboard.store import (
    Forbidden,
    InvalidNotification,
    InvalidPaging,
    InvalidUser,
    NotFound,
    ReadAll,
)
from dashboard.store.base import MAX_ID


async def test_add_returns_the_committed_unread_notification(store):
    n = await store.add_notification(
        "ada", "warning", "Disk", "85% full", "/disks", {"host": "db1", "pct": [85, 90.5]}
    )
    assert n.id >= 1 and n.read is False and n.created > 0
    assert (n.user, n.type, n.title, n.message, n.link) == (
        "ada",
        "warning",
        "Disk",
        "85% full",
        "/disks",
    )
    assert n.data == {"host": "db1", "pct": [85, 90.5]}
    assert await store.get_notification(n.id, "ada") == n
    bare = await store.add_notification("*", "info", "Hello")
    assert (bare.message, bare.link, bare.data) == ("", None, None)


async def test_inbox_is_own_plus_broadcasts_newest_first(store):
    mine = await store.add_notification("ada", "info", "for ada")
    await store.add_notification("bob", "info", "for bob")
    everyone = await store.add_notification("*", "success", "for all")
    page = await store.notifications("ada")
    assert page.notifications == [everyone, mine]
    assert (page.next_before, page.unread_count) == (None, 2)
    assert [n.title for n in (await store.notifications("bob")).notifications] == [
        "for all",
        "for bob",
    ]
    assert (await store.notifications("carol")).notifications == [everyone]


async def test_paging_walks_the_whole_inbox_without_gaps(store):
    ids = []
    for i in range(7):
        ids.append((await store.add_notification("ada" if i % 2 else "*", "info", f"n{i}")).id)
        await store.add_notification("bob", "info", "not ada's")
    seen, before = [], None
    while True:
        page = await store.notifications("ada", before=before, limit=3)
        assert len(page.notifications) <= 3 and page.unread_count == 7
        seen += [n.id for n in page.notifications]
        if page.next_before is None:
            break
        before = page.next_before
    assert seen == ids[::-1]


async def test_read_state_is_per_user_even_for_broadcasts(store):
    everyone = await store.add_notification("*", "info", "for all")
    mine = await store.add_notification("ada", "info", "for ada")
    read = await store.mark_notification_read(everyone.id, "ada")
    assert read.read is True and read.id == everyone.id
    assert await store.mark_notification_read(everyone.id, "ada") == read  # idempotent
    assert (await store.get_notification(everyone.id, "ada")).read is True
    assert (await store.get_notification(everyone.id, "bob")).read is False
    assert await store.unread_notification_count("ada") == 1
    assert await store.unread_notification_count("bob") == 1
    unread = await store.notifications("ada", unread_only=True)
    assert (unread.notifications, unread.unread_count) == ([mine], 1)
    assert [n.read for n in (await store.notifications("ada")).notifications] == [False, True]


async def test_another_users_notification_is_forbidden_and_unknown_ids_not_found(store):
    theirs = await store.add_notification("bob", "info", "for bob")
    with pytest.raises(Forbidden):
        await store.mark_notification_read(theirs.id, "ada")
    with pytest.raises(Forbidden):
        await store.get_notification(theirs.id, "ada")
    assert await store.unread_notification_count("bob") == 1
    for missing in (theirs.id + 1000, 0, -1, MAX_ID, MAX_ID + 1):
        with pytest.raises(NotFound):
            await store.mark_notification_read(missing, "ada")


async def test_read_all_is_a_watermark_and_later_ones_stay_unread(store):
    assert await store.mark_all_notifications_read("ada") == ReadAll(0, 0)
    first = await store.add_notification("*", "info", "a")
    await store.mark_notification_read(first.id, "ada")
    second = await store.add_notification("ada", "info", "b")
    await store.add_notification("bob", "info", "not ada's")
    third = await store.add_notification("*", "info", "c")
    assert await store.mark_all_notifications_read("ada") == ReadAll(2, third.id)
    assert await store.unread_notification_count("ada") == 0
    assert all(n.read for n in (await store.notifications("ada")).notifications)
    assert await store.unread_notification_count("bob") == 3  # nothing changed for bob
    later = await store.add_notification("*", "info", "d")
    page = await store.notifications("ada", unread_only=True)
    assert (page.notifications, page.unread_count) == ([later], 1)
    # Marking an already covered one again stays idempotent.
    assert (await store.mark_notification_read(second.id, "ada")).read is True
    assert await store.mark_all_notifications_read("ada") == ReadAll(1, later.id)
    assert await store.mark_all_notifications_read("ada") == ReadAll(0, later.id)


async def test_notifications_and_read_state_survive_a_reopen(make_store):
    store = await make_store()
    a = await store.add_notification("*", "error", "a", data=[1, 2])
    b = await store.add_notification("ada", "info", "b")
    c = await store.add_notification("ada", "info", "c")
    await store.mark_notification_read(b.id, "ada")
    await store.close()
    again = await make_store()
    page = await again.notifications("ada")
    assert [(n.id, n.read) for n in page.notifications] == [
        (c.id, False),
        (b.id, True),
        (a.id, False),
    ]
    assert page.notifications[-1].data == [1, 2]
    d = await again.add_notification("*", "info", "d")
    assert d.id > c.id


async def test_nul_inside_data_is_stored_escaped_and_refused_in_a_link(store):
    # Data is kept as JSON text, where NUL is the escape \u0000: plain text to any store.
    n = await store.add_notification("ada", "info", "t", data={"k\x00": "\x00"})
    assert n.data == {"k\x00": "\x00"}
    assert await store.get_notification(n.id, "ada") == n
    with pytest.raises(InvalidNotification, match="link must be"):
        await store.add_notification("ada", "info", "t", link="/a\x00b")


LINK_OK = ["https://example.com/", "http://x.y/path?q=1#f", "/", "/reports/42?tab=1", None]
BAD = [
    ({"title": ""}, InvalidNotification, "title"),
    ({"title": "   "}, InvalidNotification, "title"),
    ({"title": None}, InvalidNotification, "title must be a string"),
    ({"title": "x" * 201}, InvalidNotification, "limit is 200"),
    ({"message": "x" * 2001}, InvalidNotification, "limit is 2000"),
    ({"message": 3}, InvalidNotification, "message must be a string"),
    ({"title": "a\x00b"}, InvalidNotification, "title must not contain NUL"),
    ({"message": "\x00"}, InvalidNotification, "message must not contain NUL"),
    ({"type": "fatal"}, InvalidNotification, "type must be one of"),
    ({"link": "javascript:alert(1)"}, InvalidNotification, "link must be"),
    ({"link": "//evil.example/x"}, InvalidNotification, "link must be"),
    ({"link": "ftp://x.y/z"}, InvalidNotification, "link must be"),
    ({"link": "https://"}, InvalidNotification, "link must be"),
    ({"link": "relative/path"}, InvalidNotification, "link must be"),
    ({"link": "/a\nb"}, InvalidNotification, "link must be"),
    ({"link": "/\\evil.example/x"}, InvalidNotification, "link must be"),
    ({"link": "/\t/evil.example"}, InvalidNotification, "link must be"),
    ({"link": "/.//evil.example"}, InvalidNotification, "link must be"),
    ({"link": "/" + "é" * 1000}, InvalidNotification, "once normalized"),  # %C3%A9 each
    ({"link": "/" + "x" * 2048}, InvalidNotification, "limit is 2048"),
    ({"data": "x" * 5000}, InvalidNotification, "limit is 4096"),
    ({"data": float("nan")}, InvalidNotification, "not JSON-serialisable"),
    ({"data": {1j}}, InvalidNotification, "not JSON-serialisable"),
    ({"user": ""}, InvalidUser, "user"),
    ({"user": "has space"}, InvalidUser, "cannot receive notifications"),
    ({"user": "x" * 200}, InvalidUser, "cannot receive notifications"),
    ({"user": 7}, InvalidUser, "user must be"),
]


@pytest.mark.parametrize("link", LINK_OK)
async def test_links_that_are_accepted(store, link):
    assert (await store.add_notification("*", "info", "t", link=link)).link == link


@pytest.mark.parametrize(
    "link, stored",
    [
        ("https://example.com", "https://example.com/"),
        ("HTTP://Example.com:80/a/../b c", "http://example.com/b%20c"),
        ("/a\\b", "/a/b"),
    ],
)
async def test_links_are_stored_as_a_browser_reads_them(store, link, stored):
    assert (await store.add_notification("*", "info", "t", link=link)).link == stored


@pytest.mark.parametrize("change, error, match", BAD)
async def test_bad_input_is_refused_and_nothing_is_written(store, change, error, match):
    fields = {"user": "ada", "type": "info", "title": "t", "message": "", "link": None}
    fields.update(change)
    data = fields.pop("data", None)
    with pytest.raises(error, match=match):
        await store.add_notification(**fields, data=data)
    assert (await store.notifications("ada")).notifications == []


@pytest.mark.parametrize(
    "before, limit", [(0, 10), (-1, 10), ("1", 10), (None, 0), (None, 201), (None, True)]
)
async def test_bad_paging_is_refused(store, before, limit):
    with pytest.raises(InvalidPaging):
        await store.notifications("ada", before=before, limit=limit)
