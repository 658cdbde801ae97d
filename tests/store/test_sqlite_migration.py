"""An SQLite file written before notifications existed opens, keeps its data and gains them."""

import sqlite3

from dashboard.store import SQLiteStore
from dashboard.store.sqlite_schema import MIGRATIONS, SCHEMA_VERSION


async def test_a_version_1_database_is_migrated_in_place(tmp_path):
    path = tmp_path / "old.db"
    old = sqlite3.connect(path)
    for statement in MIGRATIONS[0]:
        old.execute(statement)
    old.execute("PRAGMA user_version = 1")
    old.execute("INSERT INTO rooms (name, created) VALUES ('lobby', 1.0)")
    old.execute(
        "INSERT INTO messages (room, user_id, user_name, text, created) "
        "VALUES ('lobby', 'ada', 'Ada', 'from before', 2.0)"
    )
    old.commit()
    old.close()

    async with SQLiteStore(path) as store:
        assert [m.text for m in (await store.messages("lobby")).messages] == ["from before"]
        n = await store.add_notification("ada", "info", "new feature")
        assert (await store.notifications("ada")).notifications == [n]
    check = sqlite3.connect(path)
    assert check.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
    check.close()
    async with SQLiteStore(path) as store:  # reopening does not migrate twice
        assert (await store.notifications("ada")).unread_count == 1
