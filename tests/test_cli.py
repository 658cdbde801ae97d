"""The `dashboard` command, run as a real subprocess against real servers."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sys

import aiohttp
import pytest

from dashboard.server import DashboardServer
from tests.cursors import cursor_for

TOKEN = "cli-publish-token-0123"


async def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 30):
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "dashboard",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, **(env or {})},
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout)
    return process.returncode, out.decode(), err.decode()


@pytest.fixture
async def server():
    srv = DashboardServer(port=0, token=TOKEN)
    await srv.start()
    yield srv
    await srv.stop()


async def test_publish_prints_the_event_id(server):
    sub = await server.hub.subscribe(["metrics"])
    code, out, err = await run_cli(
        "publish",
        "metrics",
        "cpu",
        '{"value": 3}',
        "--url",
        server.url,
        env={"DASHBOARD_TOKEN": TOKEN},
    )
    assert (code, err) == (0, "")
    assert out.strip() == cursor_for(["metrics"], server.hub.epoch, {"metrics": 1})
    assert sub.next_nowait()[0].data == {"value": 3}


async def test_publish_honours_dashboard_url_like_notify(server):
    sub = await server.hub.subscribe(["metrics"])
    code, out, err = await run_cli(
        "publish",
        "metrics",
        "cpu",
        '{"value": 4}',
        env={"DASHBOARD_TOKEN": TOKEN, "DASHBOARD_URL": server.url},
    )
    assert (code, err) == (0, "")
    assert sub.next_nowait()[0].data == {"value": 4}


@pytest.mark.parametrize(
    "args, env, message",
    [
        (["metrics", "cpu", "{bad"], {"DASHBOARD_TOKEN": TOKEN}, "DATA is not valid JSON"),
        (["metrics", "cpu", "1"], {"DASHBOARD_TOKEN": "wrong"}, "401: invalid token"),
        (["bad channel", "cpu", "1"], {"DASHBOARD_TOKEN": TOKEN}, "400: channel 'bad channel'"),
        # No token given, and no local server's secrets file to take one from.
        (
            ["metrics", "cpu", "1"],
            {"DASHBOARD_TOKEN": "", "DASHBOARD_DB": "/nonexistent/dashboard.sqlite3"},
            "no token",
        ),
    ],
)
async def test_publish_errors_are_one_line(server, args, env, message):
    code, out, err = await run_cli("publish", *args, "--url", server.url, env=env)
    assert code == 1 and out == ""
    assert err.startswith("dashboard: error: ") and message in err
    assert err.count("\n") == 1 and "Traceback" not in err


async def test_publish_to_unreachable_server_and_bad_url():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    code, _, err = await run_cli(
        "publish", "a", "b", "1", "--url", f"http://127.0.0.1:{port}", env={"DASHBOARD_TOKEN": "x"}
    )
    assert code == 1 and "cannot reach" in err and err.count("\n") == 1
    code, _, err = await run_cli("publish", "a", "b", "1", "--url", "ftp://x")
    assert code == 1 and "is not an http(s) URL" in err


async def test_tail_prints_events_from_a_stream(server):
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "dashboard",
        "tail",
        server.url,
        "--channel",
        "metrics",
        "--json",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        connected = json.loads(await asyncio.wait_for(process.stdout.readline(), 20))
        assert connected["event"] == "connected"
        await server.hub.publish("metrics", "cpu", {"value": 7})
        line = json.loads(await asyncio.wait_for(process.stdout.readline(), 10))
        assert line["event"] == "cpu"
        assert json.loads(line["data"])["data"] == {"value": 7}
    finally:
        process.terminate()
        await process.wait()


async def test_tail_stops_on_client_error(server):
    code, out, err = await run_cli("tail", f"{server.url}/api/events?channel=bad%20name")
    assert code == 1 and "invalid_channel" not in out
    assert "channel 'bad name'" in err and err.count("\n") == 1


async def test_serve_runs_the_dashboard_and_shuts_down_cleanly():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "dashboard",
        "serve",
        "--port",
        str(port),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "DASHBOARD_TOKEN": TOKEN, "DASHBOARD_APP_KEY": "team-key"},
    )
    try:
        while True:
            line = (await asyncio.wait_for(process.stdout.readline(), 60)).decode()
            assert line, "serve exited early"
            if line.startswith("Pusher:"):
                assert f"127.0.0.1:{port}/app/team-key" in line
                break
        url = f"http://127.0.0.1:{port}"
        async with aiohttp.ClientSession() as http:
            # The app key comes from DASHBOARD_APP_KEY: the Pusher socket answers on it.
            ws_url = f"ws://127.0.0.1:{port}/app/team-key?protocol=7"
            async with http.ws_connect(ws_url) as ws:
                established = await asyncio.wait_for(ws.receive_json(), 10)
                assert established["event"] == "pusher:connection_established"
            async with http.get(f"{url}/api/health") as response:
                assert (await response.json())["status"] == "ok"
            async with http.get(f"{url}/") as response:
                assert response.status == 200
                assert "<html" in (await response.text()).lower()
            async with http.get(f"{url}/api/events?channel=metrics") as response:
                body = b""
                while body.count(b"event: cpu") < 1:  # the demo source publishes metrics
                    body += await asyncio.wait_for(response.content.readany(), 10)

            # A second server on the same port fails with one clear line.
            code, _, err = await run_cli("serve", "--port", str(port))
            assert code == 1 and "in use" in err and err.count("\n") == 1
    finally:
        process.terminate()
        code = await asyncio.wait_for(process.wait(), 20)
    assert code == 0


@pytest.mark.parametrize(
    "args, message",
    [
        (["serve", "--port", "70000"], "out of range"),
        (["serve", "--feed", "not a url"], "is not an http(s) URL"),
        (["tail", "localhost:5006"], "is not an http(s) URL"),
        (["serve", "--basic-auth", "missing/users.json"], "no such file"),
    ],
)
async def test_bad_arguments_are_one_line_errors(args, message):
    code, _, err = await run_cli(*args)
    assert code == 1 and message in err and err.count("\n") == 1


@pytest.mark.parametrize(
    "args, message",
    [
        (["serve", "--port", "abc"], "dashboard serve: error: argument --port: invalid int"),
        (["serve", "--bogus"], "dashboard serve: error: unrecognized arguments: --bogus"),
        (["serve", "--allow-channel", "garbage"], "is not PATTERN=USERS"),
        (["publish"], "dashboard publish: error: the following arguments are required"),
        (["bogus"], "dashboard: error: argument COMMAND: invalid choice: 'bogus'"),
        ([], "dashboard: error: the following arguments are required: COMMAND"),
    ],
)
async def test_a_wrong_option_or_value_is_one_line_too(args, message):
    code, out, err = await run_cli(*args)
    assert code == 2 and out == "" and err.count("\n") == 1, err
    assert message in err and "--help)" in err and "usage:" not in err


@pytest.mark.parametrize("content", ["{not json", '["ada"]', '{"ada": 1}', "{}"])
async def test_serve_refuses_a_malformed_login_file(tmp_path, content):
    users = tmp_path / "users.json"
    users.write_text(content)
    code, _, err = await run_cli("serve", "--basic-auth", str(users))
    assert code == 1 and "--basic-auth" in err and err.count("\n") == 1


# -- dashboard token --------------------------------------------------------------------


SECRET = "cli-secret-0123456789"


async def test_token_prints_a_user_token_that_verifies():
    from dashboard.core.user_tokens import UserIdentity, verify_user_token

    code, out, err = await run_cli("token", "alice", "--name", "Ada", "--secret", SECRET)
    assert (code, err) == (0, "")
    assert out.count("\n") == 1
    assert verify_user_token(SECRET, out.strip()) == UserIdentity("alice", "Ada")
    env = {"DASHBOARD_APP_SECRET": "env-secret-0123456789"}
    code, out, _ = await run_cli("token", "bob", env=env)
    assert (
        code == 0 and verify_user_token(env["DASHBOARD_APP_SECRET"], out.strip()).user_id == "bob"
    )


async def test_token_ttl_is_applied():
    import time

    from dashboard.core.user_tokens import ExpiredUserToken, verify_user_token

    code, out, _ = await run_cli("token", "alice", "--ttl", "60", "--secret", SECRET)
    assert code == 0
    verify_user_token(SECRET, out.strip(), now=time.time() + 30)
    with pytest.raises(ExpiredUserToken):
        verify_user_token(SECRET, out.strip(), now=time.time() + 61)


async def test_token_signs_with_the_secret_the_server_keeps_beside_its_database(tmp_path):
    database = tmp_path / "dashboard.sqlite3"
    server = DashboardServer(port=0, store=database)
    await server.start()
    try:
        env = {"DASHBOARD_APP_SECRET": "", "DASHBOARD_DB": str(database)}
        code, out, err = await run_cli("token", "carol", env=env)
        assert (code, err) == (0, "")
        headers = {"Authorization": f"Bearer {out.strip()}"}
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"{server.url}/api/identity", headers=headers) as response,
        ):
            assert (await response.json())["user_id"] == "carol"
    finally:
        await server.stop()


async def test_token_without_any_secret_is_a_one_line_error(tmp_path):
    env = {"DASHBOARD_APP_SECRET": "", "DASHBOARD_DB": str(tmp_path / "none.sqlite3")}
    code, out, err = await run_cli("token", "carol", env=env)
    assert code == 1 and out == "" and err.count("\n") == 1
    assert "no secret" in err and "none.secrets.json" in err


@pytest.mark.parametrize("secret", ["dashboard-secret", "short"])
async def test_token_refuses_a_well_known_or_short_secret(secret):
    code, out, err = await run_cli("token", "carol", "--secret", secret)
    assert code == 1 and out == "" and err.count("\n") == 1 and "app secret" in err


@pytest.mark.parametrize(
    "args, message",
    [
        (["token", ""], "user id must not be empty"),
        (["token", "x" * 129], "the limit is 128"),
        (["token", "alice", "--name", " "], "name must not be empty"),
        (["token", "alice", "--ttl", "0"], "--ttl"),
        (["token", "alice", "--ttl", "inf"], "--ttl"),
    ],
)
async def test_token_bad_input_is_a_one_line_error(args, message):
    code, out, err = await run_cli(*args, "--secret", SECRET)
    assert code == 1 and out == "" and message in err and err.count("\n") == 1


async def test_serve_with_a_corrupt_database_is_a_one_line_error(tmp_path):
    bad = tmp_path / "chat.sqlite3"
    bad.write_text("this is not a database\n" * 100)
    code, _, err = await run_cli("serve", "--port", "0", "--db", str(bad))
    assert code == 1 and err.count("\n") == 1 and "Traceback" not in err
    assert str(bad) in err and "--db" in err
    code, _, err = await run_cli("serve", "--port", "0", "--db", "mysql://localhost/x")
    assert code == 1 and "unknown store scheme" in err and err.count("\n") == 1


async def test_tail_into_a_closed_pipe_stops_quietly(server):
    # `dashboard tail ... --json | head -3`: the reader leaves after three lines, and tail
    # learns it at its next write.
    command = f"{sys.executable} -m dashboard tail {server.url} --channel metrics --json | head -3"
    process = await asyncio.create_subprocess_shell(
        command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    finished = asyncio.ensure_future(process.communicate())
    for n in range(300):  # at most 30 s
        if finished.done():
            break
        await server.hub.publish("metrics", "cpu", {"value": n})
        await asyncio.sleep(0.1)
    out, err = await asyncio.wait_for(finished, 5)
    assert len(out.decode().splitlines()) == 3
    assert b"Traceback" not in err and b"BrokenPipe" not in err, err.decode()


@pytest.mark.parametrize(
    "feed, channels",
    [
        ("http://127.0.0.1:9/", ("metrics", "deploys", "alerts")),  # a dashboard's base URL
        ("http://127.0.0.1:9/api/events", ("metrics", "deploys", "alerts")),
        ("http://127.0.0.1:9/api/events?channel=orders&x=1", ("orders",)),
        ("http://127.0.0.1:9/other/sse?token=t", ()),  # someone else's stream, as it is
    ],
)
def test_feed_urls_are_read_as_a_user_means_them(feed, channels):
    from dashboard.cli import _feed

    url, parsed = _feed(feed)
    assert parsed == channels and "channel=" not in url


async def test_serve_refuses_a_feed_that_refuses_the_stream(server):
    code, _, err = await run_cli(
        "serve", "--port", "0", "--feed", f"{server.url}/api/events?channel=private-x"
    )
    assert code == 1 and err.count("\n") == 1 and "--feed" in err and "401" in err


async def test_serve_refuses_a_weak_publish_token():
    code, _, err = await run_cli("serve", "--port", "0", env={"DASHBOARD_TOKEN": "abc"})
    assert code == 1 and err.count("\n") == 1 and "publish token" in err and "16" in err


async def test_tail_with_a_user_token_reads_a_login_servers_stream(tmp_path):
    from dashboard.core.user_tokens import issue_user_token

    server = DashboardServer(port=0, basic_auth="login-password-1", token=TOKEN)
    await server.start()
    try:
        code, _, err = await run_cli("tail", server.url, "--channel", "metrics")
        assert code == 1 and "401" in err and err.count("\n") == 1  # no token, no stream
        token = issue_user_token(server.ctx.app.secret, "ada")
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "dashboard", "tail", server.url, "--channel", "metrics",
            "--json", "--token", token, stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        try:
            connected = json.loads(await asyncio.wait_for(process.stdout.readline(), 20))
            assert connected["event"] == "connected"
        finally:
            process.terminate()
            await process.wait()
    finally:
        await server.stop()


@pytest.mark.parametrize(
    "database, shown",
    [
        ("/data/dashboard.sqlite3", "/data/dashboard.sqlite3"),
        ("postgresql://atk:S3cret@h:5432/db", "postgresql://atk:***@h:5432/db"),
        ("postgresql://atk@h:5432/db?password=S3cret", "postgresql://atk@h:5432/db?password=***"),
    ],
)
def test_the_banner_shows_no_database_password(database, shown):
    from dashboard.cli import _shown_database

    assert _shown_database(database) == shown
