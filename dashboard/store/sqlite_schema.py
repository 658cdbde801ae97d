"""The SQLite schema, its forward-only migrations and the one way this store writes.

Kept apart from :mod:`dashboard.store.sqlite` so the schema's history reads in one place;
everything here is synchronous and runs on the store's executor thread.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from .errors import StoreError

# Entry n upgrades schema version n to n + 1 (PRAGMA user_version). Never edit a released
# entry, and never go back: append a new one.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        "CREATE TABLE rooms (name TEXT PRIMARY KEY NOT NULL, created REAL NOT NULL)",
        # AUTOINCREMENT so ids are never reused, even after the newest row is gone: an id is
        # a resume cursor and must keep meaning one message.
        """CREATE TABLE messages (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            room TEXT NOT NULL REFERENCES rooms (name),
            user_id TEXT NOT NULL,
            user_name TEXT NOT NULL,
            text TEXT NOT NULL,
            created REAL NOT NULL,
            edited REAL,
            deleted INTEGER NOT NULL DEFAULT 0 CHECK (deleted IN (0, 1))
        )""",
        # Every page query is "this room, ids below a cursor, newest first".
        "CREATE INDEX messages_room_id ON messages (room, id)",
    ),
    (
        # Notifications: user is a user id or '*' for everyone; data is JSON text or NULL.
        """CREATE TABLE notifications (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            user TEXT NOT NULL,
            type TEXT NOT NULL,
            title TEXT NOT NULL,
            message TEXT NOT NULL,
            link TEXT,
            data TEXT,
            created REAL NOT NULL
        )""",
        # Every inbox query is "this user's or '*', ids below a cursor, newest first".
        "CREATE INDEX notifications_user_id ON notifications (user, id)",
        # Read state is per viewing user: one row per single read ...
        """CREATE TABLE notification_reads (
            user TEXT NOT NULL,
            notification INTEGER NOT NULL REFERENCES notifications (id),
            PRIMARY KEY (user, notification)
        ) WITHOUT ROWID""",
        # ... plus a watermark per user: read-all is one row, not one per broadcast.
        """CREATE TABLE notification_read_marks (
            user TEXT PRIMARY KEY NOT NULL,
            up_to INTEGER NOT NULL
        )""",
    ),
)
SCHEMA_VERSION = len(MIGRATIONS)


@contextlib.contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[None]:
    """``BEGIN IMMEDIATE`` ... ``COMMIT``, rolled back on any error.

    The connection must be in autocommit mode (``isolation_level=None``). IMMEDIATE takes
    the write lock at BEGIN, where the busy timeout applies; a deferred transaction that
    upgrades later can fail with SQLITE_BUSY at once instead of waiting.
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
        conn.execute("COMMIT")
    finally:
        # Also after a failed COMMIT: the next call must not find a transaction open.
        if conn.in_transaction:
            conn.execute("ROLLBACK")


def migrate(conn: sqlite3.Connection, path: Path) -> None:
    """Bring the database at ``path`` up to :data:`SCHEMA_VERSION`, one step per transaction.

    Raises:
        StoreError: the file was written by a newer version of this package.
    """
    while True:
        with transaction(conn):
            # Read inside the write transaction: two processes opening at once must not both
            # apply the same step.
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"{path} has schema version {version}, newer than this dashboard "
                    f"understands ({SCHEMA_VERSION}); upgrade dashboard to use it"
                )
            if version == SCHEMA_VERSION:
                return
            for statement in MIGRATIONS[version]:
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {version + 1}")
