"""What only a file can do wrong: crashes, locks, corruption, versions, and the URL factory.

These drive the SQLite file directly with a second ``sqlite3`` connection or by rewriting its
bytes; the backend-neutral behaviour is in ``test_store.py``.
"""

import asyncio
import random
import sqlite3
import sys
import time

import pytest

from dashboard.store import (
    SQLiteStore,
    StoreCorrupt,
    StoreError,
    StoreUnavailable,
    UnsupportedStore,
    open_store,
    store_from_url,
)
from dashboard.store.sqlite_schema import SCHEMA_VERSION

PAGE = 4096  # SQLite's default page size


@pytest.fixture
def path(tmp_path):
    return tmp_path / "nested" / "dir" / "chat.db"


async def test_creates_parent_directories_wal_and_schema_version(path):
    async with SQLiteStore(path) as store:
        await store.add_message("a", "u1", "U1", "hi")
        other = sqlite3.connect(path)
        assert other.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert other.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
        other.close()


async def test_a_committed_message_survives_a_process_crash(path):
    # The child exits without closing anything; each add_message must already be durable.
    script = (
        "import asyncio, os, sys\n"
        "from dashboard.store import SQLiteStore\n"
        "async def main():\n"
        "    store = SQLiteStore(sys.argv[1])\n"
        "    await store.open()\n"
        "    for i in range(20):\n"
        "        await store.add_message('a', 'u1', 'U1', f'm{i}')\n"
        "    os._exit(0)\n"
        "asyncio.run(main())\n"
    )
    child = await asyncio.create_subprocess_exec(sys.executable, "-c", script, str(path))
    assert await asyncio.wait_for(child.wait(), 30) == 0
    async with SQLiteStore(path) as store:
        page = await store.messages("a")
    assert [m.text for m in page.messages] == [f"m{i}" for i in range(20)]


async def test_a_locked_database_is_unavailable_after_the_busy_timeout_then_recovers(path):
    async with SQLiteStore(path, busy_timeout=0.2) as store:
        before = await store.add_message("a", "u1", "U1", "before the lock")
        blocker = sqlite3.connect(path, isolation_level=None)
        try:
            blocker.execute("BEGIN EXCLUSIVE")
            started = time.monotonic()
            with pytest.raises(StoreUnavailable, match="locked") as raised:
                await store.add_message("a", "u1", "U1", "while locked")
            waited = time.monotonic() - started
            assert 0.15 <= waited < 2.0
            assert str(path) in str(raised.value)
            # WAL lets readers through while another connection writes.
            assert (await store.messages("a")).messages == [before]
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        after = await store.add_message("a", "u1", "U1", "after the lock")
        assert (await store.messages("a")).messages == [before, after]


async def test_calls_queued_behind_a_lock_give_up_in_bounded_time_not_one_after_another(path):
    async with SQLiteStore(path, busy_timeout=0.3) as store:
        await store.add_message("a", "u1", "U1", "before the lock")
        blocker = sqlite3.connect(path, isolation_level=None)
        try:
            blocker.execute("BEGIN EXCLUSIVE")

            async def write(n: int) -> float:
                started = time.monotonic()
                with pytest.raises(StoreUnavailable):
                    await store.add_message("a", "u1", "U1", f"queued {n}")
                return time.monotonic() - started

            waits = await asyncio.gather(*(write(n) for n in range(8)))
            # One call waits for the lock (0.3 s), the next also in line (0.6 s); the rest
            # give up at once when their turn comes. One at a time, the last took 2.4 s.
            assert max(waits) < 1.2, waits
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        assert [m.text for m in (await store.messages("a")).messages] == ["before the lock"]


async def test_a_file_that_is_not_a_database_is_corrupt_and_left_untouched(path):
    path.parent.mkdir(parents=True)
    garbage = "this is a text file, not a database\n" * 20
    path.write_text(garbage)
    with pytest.raises(StoreCorrupt) as raised:
        await SQLiteStore(path).open()
    message = str(raised.value)
    assert str(path) in message and "not a database" in message and "move the file" in message
    assert path.read_text() == garbage


async def filled_database(path, messages=300):
    async with SQLiteStore(path, synchronous="NORMAL") as store:
        for i in range(messages):
            await store.add_message("a", "u1", "U1", f"{i} " + "y" * 500)
    # Closing the last connection checkpoints the WAL: every row is in the main file now.
    assert not path.with_name(path.name + "-wal").exists()
    data = bytearray(path.read_bytes())
    assert len(data) > 30 * PAGE
    return data


async def test_pages_overwritten_with_noise_are_corrupt(path):
    data = await filled_database(path)
    data[10 * PAGE : 20 * PAGE] = random.Random(1234).randbytes(10 * PAGE)
    path.write_bytes(bytes(data))
    with pytest.raises(StoreCorrupt, match="not a usable SQLite database") as raised:
        await SQLiteStore(path).open()
    assert str(path) in str(raised.value)


async def test_a_truncated_file_is_corrupt(path):
    data = await filled_database(path)
    path.write_bytes(bytes(data[: len(data) // 2]))
    with pytest.raises(StoreCorrupt, match="malformed"):
        await SQLiteStore(path).open()


async def test_a_newer_schema_is_refused_rather_than_guessed(path):
    async with SQLiteStore(path):
        pass
    other = sqlite3.connect(path)
    other.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    other.commit()
    other.close()
    with pytest.raises(StoreError, match="upgrade dashboard"):
        await SQLiteStore(path).open()


async def test_a_directory_in_place_of_the_file_is_unavailable(tmp_path):
    with pytest.raises(StoreUnavailable, match=str(tmp_path)):
        await SQLiteStore(tmp_path).open()


async def test_open_store_accepts_paths_and_sqlite_urls(tmp_path):
    for target in (tmp_path / "a.db", str(tmp_path / "b.db"), f"sqlite:///{tmp_path}/c.db"):
        store = await open_store(target)
        try:
            await store.add_message("a", "u1", "U1", "hi")
        finally:
            await store.close()
    assert {p.name for p in tmp_path.glob("*.db")} == {"a.db", "b.db", "c.db"}
    assert store_from_url("sqlite:///rel/chat.db").path.as_posix() == "rel/chat.db"
    assert store_from_url("sqlite:///x.db", busy_timeout=1.5).busy_timeout == 1.5


@pytest.mark.parametrize(
    "url, match",
    [
        ("mysql://localhost/chat", "unknown store scheme"),
        ("sqlite://relative.db", "sqlite:///path"),
        (":memory:", "file path"),
        ("", "file path"),
    ],
)
def test_unsupported_urls_say_why(url, match):
    with pytest.raises(UnsupportedStore, match=match):
        store_from_url(url)


async def test_a_new_database_is_owner_only(tmp_path):
    import os
    import stat

    from dashboard.store import SQLiteStore

    directory = tmp_path / "shared"
    directory.mkdir(mode=0o755)
    store = SQLiteStore(directory / "chat.sqlite3")
    await store.open()
    try:
        await store.add_message("lobby", "ada", "Ada", "private words")
        for path in directory.iterdir():  # the database, its -wal and -shm
            assert stat.S_IMODE(os.stat(path).st_mode) == 0o600, path.name
    finally:
        await store.close()
