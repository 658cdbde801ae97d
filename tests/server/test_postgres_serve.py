"""Servers on PostgreSQL: two real ``dashboard serve`` processes sharing one database behave as
one for chat history, notification read state and secrets; a database outage is a 503 with
``Retry-After`` that ends by itself; a bad or unreachable ``--db`` is a one-line CLI error.
"""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest

from dashboard.core.user_tokens import issue_user_token, verify_user_token
from dashboard.server import DashboardServer
from tests.conftest import skip_or_fail
from tests.postgres import PrivatePostgres, create_schema, with_database
from tests.processes import dashboard_process, free_port
from tests.test_cli import run_cli


@pytest.fixture
def url(postgres_database):
    """A schema of this test's own in the run's database."""
    return with_database(
        postgres_database, postgres_database.rsplit("/", 1)[1], create_schema(postgres_database)
    )


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def call(http, method, url, token, **kwargs):
    async with http.request(method, url, headers=bearer(token), **kwargs) as response:
        return response.status, await response.json()


async def test_two_processes_on_one_database_share_history_inbox_and_secrets(url):
    from dashboard.store.postgres import read_kept_secrets

    unset = {"DASHBOARD_TOKEN": "", "DASHBOARD_APP_SECRET": ""}  # generated, kept in the db
    async with (
        dashboard_process("--db", url, "--no-demo", env=unset) as a,
        dashboard_process("--db", url, "--no-demo", env=unset) as b,
        aiohttp.ClientSession() as http,
    ):
        assert "kept in the database (dashboard_secrets)" in "".join(a.startup)
        kept = read_kept_secrets(url)  # what `dashboard token --db URL` reads
        ada = issue_user_token(kept.app_secret, "ada", "Ada")  # valid on both: one secret

        status, posted = await call(
            http, "POST", f"{a.url}/api/rooms/lobby/messages", ada, json={"text": "from A"}
        )
        assert status == 201, posted
        status, history = await call(http, "GET", f"{b.url}/api/rooms/lobby/messages", ada)
        assert status == 200 and history["messages"] == [posted]

        # The publish token, also shared, sends on B; ada reads it on A; B knows.
        status, sent = await call(
            http, "POST", f"{b.url}/api/notifications", kept.publish_token,
            json={"user": "ada", "title": "deploy done"},
        )  # fmt: skip
        assert status == 201, sent
        status, read = await call(http, "POST", f"{a.url}/api/notifications/{sent['id']}/read", ada)
        assert status == 200 and read["read"] is True
        status, inbox = await call(http, "GET", f"{b.url}/api/notifications", ada)
        assert status == 200 and inbox["unread_count"] == 0
        assert [(n["id"], n["read"]) for n in inbox["notifications"]] == [(sent["id"], True)]


@pytest.mark.usefixtures("psycopg_installed")
async def test_a_database_outage_is_a_503_with_retry_after_then_service_resumes():
    try:
        database = PrivatePostgres().init()
    except Exception as exc:
        skip_or_fail(f"cannot start a private PostgreSQL here: {getattr(exc, 'stderr', exc)}")
    try:
        from dashboard.store import PostgresStore

        store = PostgresStore(database.url, timeout=1.0, connect_timeout=2)
        server = DashboardServer(port=0, store=store)
        await server.start()
        token = issue_user_token(server.ctx.app.secret, "ada", "Ada")
        messages = f"{server.url}/api/rooms/lobby/messages"
        try:
            async with aiohttp.ClientSession() as http:
                assert (await call(http, "POST", messages, token, json={"text": "one"}))[0] == 201
                database.stop("immediate")
                for method, body in (("POST", {"json": {"text": "two"}}), ("GET", {})):
                    started = time.monotonic()
                    async with http.request(
                        method, messages, headers=bearer(token), **body
                    ) as response:
                        assert response.status == 503
                        assert response.headers["Retry-After"].isdigit()
                        assert (await response.json())["error"] == "store_unavailable"
                    assert time.monotonic() - started < 3.0
                # Health answers at once with its latest report and checks in the background.
                health = await health_when(http, server, "degraded")
                assert health["store"]["state"] == "down" and health["store"]["last_error"]
                database.start()
                deadline = time.monotonic() + 20
                while (await call(http, "POST", messages, token, json={"text": "three"}))[0] != 201:
                    assert time.monotonic() < deadline, "no recovery within 20 s"
                    await asyncio.sleep(0.2)
                status, page = await call(http, "GET", messages, token)
                assert [m["text"] for m in page["messages"]] == ["one", "three"]
                health = await health_when(http, server, "ok")
                assert health["store"]["state"] == "ok"
                assert health["store"]["kind"] == "postgresql" and "pool" in health["store"]
        finally:
            await server.stop()
    finally:
        database.destroy()


async def health_when(http, server, status: str, within: float = 10.0) -> dict:
    """/api/health once it says ``status``; every answer must come at once."""
    deadline = time.monotonic() + within
    while True:
        started = time.monotonic()
        async with http.get(f"{server.url}/api/health") as response:
            health = await response.json()
        assert response.status == 200 and time.monotonic() - started < 1.0
        if health["status"] == status:
            return health
        assert time.monotonic() < deadline, f"health still says {health}"
        await asyncio.sleep(0.2)


@pytest.fixture(params=["sqlite", "postgres"])
def either_store(request, tmp_path):
    if request.param == "sqlite":
        return tmp_path / "dashboard.sqlite3"
    return request.getfixturevalue("url")


async def test_nul_is_the_same_400_on_either_store(either_store):
    server = DashboardServer(port=0, store=either_store)
    await server.start()
    try:
        ada = issue_user_token(server.ctx.app.secret, "ada", "Ada")
        async with aiohttp.ClientSession() as http:
            status, body = await call(
                http, "POST", f"{server.url}/api/rooms/lobby/messages", ada,
                json={"text": "nul \u0000 here"},
            )  # fmt: skip
            assert (status, body["error"]) == (400, "invalid_message"), body
            assert body["message"] == "text must not contain NUL characters (\\x00)"
            status, body = await call(
                http, "POST", f"{server.url}/api/notifications", server.token,
                json={"user": "ada", "title": "a\u0000b"},
            )  # fmt: skip
            assert (status, body["error"]) == (400, "invalid_notification"), body
            assert "NUL" in body["message"]
    finally:
        await server.stop()


@pytest.mark.usefixtures("psycopg_installed")
@pytest.mark.parametrize(
    "db, message",
    [
        ("postgresql://postgres@127.0.0.1:{free}/x", "is unavailable"),
        ("postgresql://localhost:nope/x", "bad port"),
        ("postgresql+asyncpg://localhost/x", "plain postgresql:// URL"),
    ],
)
async def test_serve_with_a_bad_or_unreachable_database_is_a_one_line_error(db, message):
    code, _, err = await run_cli("serve", "--port", "0", "--db", db.format(free=free_port()))
    assert code == 1 and err.count("\n") == 1 and "Traceback" not in err
    assert message in err and "--db" in err


async def test_token_reads_the_secret_from_the_database(url):
    server = DashboardServer(port=0, store=url)
    await server.start()
    try:
        code, out, err = await run_cli("token", "carol", "--db", url)
        assert (code, err) == (0, "")
        # $DASHBOARD_DB may be a URL too (it must not be folded like a path).
        code, again, err = await run_cli("token", "dave", env={"DASHBOARD_DB": url})
        assert (code, err) == (0, "")
        dave = verify_user_token(server.ctx.app.secret, again.strip())
        assert dave.user_id == "dave"
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"{server.url}/api/identity", headers=bearer(out.strip())) as response,
        ):
            assert (await response.json())["user_id"] == "carol"
    finally:
        await server.stop()
