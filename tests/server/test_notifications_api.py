"""``/api/notifications`` and the notification channels on a real DashboardServer with a real
SQLite file, through real aiohttp requests and SSE streams."""

from __future__ import annotations

import json

import pytest

from dashboard.client.notify import NotifyError
from dashboard.core.pusher_signatures import sign_channel
from dashboard.core.user_tokens import issue_user_token
from dashboard.notifications import notify
from dashboard.server import DashboardServer
from dashboard.store import SQLiteStore
from tests.server.helpers import TOKEN, RawStream


@pytest.fixture
def db_path(tmp_path):
    return tmp_path / "data" / "dashboard.sqlite3"


def make_server(db_path):
    store = SQLiteStore(db_path, busy_timeout=0.2, synchronous="NORMAL")
    return DashboardServer(port=0, token=TOKEN, heartbeat=0.3, store=store)


@pytest.fixture
async def server(db_path):
    srv = make_server(db_path)
    await srv.start()
    yield srv
    await srv.stop()


def bearer(server, user_id):
    return {"Authorization": f"Bearer {issue_user_token(server.ctx.app.secret, user_id)}"}


PUBLISH = {"Authorization": f"Bearer {TOKEN}"}


async def call(http, method, url, headers=None, **kwargs):
    async with http.request(method, url, headers=headers, **kwargs) as response:
        return response.status, await response.json()


async def send(http, server, body, headers=PUBLISH):
    return await call(http, "POST", f"{server.url}/api/notifications", headers, json=body)


async def inbox(http, server, user, query=""):
    return await call(http, "GET", f"{server.url}/api/notifications{query}", bearer(server, user))


async def open_stream(http, server, user, *channels, headers=None):
    query = "&".join(f"channel={name}" for name in channels)
    response = await http.get(
        f"{server.url}/api/events?{query}", headers={**bearer(server, user), **(headers or {})}
    )
    assert response.status == 200, await response.text()
    stream = RawStream(response)
    assert (await stream.next()).event == "connected"
    return response, stream


def own(user):
    return f"private-user-{user}"


# -- POST ---------------------------------------------------------------------------------


async def test_post_needs_the_publish_token_and_answers_the_notification(server, http):
    status, body = await send(http, server, {"title": "hi"}, headers={})
    assert (status, body["error"]) == (401, "unauthorized")
    status, body = await send(http, server, {"title": "hi"}, headers=bearer(server, "ada"))
    assert status == 401  # a user token is not the publish token
    status, body = await send(
        http,
        server,
        {
            "user": "ada",
            "type": "error",
            "title": "Build failed",
            "message": "main is red",
            "link": "https://ci.example/1",
            "data": {"run": 1},
        },
    )
    assert status == 201
    assert set(body) == {
        "id",
        "user",
        "type",
        "title",
        "message",
        "link",
        "data",
        "created",
        "read",
    }
    assert (body["user"], body["type"], body["title"], body["read"]) == (
        "ada",
        "error",
        "Build failed",
        False,
    )
    assert (body["link"], body["data"]) == ("https://ci.example/1", {"run": 1})
    status, body = await send(http, server, {"title": "t", "link": "HTTPS://CI.example/a b"})
    assert (status, body["link"]) == (201, "https://ci.example/a%20b")  # stored as judged
    status, body = await send(http, server, {"title": "to all"})
    assert (status, body["user"], body["type"], body["message"], body["link"], body["data"]) == (
        201,
        "*",
        "info",
        "",
        None,
        None,
    )


@pytest.mark.parametrize(
    "body, status, error, words",
    [
        ({}, 400, "invalid_notification", "title is required"),
        ({"title": ""}, 400, "invalid_notification", "must not be empty"),
        ({"title": "x" * 201}, 400, "invalid_notification", "limit is 200"),
        ({"title": "t", "type": "fatal"}, 400, "invalid_notification", "type must be one of"),
        ({"title": "t", "message": "m" * 2001}, 400, "invalid_notification", "limit is 2000"),
        ({"title": "t", "link": "javascript:alert(1)"}, 400, "invalid_notification", "link must"),
        # A browser reads "\\" as "/": this is http://evil.example/x, not a path.
        ({"title": "t", "link": "/\\evil.example/x"}, 400, "invalid_notification", "link must"),
        ({"title": "t", "link": "/" * 2049}, 400, "invalid_notification", "limit is 2048"),
        ({"title": "t", "data": {"x": "y" * 5000}}, 400, "invalid_notification", "limit is 4096"),
        ({"title": "t", "user": "two words"}, 400, "invalid_user", "cannot receive"),
        ({"title": "t", "user": ""}, 400, "invalid_user", "user"),
        ({"title": "t", "colour": "red"}, 400, "unknown_field", "colour"),
        (["title"], 400, "invalid_body", "object"),
        # Each field within its limit, together too large for one hub event (10 KB).
        (
            {"title": "t", "message": "é" * 2000, "link": "/" + "l" * 2000, "data": "d" * 4090},
            413,
            "payload_too_large",
            "too large to deliver",
        ),
    ],
)
async def test_bad_input_is_a_clear_4xx_and_writes_nothing(
    server, http, body, status, error, words
):
    answer_status, answer = await send(http, server, body)
    assert (answer_status, answer["error"]) == (status, error)
    assert words in answer["message"]
    _, page = await inbox(http, server, "ada")
    assert page["notifications"] == []


async def test_invalid_json_body(server, http):
    async with http.post(
        f"{server.url}/api/notifications", data=b"{not json", headers=PUBLISH
    ) as response:
        assert response.status == 400
        assert (await response.json())["error"] == "invalid_json"


# -- GET and read state -------------------------------------------------------------------


async def test_offline_user_finds_them_unread_and_only_their_own(server, http):
    _, mine = await send(http, server, {"user": "ada", "title": "for ada"})
    _, theirs = await send(http, server, {"user": "bob", "title": "for bob"})
    _, everyone = await send(http, server, {"title": "for all"})
    status, page = await inbox(http, server, "ada")
    assert status == 200
    assert [n["id"] for n in page["notifications"]] == [everyone["id"], mine["id"]]
    assert all(n["read"] is False for n in page["notifications"])
    assert (page["next_before"], page["unread_count"]) == (None, 2)
    # A forged user in the query changes nothing.
    _, forged = await inbox(http, server, "ada", "?user=bob&user_id=bob")
    assert forged == page
    assert theirs["id"] not in [n["id"] for n in forged["notifications"]]
    status, body = await call(http, "GET", f"{server.url}/api/notifications")
    assert (status, body["error"]) == (401, "no_identity")
    status, body = await call(
        http, "GET", f"{server.url}/api/notifications?unread=maybe", bearer(server, "ada")
    )
    assert (status, body["error"]) == (400, "invalid_query")
    status, body = await inbox(http, server, "ada", "?limit=500")
    assert (status, body["error"]) == (400, "invalid_paging")


async def test_paging_and_unread_filter(server, http):
    ids = [(await send(http, server, {"user": "ada", "title": f"n{i}"}))[1]["id"] for i in range(5)]
    _, first = await inbox(http, server, "ada", "?limit=2")
    assert [n["id"] for n in first["notifications"]] == ids[:2:-1][:2]
    _, rest = await inbox(http, server, "ada", f"?limit=10&before={first['next_before']}")
    assert [n["id"] for n in rest["notifications"]] == ids[2::-1]
    assert rest["next_before"] is None
    await call(http, "POST", f"{server.url}/api/notifications/{ids[1]}/read", bearer(server, "ada"))
    _, unread = await inbox(http, server, "ada", "?unread=true")
    assert [n["id"] for n in unread["notifications"]] == [i for i in ids[::-1] if i != ids[1]]
    assert unread["unread_count"] == 4


async def test_mark_read_owner_only_idempotent_and_forgery_proof(server, http):
    _, theirs = await send(http, server, {"user": "bob", "title": "for bob"})
    _, everyone = await send(http, server, {"title": "for all"})
    url = f"{server.url}/api/notifications"
    status, body = await call(http, "POST", f"{url}/{theirs['id']}/read", bearer(server, "ada"))
    assert (status, body["error"]) == (403, "forbidden")
    status, body = await call(
        http,
        "POST",
        f"{url}/{theirs['id']}/read?user=bob",
        bearer(server, "ada"),
        json={"user": "bob"},
    )
    assert status == 403
    for missing in (everyone["id"] + 100, "abc", 0):
        status, body = await call(http, "POST", f"{url}/{missing}/read", bearer(server, "ada"))
        assert (status, body["error"]) == (404, "not_found")
    status, body = await call(http, "POST", f"{url}/{everyone['id']}/read")
    assert status == 401
    for _ in range(2):  # idempotent
        status, body = await call(
            http, "POST", f"{url}/{everyone['id']}/read", bearer(server, "ada")
        )
        assert (status, body["id"], body["read"]) == (200, everyone["id"], True)
    # bob still has both unread: ada's read is hers, the 403 changed nothing.
    _, bobs = await inbox(http, server, "bob")
    assert bobs["unread_count"] == 2
    # A forged body on read-all marks the caller's inbox, not bob's.
    status, body = await call(
        http, "POST", f"{url}/read-all", bearer(server, "ada"), json={"user": "bob"}
    )
    assert (status, body) == (200, {"marked": 0, "unread_count": 0})
    assert (await inbox(http, server, "bob"))[1]["unread_count"] == 2


# -- live delivery ------------------------------------------------------------------------


async def test_live_delivery_and_resume_with_last_event_id_exactly_once(server, http):
    response, stream = await open_stream(http, server, "ada", own("ada"), "private-notifications")
    _, first = await send(http, server, {"user": "ada", "title": "one"})
    _, second = await send(http, server, {"title": "two"})
    await send(http, server, {"user": "bob", "title": "not for ada"})
    events = await stream.take(2, "notification")
    assert [json.loads(e.data)["data"] for e in events] == [first, second]
    assert json.loads(events[1].data)["channel"] == "private-notifications"
    last_id = events[-1].id
    response.close()

    missed = [
        (await send(http, server, {"user": "ada", "title": f"missed {i}"}))[1] for i in range(3)
    ]
    missed.append((await send(http, server, {"title": "missed broadcast"}))[1])
    response, stream = await open_stream(
        http,
        server,
        "ada",
        own("ada"),
        "private-notifications",
        headers={"Last-Event-ID": last_id},
    )
    resumed = await stream.take(4, "notification")
    assert [json.loads(e.data)["data"] for e in resumed] == missed
    _, live = await send(http, server, {"user": "ada", "title": "live again"})
    (event,) = await stream.take(1, "notification")
    assert json.loads(event.data)["data"] == live  # nothing repeated before it
    response.close()


async def test_read_all_syncs_every_stream_of_the_user(server, http):
    ids = [(await send(http, server, {"user": "ada", "title": f"n{i}"}))[1]["id"] for i in range(3)]
    _, broadcast = await send(http, server, {"title": "all"})
    response, other_session = await open_stream(http, server, "ada", own("ada"))
    status, body = await call(
        http, "POST", f"{server.url}/api/notifications/{ids[0]}/read", bearer(server, "ada")
    )
    assert status == 200
    (one,) = await other_session.take(1, "read")
    assert json.loads(one.data)["data"] == {"ids": [ids[0]], "all": False, "unread_count": 3}
    status, body = await call(
        http, "POST", f"{server.url}/api/notifications/read-all", bearer(server, "ada")
    )
    assert (status, body) == (200, {"marked": 3, "unread_count": 0})
    (everything,) = await other_session.take(1, "read")
    assert json.loads(everything.data)["data"] == {
        "ids": [],
        "all": True,
        "up_to": broadcast["id"],
        "unread_count": 0,
    }
    response.close()
    _, page = await inbox(http, server, "ada")
    assert page["unread_count"] == 0 and all(n["read"] for n in page["notifications"])


async def test_stream_access_to_notification_channels(server, http):
    url = f"{server.url}/api/events"
    async with http.get(f"{url}?channel={own('bob')}", headers=bearer(server, "ada")) as response:
        assert (response.status, (await response.json())["error"]) == (403, "forbidden")
    async with http.get(
        f"{url}?channel={own('ada')}&channel={own('bob')}", headers=bearer(server, "ada")
    ) as response:
        assert response.status == 403
    async with http.get(f"{url}?channel={own('ada')}") as response:
        assert response.status == 401
    async with http.get(
        f"{url}?channel={own('ada')}", headers={"Authorization": "Bearer x"}
    ) as response:
        assert response.status == 401
    async with http.get(f"{url}?channel=presence-room", headers=bearer(server, "ada")) as response:
        assert response.status == 403
    async with http.get(f"{url}?channel=private-team", headers=bearer(server, "ada")) as response:
        assert response.status == 403
    # The identity cookie from /api/identity opens the visitor's own channel.
    async with http.post(f"{server.url}/api/identity", json={"name": "Visitor"}) as response:
        me, cookie = await response.json(), response.cookies["dashboard_user"].value
    cookie_header = {"Cookie": f"dashboard_user={cookie}"}
    async with http.get(
        f"{url}?channel={own(me['user_id'])}&channel=private-notifications", headers=cookie_header
    ) as response:
        assert response.status == 200
        stream = RawStream(response)
        await stream.take(1, "connected")
        _, sent = await send(http, server, {"user": me["user_id"], "title": "hello visitor"})
        (event,) = await stream.take(1, "notification")
        assert json.loads(event.data)["data"] == sent
    async with http.get(f"{url}?channel={own('ada')}", headers=cookie_header) as response:
        assert response.status == 403


async def test_pusher_auth_signs_the_broadcast_channel_for_any_identified_user(server, http):
    url = f"{server.url}/pusher/auth"
    fields = {"socket_id": "1.2", "channel_name": "private-notifications"}
    status, body = await call(http, "POST", url, bearer(server, "ada"), json=fields)
    app = server.ctx.app
    assert (status, body) == (
        200,
        {"auth": sign_channel(app.key, app.secret, "1.2", "private-notifications")},
    )
    status, _ = await call(http, "POST", url, json=fields)
    assert status == 401
    fields["channel_name"] = own("bob")
    status, _ = await call(http, "POST", url, bearer(server, "ada"), json=fields)
    assert status == 403


# -- durability and the notify() helper ---------------------------------------------------


async def test_notifications_and_read_state_survive_a_server_restart(db_path, http):
    first = make_server(db_path)
    await first.start()
    try:
        _, a = await send(http, first, {"user": "ada", "title": "a"})
        _, b = await send(http, first, {"title": "b"})
        await call(
            http, "POST", f"{first.url}/api/notifications/{b['id']}/read", bearer(first, "ada")
        )
    finally:
        await first.stop()
    second = make_server(db_path)
    await second.start()
    try:
        _, page = await inbox(http, second, "ada")
        assert [(n["id"], n["read"]) for n in page["notifications"]] == [
            (b["id"], True),
            (a["id"], False),
        ]
        assert page["unread_count"] == 1
        _, c = await send(http, second, {"title": "c"})
        assert c["id"] > b["id"]
    finally:
        await second.stop()


async def test_notify_over_http_and_in_process(server, http, monkeypatch):
    monkeypatch.delenv("DASHBOARD_TOKEN", raising=False)
    sent = await notify(
        "Export done",
        "3 files",
        user="ada",
        type="success",
        link="/exports",
        data={"files": 3},
        url=server.url,
        token=TOKEN,
    )
    assert (sent.user, sent.type, sent.title, sent.data, sent.read) == (
        "ada",
        "success",
        "Export done",
        {"files": 3},
        False,
    )
    with pytest.raises(NotifyError, match="400: type must be one of") as refused:
        await notify("x", type="fatal", url=server.url, token=TOKEN)
    assert (refused.value.status, refused.value.code) == (400, "invalid_notification")
    with pytest.raises(NotifyError, match="401: invalid token"):
        await notify("x", url=server.url, token="wrong")
    # No token given, in the environment, or kept by a local server beside $DASHBOARD_DB.
    monkeypatch.setenv("DASHBOARD_DB", "/nonexistent/dashboard.sqlite3")
    with pytest.raises(NotifyError, match="no token"):
        await notify("x", url=server.url)
    monkeypatch.setenv("DASHBOARD_TOKEN", TOKEN)
    monkeypatch.setenv("DASHBOARD_URL", server.url)
    assert (await notify("from the environment")).user == "*"
    local = await notify("in-process", user="ada", service=server.ctx.notifications)
    _, page = await inbox(http, server, "ada")
    assert [n["title"] for n in page["notifications"]] == [
        "in-process",
        "from the environment",
        "Export done",
    ]
    assert page["notifications"][0]["id"] == local.id


async def test_notify_to_an_unreachable_server():
    with pytest.raises(NotifyError, match="cannot reach") as info:
        await notify("x", url="http://127.0.0.1:9", token="t")
    assert info.value.status is None


@pytest.mark.parametrize("raw", ["%EF%BC%91", "1_0", "%201%20", "+1", "9" * 30])
async def test_ids_are_ascii_decimal_only(server, http, raw):
    # int() alone reads "１" (fullwidth), "1_0" and " 1 " as 1, 10 and 1.
    _, sent = await send(http, server, {"user": "ada", "title": "one"})
    status, body = await call(
        http, "POST", f"{server.url}/api/notifications/{raw}/read", bearer(server, "ada")
    )
    assert (status, body["error"]) == (404, "not_found")
