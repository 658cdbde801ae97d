"""`dashboard notify`, run as a real subprocess against a real server with an SQLite file."""

from __future__ import annotations

import pytest

from dashboard.server import DashboardServer
from dashboard.store import SQLiteStore
from tests.test_cli import TOKEN, run_cli


@pytest.fixture
async def server(tmp_path):
    srv = DashboardServer(port=0, token=TOKEN, store=SQLiteStore(tmp_path / "n.db"))
    await srv.start()
    yield srv
    await srv.stop()


async def test_notify_prints_the_id_and_stores_the_notification(server):
    sub = await server.ctx.notifications.subscribe("ada")
    code, out, err = await run_cli(
        "notify",
        "Backup finished",
        "--message",
        "42 GB in 3 min",
        "--type",
        "success",
        "--user",
        "ada",
        "--link",
        "https://backups.example/42",
        "--data",
        '{"gb": 42}',
        "--url",
        server.url,
        env={"DASHBOARD_TOKEN": TOKEN},
    )
    assert (code, err) == (0, "")
    page = await server.ctx.notifications.inbox("ada")
    (stored,) = page.notifications
    assert out.strip() == str(stored.id)
    assert (stored.title, stored.message, stored.type, stored.link, stored.data) == (
        "Backup finished",
        "42 GB in 3 min",
        "success",
        "https://backups.example/42",
        {"gb": 42},
    )
    event = sub.next_nowait()[0]
    assert (event.channel, event.name, event.data["id"]) == (
        "private-user-ada",
        "notification",
        stored.id,
    )
    sub.close()
    # The defaults: a broadcast of type info, token from --token, URL from $DASHBOARD_URL.
    code, out, err = await run_cli(
        "notify", "To everyone", "--token", TOKEN, env={"DASHBOARD_URL": server.url}
    )
    assert code == 0, err
    (broadcast,) = (await server.ctx.notifications.inbox("bob")).notifications
    assert (broadcast.user, broadcast.type, str(broadcast.id)) == ("*", "info", out.strip())


@pytest.mark.parametrize(
    "args, env, message",
    [
        (["t", "--type", "fatal"], {"DASHBOARD_TOKEN": TOKEN}, "400: type must be one of"),
        ([""], {"DASHBOARD_TOKEN": TOKEN}, "400: title is required and must not be empty"),
        (["t", "--link", "javascript:x"], {"DASHBOARD_TOKEN": TOKEN}, "400: link must be"),
        (["t", "--user", "a b"], {"DASHBOARD_TOKEN": TOKEN}, "400: user id 'a b' cannot"),
        (["t", "--data", "{bad"], {"DASHBOARD_TOKEN": TOKEN}, "--data is not valid JSON"),
        (["t", "--message", "m" * 2001], {"DASHBOARD_TOKEN": TOKEN}, "the limit is 2000"),
        (["t"], {"DASHBOARD_TOKEN": "wrong"}, "401: invalid token"),
        (
            ["t"],
            {"DASHBOARD_TOKEN": "", "DASHBOARD_DB": "/nonexistent/dashboard.sqlite3"},
            "no token",
        ),
    ],
)
async def test_notify_errors_are_one_line(server, args, env, message):
    code, out, err = await run_cli("notify", *args, "--url", server.url, env=env)
    assert code == 1 and out == ""
    assert err.startswith("dashboard: error: ") and message in err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert (await server.ctx.notifications.inbox("ada")).notifications == []


async def test_notify_without_a_store_and_to_a_bad_url():
    srv = DashboardServer(port=0, token=TOKEN)
    await srv.start()
    try:
        code, _, err = await run_cli(
            "notify", "t", "--url", srv.url, env={"DASHBOARD_TOKEN": TOKEN}
        )
        assert code == 1 and "404: this server has no store" in err and err.count("\n") == 1
    finally:
        await srv.stop()
    code, _, err = await run_cli("notify", "t", "--url", "ftp://x", env={"DASHBOARD_TOKEN": "x"})
    assert code == 1 and "is not an http(s) URL" in err
