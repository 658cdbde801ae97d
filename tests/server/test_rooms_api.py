"""``/api/rooms`` on a real DashboardServer with an SQLite file, through real aiohttp requests."""

from __future__ import annotations

import json
import sqlite3

import pytest

from dashboard.core.errors import PayloadTooLarge
from dashboard.core.user_tokens import issue_user_token
from dashboard.server import DashboardServer
from dashboard.server.rooms import store_error
from dashboard.store import (
    Forbidden,
    InvalidMessage,
    MessageDeleted,
    NotFound,
    SQLiteStore,
    StoreCorrupt,
    StoreUnavailable,
)
from tests.server.helpers import TOKEN, RawStream


@pytest.fixture
def db_path(tmp_path):
    return tmp_path / "data" / "dashboard.sqlite3"


@pytest.fixture
async def chat_server(db_path):
    srv = DashboardServer(
        port=0, token=TOKEN, heartbeat=0.3, store=SQLiteStore(db_path, busy_timeout=0.2)
    )
    await srv.start()
    yield srv
    await srv.stop()


def bearer(server, user_id, name=None):
    token = issue_user_token(server.ctx.app.secret, user_id, name)
    return {"Authorization": f"Bearer {token}"}


async def call(http, method, url, headers=None, **kwargs):
    async with http.request(method, url, headers=headers, **kwargs) as response:
        return response.status, await response.json(), response.headers


async def post(http, server, room, text, user="ada", name="Ada"):
    return await call(
        http,
        "POST",
        f"{server.url}/api/rooms/{room}/messages",
        bearer(server, user, name),
        json={"text": text},
    )


async def test_post_then_list_and_page(chat_server, http):
    server = chat_server
    ids = []
    for i in range(7):
        status, body, headers = await post(http, server, "lobby", f"m{i}")
        assert status == 201
        assert body["room"] == "lobby" and body["user_id"] == "ada" and body["user_name"] == "Ada"
        assert headers["Location"] == f"/api/rooms/lobby/messages/{body['id']}"
        ids.append(body["id"])

    status, page, _ = await call(http, "GET", f"{server.url}/api/rooms/lobby/messages?limit=3")
    assert status == 200
    assert [m["id"] for m in page["messages"]] == ids[-3:]
    assert page["next_before"] == ids[-3]
    collected = page["messages"]
    while page["next_before"] is not None:
        url = f"{server.url}/api/rooms/lobby/messages?limit=3&before={page['next_before']}"
        status, page, _ = await call(http, "GET", url)
        collected = page["messages"] + collected
    assert [m["text"] for m in collected] == [f"m{i}" for i in range(7)]

    status, default, _ = await call(http, "GET", f"{server.url}/api/rooms/lobby/messages")
    assert [m["id"] for m in default["messages"]] == ids and default["next_before"] is None
    status, empty, _ = await call(http, "GET", f"{server.url}/api/rooms/nobody/messages")
    assert (status, empty) == (200, {"messages": [], "next_before": None})
    status, rooms, _ = await call(http, "GET", f"{server.url}/api/rooms")
    assert [(r["name"], r["channel"]) for r in rooms["rooms"]] == [("lobby", "room-lobby")]


async def test_a_post_is_broadcast_on_the_room_channel(chat_server, http):
    server = chat_server
    async with http.get(f"{server.url}/api/events?channel=room-lobby") as response:
        stream = RawStream(response)
        await stream.take(1, "connected")
        _, message, _ = await post(http, server, "lobby", "hello")
        (event,) = await stream.take(1, "INSERT")
    envelope = json.loads(event.data)
    assert (envelope["channel"], envelope["event"]) == ("room-lobby", "INSERT")
    assert envelope["data"] == {"op": "INSERT", "message": message}


async def test_posting_needs_an_identity(chat_server, http):
    url = f"{chat_server.url}/api/rooms/lobby/messages"
    status, body, headers = await call(http, "POST", url, json={"text": "hi"})
    assert (status, body["error"]) == (401, "no_identity")
    status, body, _ = await call(
        http, "POST", url, {"Authorization": "Bearer not-a-token"}, json={"text": "hi"}
    )
    assert status == 401
    # With the cookie from /api/identity a browser visitor may post too.
    async with http.post(f"{chat_server.url}/api/identity", json={"name": "Visitor"}) as response:
        me, cookie = await response.json(), response.cookies["dashboard_user"].value
    # Sent by hand: aiohttp's default cookie jar ignores cookies from IP-address hosts.
    status, body, _ = await call(
        http, "POST", url, {"Cookie": f"dashboard_user={cookie}"}, json={"text": "hi"}
    )
    assert (status, body["user_id"], body["user_name"]) == (201, me["user_id"], "Visitor")


async def test_only_the_author_edits_or_deletes(chat_server, http):
    server = chat_server
    _, message, _ = await post(http, server, "lobby", "mine")
    url = f"{server.url}/api/rooms/lobby/messages/{message['id']}"
    ada, bob = bearer(server, "ada", "Ada"), bearer(server, "bob", "Bob")

    assert (await call(http, "PATCH", url, bob, json={"text": "x"}))[:2][0] == 403
    assert (await call(http, "DELETE", url, bob))[0] == 403
    assert (await call(http, "PATCH", url, json={"text": "x"}))[0] == 401

    status, edited, _ = await call(http, "PATCH", url, ada, json={"text": "mine, edited"})
    assert status == 200 and edited["text"] == "mine, edited" and edited["edited"] is not None

    wrong_room = f"{server.url}/api/rooms/other/messages/{message['id']}"
    assert (await call(http, "PATCH", wrong_room, ada, json={"text": "x"}))[0] == 404
    assert (await call(http, "DELETE", wrong_room, ada))[0] == 404
    assert (await call(http, "DELETE", f"{server.url}/api/rooms/lobby/messages/999", ada))[0] == 404
    assert (await call(http, "DELETE", f"{server.url}/api/rooms/lobby/messages/x", ada))[0] == 404

    status, deleted, _ = await call(http, "DELETE", url, ada)
    assert status == 200 and deleted["deleted"] is True and deleted["text"] == ""
    status, body, _ = await call(http, "DELETE", url, ada)
    assert (status, body["error"]) == (409, "message_deleted")
    assert (await call(http, "PATCH", url, ada, json={"text": "x"}))[0] == 409


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"text": ""}, "invalid_message"),
        ({"text": "x" * 4001}, "invalid_message"),
        ({"text": 5}, "invalid_message"),
        ({"words": "hi"}, "invalid_body"),
        ([], "invalid_body"),
    ],
)
async def test_bad_input_is_a_400(chat_server, http, body, code):
    url = f"{chat_server.url}/api/rooms/lobby/messages"
    status, answer, _ = await call(http, "POST", url, bearer(chat_server, "ada"), json=body)
    assert (status, answer["error"]) == (400, code)


@pytest.mark.parametrize("query", ["limit=0", "limit=201", "limit=ten", "before=0", "before=x"])
async def test_bad_paging_is_a_400(chat_server, http, query):
    status, body, _ = await call(http, "GET", f"{chat_server.url}/api/rooms/lobby/messages?{query}")
    assert (status, body["error"]) == (400, "invalid_paging")


async def test_bad_room_name_is_a_400(chat_server, http):
    status, body, _ = await call(http, "GET", f"{chat_server.url}/api/rooms/a%20b/messages")
    assert (status, body["error"]) == (400, "invalid_channel")


async def test_a_locked_database_is_a_503_with_retry_after(chat_server, http, db_path):
    await post(http, chat_server, "lobby", "before the lock")
    holder = sqlite3.connect(db_path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        status, body, headers = await post(http, chat_server, "lobby", "while locked")
        assert (status, body["error"]) == (503, "store_unavailable")
        assert headers["Retry-After"] == "2"
        assert "Traceback" not in body["message"] and "retry" in body["message"].lower()
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    status, body, _ = await post(http, chat_server, "lobby", "after the lock")
    assert status == 201
    _, page, _ = await call(http, "GET", f"{chat_server.url}/api/rooms/lobby/messages")
    assert [m["text"] for m in page["messages"]] == ["before the lock", "after the lock"]


async def test_messages_survive_a_server_restart(db_path, http):
    first = DashboardServer(port=0, token=TOKEN, store=db_path)
    await first.start()
    posted = [(await post(http, first, "lobby", f"m{i}"))[1] for i in range(3)]
    await first.stop()

    second = DashboardServer(port=0, token=TOKEN, store=str(db_path))
    await second.start()
    try:
        _, page, _ = await call(http, "GET", f"{second.url}/api/rooms/lobby/messages")
        assert page["messages"] == posted
        status, later, _ = await post(http, second, "lobby", "after restart")
        assert status == 201 and later["id"] > posted[-1]["id"]
    finally:
        await second.stop()


async def test_a_corrupt_database_stops_the_start_with_a_clear_error(tmp_path):
    path = tmp_path / "corrupt.sqlite3"
    path.write_bytes(b"this is not an SQLite database" * 100)
    server = DashboardServer(port=0, store=path)
    with pytest.raises(StoreCorrupt, match="corrupt.sqlite3.*move the file"):
        await server.start()
    assert server._server is None  # nothing was bound


async def test_without_a_store_there_are_no_rooms(server, http):
    status, body, _ = await call(http, "GET", f"{server.url}/api/rooms")
    assert (status, body["error"]) == (404, "chat_disabled")


@pytest.mark.parametrize(
    ("exc", "status", "code"),
    [
        (InvalidMessage("empty"), 400, "invalid_message"),
        (PayloadTooLarge("big"), 413, "payload_too_large"),
        (NotFound("gone"), 404, "not_found"),
        (Forbidden("not yours"), 403, "forbidden"),
        (MessageDeleted("deleted"), 409, "message_deleted"),
        (StoreUnavailable("/srv/db locked"), 503, "store_unavailable"),
        (StoreCorrupt("/srv/db is not a database"), 500, "store_corrupt"),
    ],
)
def test_store_errors_map_to_statuses(exc, status, code):
    error = store_error(exc)
    assert (error.status_code, error.code) == (status, code)
    if status >= 500:
        assert "/srv/db" not in error.message  # server paths stay in the server log


async def test_posting_and_making_rooms_are_limited_per_user(tmp_path, http):
    from dashboard.server.limits import Limits

    limits = Limits(
        messages_burst=4, messages_per_minute=1, new_rooms_burst=2, new_rooms_per_minute=1
    )
    server = DashboardServer(
        port=0, token=TOKEN, limits=limits, store=SQLiteStore(tmp_path / "limits.sqlite3")
    )
    await server.start()
    try:
        # Two new rooms, then a third is refused; posting to an existing room is not.
        assert (await post(http, server, "one", "a"))[0] == 201
        assert (await post(http, server, "two", "b"))[0] == 201
        status, body, headers = await post(http, server, "three", "c")
        assert (status, body["error"]) == (429, "rate_limited") and "new rooms" in body["message"]
        assert int(headers["Retry-After"]) >= 1
        assert (await post(http, server, "one", "d"))[0] == 201
        # That made four messages: the fifth is refused; another user is not.
        status, body, _ = await post(http, server, "one", "e")
        assert (status, body["error"]) == (429, "rate_limited") and "chat messages" in body[
            "message"
        ]
        assert (await post(http, server, "one", "f", user="bob", name="Bob"))[0] == 201
        status, rooms, _ = await call(http, "GET", f"{server.url}/api/rooms")
        assert sorted(room["name"] for room in rooms["rooms"]) == ["one", "two"]
    finally:
        await server.stop()
