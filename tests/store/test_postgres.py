"""What only a shared database server can do wrong: several processes migrating or writing at
once, a restart, an outage, and the URL factory. The backend-neutral behaviour is in
``test_store.py`` and ``test_notifications.py``, which run on PostgreSQL too.
"""

import asyncio
import sys
import time

import pytest

from dashboard.store import (
    PostgresStore,
    StoreError,
    StoreUnavailable,
    UnsupportedStore,
    store_from_url,
)
from dashboard.store.postgres_schema import MIGRATIONS, SCHEMA_VERSION
from tests.conftest import skip_or_fail
from tests.postgres import PrivatePostgres, create_schema, with_database

pytestmark = pytest.mark.usefixtures("psycopg_installed")


@pytest.fixture
def url(postgres_database):
    """A schema of this test's own in the run's database."""
    return with_database(
        postgres_database, postgres_database.rsplit("/", 1)[1], create_schema(postgres_database)
    )


@pytest.fixture
def private_postgres():
    """A PostgreSQL server this test may stop and start (tests/postgres.py)."""
    try:
        server = PrivatePostgres().init()
    except (OSError, RuntimeError, KeyError) as exc:
        skip_or_fail(f"cannot start a private PostgreSQL here: {exc}")
    except Exception as exc:  # CalledProcessError: say what initdb/pg_ctl printed
        skip_or_fail(f"cannot start a private PostgreSQL here: {getattr(exc, 'stderr', exc)}")
    yield server
    server.destroy()


def psql(url, query, *params):
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        cursor = conn.execute(query, params)
        return cursor.fetchall() if cursor.description else None


async def test_processes_starting_together_migrate_once(url):
    # Eight processes open the same empty schema at once; the advisory lock lets one migrate.
    script = (
        "import asyncio, sys\n"
        "from dashboard.store import PostgresStore\n"
        "from dashboard.store.postgres_schema import migrate\n"
        "import psycopg\n"
        "async def main():\n"
        "    async with await psycopg.AsyncConnection.connect(sys.argv[1], autocommit=True) as c:\n"
        "        print(await migrate(c, 'test'))\n"
        "    async with PostgresStore(sys.argv[1]) as store:\n"
        "        await store.add_message('a', 'u1', 'U1', 'hi')\n"
        "asyncio.run(main())\n"
    )
    children = [
        await asyncio.create_subprocess_exec(
            sys.executable, "-c", script, url, stdout=asyncio.subprocess.PIPE
        )
        for _ in range(8)
    ]
    outputs = [await asyncio.wait_for(child.communicate(), 60) for child in children]
    assert [child.returncode for child in children] == [0] * 8
    applied = sorted(int(out.decode()) for out, _ in outputs)
    assert applied == [0] * 7 + [SCHEMA_VERSION]
    assert psql(url, "SELECT version FROM dashboard_schema") == [(SCHEMA_VERSION,)]
    async with PostgresStore(url) as store:
        assert len((await store.messages("a")).messages) == 8


async def test_an_old_schema_is_migrated_in_place_and_a_newer_one_refused(url):
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE dashboard_schema (version integer NOT NULL)")
        for statement in MIGRATIONS[0]:
            conn.execute(statement)
        conn.execute("INSERT INTO dashboard_schema VALUES (1)")
        conn.execute("INSERT INTO dashboard_rooms VALUES ('lobby', 1.0)")
        conn.execute(
            "INSERT INTO dashboard_messages (room, user_id, user_name, text, created) "
            "VALUES ('lobby', 'ada', 'Ada', 'from before', 2.0)"
        )
    async with PostgresStore(url) as store:
        assert [m.text for m in (await store.messages("lobby")).messages] == ["from before"]
        assert (await store.add_notification("ada", "info", "new")).id >= 1
    assert psql(url, "SELECT version FROM dashboard_schema") == [(SCHEMA_VERSION,)]
    psql(url, "UPDATE dashboard_schema SET version = %s", SCHEMA_VERSION + 1)
    with pytest.raises(StoreError, match="upgrade dashboard"):
        await PostgresStore(url).open()


async def test_ids_in_a_room_are_in_commit_order_under_concurrent_writers(url):
    # Two stores (as two processes would) write one room at once while a reader follows the
    # room by "ids after the last one I saw", as the live feed and resume do. If an id could
    # commit after a higher one, the reader would skip it for good.
    writers = [PostgresStore(url, pool_size=8), PostgresStore(url, pool_size=8)]
    for writer in writers:
        await writer.open()
    reader = PostgresStore(url)
    await reader.open()
    try:
        seen: list[int] = []
        done = asyncio.Event()

        async def follow():
            while True:
                finished = done.is_set()
                page = await reader.messages("busy", limit=200)
                fresh = [m.id for m in page.messages if not seen or m.id > seen[-1]]
                seen.extend(fresh)
                if finished:
                    return
                await asyncio.sleep(0)

        async def write(store, n):
            return [await store.add_message("busy", "u", "U", f"{id(store)} {i}") for i in range(n)]

        follower = asyncio.create_task(follow())
        sent = await asyncio.gather(*(write(writers[i % 2], 25) for i in range(8)))
        done.set()
        await follower
        ids = sorted(m.id for batch in sent for m in batch)
        assert len(ids) == 200
        assert seen == ids  # every id seen, none skipped by a late commit
    finally:
        for store in (*writers, reader):
            await store.close()


async def test_notification_ids_commit_in_order_so_read_all_never_covers_an_unseen_one(url):
    # Read-all marks "up to the newest id I see"; a lower id committing later would be marked
    # read without ever being shown. Follow one inbox while two stores write into it.
    writers = [PostgresStore(url, pool_size=8), PostgresStore(url, pool_size=8)]
    reader = PostgresStore(url)
    for store in (*writers, reader):
        await store.open()
    try:
        seen: list[int] = []
        done = asyncio.Event()

        async def follow():
            while True:
                finished = done.is_set()
                page = await reader.notifications("ada", limit=200)
                fresh = sorted(n.id for n in page.notifications if not seen or n.id > seen[-1])
                seen.extend(fresh)
                if finished:
                    return
                await asyncio.sleep(0)

        async def write(store, n):
            return [
                await store.add_notification("ada" if i % 2 else "*", "info", f"n{i}")
                for i in range(n)
            ]

        follower = asyncio.create_task(follow())
        sent = await asyncio.gather(*(write(writers[i % 2], 20) for i in range(8)))
        done.set()
        await follower
        assert seen == sorted(n.id for batch in sent for n in batch)
    finally:
        for store in (*writers, reader):
            await store.close()


async def test_everything_survives_a_server_restart(private_postgres):
    async with PostgresStore(private_postgres.url) as store:
        message = await store.add_message("a", "u1", "U1", "before the restart")
        note = await store.add_notification("u1", "info", "kept")
        await store.mark_notification_read(note.id, "u1")
        secrets = await store.load_or_create_secrets()
    private_postgres.stop("fast")
    private_postgres.start()
    async with PostgresStore(private_postgres.url) as store:
        assert (await store.messages("a")).messages == [message]
        assert (await store.get_notification(note.id, "u1")).read is True
        assert await store.load_or_create_secrets() == secrets
        assert (await store.add_message("a", "u1", "U1", "after")).id > message.id


async def test_a_stopped_server_is_unavailable_within_the_timeout_then_recovers(
    private_postgres,
):
    store = PostgresStore(
        private_postgres.url, timeout=1.0, connect_timeout=2, reconnect_timeout=1.0
    )
    await store.open()
    try:
        before = await store.add_message("a", "u1", "U1", "before")
        private_postgres.stop("immediate")  # as a crash: sessions cut, no goodbye
        # Longer than reconnect_timeout: the pool's background retries give up meanwhile.
        outage_ends = time.monotonic() + 8.0
        while time.monotonic() < outage_ends:
            for call in (store.add_message("a", "u1", "U1", "during"), store.messages("a")):
                started = time.monotonic()
                with pytest.raises(StoreUnavailable, match="unavailable") as raised:
                    await call
                assert time.monotonic() - started < 3.0
                assert private_postgres.url.split("@")[1].split("/")[0] in str(raised.value)
        private_postgres.start()
        back = time.monotonic()
        while True:
            try:
                after = await store.add_message("a", "u1", "U1", "after")
                break
            except StoreUnavailable:
                # Bounded by reconnect_timeout, not by how long the outage lasted.
                assert time.monotonic() - back < 3.0, "did not recover within 3 s"
                await asyncio.sleep(0.1)
        assert (await store.messages("a")).messages == [before, after]
    finally:
        await store.close()


async def test_an_outage_keeps_the_wait_queue_bounded(private_postgres):
    # Waiters that timed out stay queued in psycopg_pool until a connection is free: without
    # max_waiting, every request during an outage would add one for good.
    store = PostgresStore(
        private_postgres.url, pool_size=2, timeout=1.0, connect_timeout=2, max_waiting=20
    )
    await store.open()
    try:
        private_postgres.stop("immediate")
        for _ in range(3):
            started = time.monotonic()
            outcomes = await asyncio.gather(
                *(store.messages("a") for _ in range(200)), return_exceptions=True
            )
            assert all(isinstance(outcome, StoreUnavailable) for outcome in outcomes)
            assert time.monotonic() - started < 3.0
            assert store.describe()["pool"]["waiting"] <= 20
        private_postgres.start()
        deadline = time.monotonic() + 15
        while True:
            try:
                await store.messages("a")
                break
            except StoreUnavailable:
                assert time.monotonic() < deadline, "no recovery"
                await asyncio.sleep(0.2)
    finally:
        await store.close()


async def test_an_unreachable_server_fails_open_quickly():
    from tests.processes import free_port

    started = time.monotonic()
    with pytest.raises(StoreUnavailable, match="unavailable"):
        await PostgresStore(f"postgresql://postgres@127.0.0.1:{free_port()}/x").open()
    assert time.monotonic() - started < 10


async def test_secrets_are_generated_once_and_shared(url):
    stores = [PostgresStore(url) for _ in range(4)]
    for store in stores:
        await store.open()
    try:
        seen = await asyncio.gather(*(store.load_or_create_secrets() for store in stores))
        assert len(set(seen)) == 1 and len(seen[0].app_secret) >= 32
    finally:
        for store in stores:
            await store.close()


def test_store_from_url_builds_a_postgres_store_without_connecting():
    store = store_from_url("postgresql://ada:pw@db.example:6543/chat", pool_size=3)
    assert isinstance(store, PostgresStore)
    assert (store.where, store.pool_size) == ("db.example:6543/chat", 3)
    assert "pw" not in repr(store)
    assert isinstance(store_from_url("postgres://localhost/chat"), PostgresStore)


@pytest.mark.parametrize(
    "url, match",
    [
        ("postgresql+asyncpg://localhost/chat", "plain postgresql:// URL"),
        ("postgresql://localhost:notaport/chat", "bad port 'notaport'"),
        ("postgresql://localhost/chat?bogus=1", "invalid URI query parameter"),
        ("postgresql://[::1/chat", "not a usable PostgreSQL URL"),
    ],
)
def test_bad_postgres_urls_say_why(url, match):
    with pytest.raises(UnsupportedStore, match=match):
        store_from_url(url)
