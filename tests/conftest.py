"""Suite-wide fixtures and the rule that browser, notebook and JupyterLab tests never skip
under CI=true."""

from __future__ import annotations

import os

import pytest

# redis_client / redis_prefix: a real Redis, and a key prefix of the test's own.
pytest_plugins = ["tests.redis_support"]

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def skip_or_fail(reason: str) -> None:
    """Skip on a laptop that lacks a browser or kernel; fail in CI, where it must be there."""
    if IN_CI:
        pytest.fail(f"required in CI: {reason}", pytrace=False)
    pytest.skip(reason)


_skipped_required: list[str] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if (
        report.skipped
        and IN_CI
        and any(m in report.keywords for m in ("browser", "notebook", "jupyter"))
    ):
        _skipped_required.append(report.nodeid)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _skipped_required:
        print(
            f"\nCI=true but these browser/notebook/jupyter tests were skipped: {_skipped_required}"
        )
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture(autouse=True, scope="session")
def isolated_database(tmp_path_factory: pytest.TempPathFactory):
    """Every `dashboard serve` the suite starts writes to a scratch file, never the user's."""
    os.environ["DASHBOARD_DB"] = str(tmp_path_factory.mktemp("db") / "dashboard.sqlite3")
    yield
    os.environ.pop("DASHBOARD_DB", None)


@pytest.fixture(autouse=True, scope="session")
def offline_ai():
    """No test reaches a real model: servers the suite starts (and their notebooks) use the
    offline demo provider unless a test points them at its own fake server."""
    saved = {key: os.environ.pop(key) for key in list(os.environ) if key.startswith("OPENAI_")}
    yield
    os.environ.update(saved)


@pytest.fixture
async def start_server(tmp_path):
    """``await start_server(**options)``: a started DashboardServer on a free port, with a store
    of its own in ``tmp_path`` unless ``store=`` says otherwise; all stopped after the test."""
    from dashboard.server import DashboardServer

    started = []

    async def start(**options):
        options.setdefault("store", tmp_path / f"dashboard{len(started)}.sqlite3")
        server = DashboardServer(port=0, **options)
        await server.start()
        started.append(server)
        return server

    yield start
    for server in started:
        await server.stop()


@pytest.fixture
async def store_server(tmp_path):
    """A real DashboardServer with a real SQLite store: chat rooms and notification inboxes."""
    from dashboard.server import DashboardServer

    server = DashboardServer(port=0, store=tmp_path / "dashboard.sqlite3")
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def connect_user(store_server):
    """``connect_user(user_id, name=None, **options)``: a UserConnection to ``store_server`` as
    that user (a token signed with its secret); every one is closed after the test."""
    from dashboard.client.connection import UserConnection
    from dashboard.core.user_tokens import issue_user_token

    opened: list[UserConnection] = []

    def connect(user_id: str, name: str | None = None, **options) -> UserConnection:
        secret, key = store_server.ctx.app.secret, store_server.ctx.app.key
        token = issue_user_token(secret, user_id, name or user_id.title())
        opened.append(UserConnection(store_server.url, key, token, **options))
        return opened[-1]

    yield connect
    for connection in opened:
        await connection.aclose()


@pytest.fixture
async def fake():
    """A fake OpenAI-compatible server (tests/fake_openai.py) on a free loopback port."""
    from tests.fake_openai import FakeOpenAI

    server = await FakeOpenAI().start()
    yield server
    await server.stop()


@pytest.fixture(scope="session")
def psycopg_installed():
    """Skips a PostgreSQL test where psycopg is missing; fails under CI=true."""
    try:
        import psycopg  # noqa: F401
        import psycopg_pool  # noqa: F401
    except ImportError:
        skip_or_fail("psycopg is not installed (pip install -e '.[postgres]')")


@pytest.fixture(scope="session")
def postgres_database():
    """A fresh PostgreSQL database for this run (tests/postgres.py), dropped at the end: its
    URL. Skips without a server or psycopg; fails under CI=true."""
    from tests.postgres import scratch_database, unavailable_reason

    reason = unavailable_reason()
    if reason:
        skip_or_fail(reason)
    with scratch_database() as url:
        yield url
