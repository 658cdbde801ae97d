"""The PostgreSQL schema, its forward-only migrations, and the locks that order writes.

Kept apart from :mod:`dashboard.store.postgres` so the schema's history reads in one place.
Every table is prefixed ``dashboard_``: the database may be shared with other applications.

Migrations run under a session-level ``pg_advisory_lock``: when several server processes start
at once against an empty database, one applies the steps and the others wait, then find the
schema current. Each step is its own transaction, recorded in ``dashboard_schema``.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Final

from .errors import StoreError

if TYPE_CHECKING:
    from psycopg import AsyncConnection

#: ``pg_advisory_lock(bigint)`` key held while migrating: "dashboard" in ASCII, read as hex.
MIGRATION_LOCK: Final = 0x64617368626F6172
#: The first key of ``pg_advisory_xact_lock(int, int)`` for per-room insert locks (the second
#: is ``hashtext(room)``). The one-key and two-key lock spaces never overlap.
ROOM_LOCK_CLASS: Final = 0x64617368

# Entry n upgrades schema version n to n + 1. Never edit a released entry: append a new one.
MIGRATIONS: Final[tuple[tuple[str, ...], ...]] = (
    (
        """CREATE TABLE dashboard_rooms (
            name text PRIMARY KEY,
            created double precision NOT NULL
        )""",
        # An identity column never hands out a number twice, even after rollbacks or
        # deletes: an id is a resume cursor and must keep meaning one message.
        """CREATE TABLE dashboard_messages (
            id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            room text NOT NULL REFERENCES dashboard_rooms (name),
            user_id text NOT NULL,
            user_name text NOT NULL,
            text text NOT NULL,
            created double precision NOT NULL,
            edited double precision,
            deleted boolean NOT NULL DEFAULT false
        )""",
        # Every page query is "this room, ids below a cursor, newest first".
        "CREATE INDEX dashboard_messages_room_id ON dashboard_messages (room, id)",
    ),
    (
        # user_id is a user id or '*' for everyone; data is compact JSON text or NULL (text,
        # not jsonb: jsonb would reorder keys and refuse \u0000, unlike the SQLite store).
        """CREATE TABLE dashboard_notifications (
            id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            user_id text NOT NULL,
            type text NOT NULL,
            title text NOT NULL,
            message text NOT NULL,
            link text,
            data text,
            created double precision NOT NULL
        )""",
        "CREATE INDEX dashboard_notifications_user_id ON dashboard_notifications (user_id, id)",
        # Read state is per viewing user: one row per single read ...
        """CREATE TABLE dashboard_notification_reads (
            user_id text NOT NULL,
            notification bigint NOT NULL REFERENCES dashboard_notifications (id),
            PRIMARY KEY (user_id, notification)
        )""",
        # ... plus a watermark per user: read-all is one row, not one per broadcast.
        """CREATE TABLE dashboard_notification_read_marks (
            user_id text PRIMARY KEY,
            up_to bigint NOT NULL
        )""",
    ),
    (
        # The server's generated secrets, shared by every process using this database (the
        # SQLite store keeps them in a file beside the database instead). One row.
        """CREATE TABLE dashboard_secrets (
            id smallint PRIMARY KEY DEFAULT 1 CHECK (id = 1),
            app_secret text NOT NULL,
            publish_token text NOT NULL,
            created double precision NOT NULL
        )""",
    ),
)
SCHEMA_VERSION: Final = len(MIGRATIONS)

_VERSION_TABLE = "CREATE TABLE IF NOT EXISTS dashboard_schema (version integer NOT NULL)"


async def schema_version(conn: AsyncConnection) -> int:
    """The version recorded in ``dashboard_schema``; 0 for a database without our tables."""
    cursor = await conn.execute("SELECT to_regclass('dashboard_schema') IS NOT NULL")
    row = await cursor.fetchone()
    if not row or not row[0]:
        return 0
    cursor = await conn.execute("SELECT max(version) FROM dashboard_schema")
    row = await cursor.fetchone()
    return int(row[0]) if row and row[0] is not None else 0


async def migrate(conn: AsyncConnection, where: str) -> int:
    """Bring the database up to :data:`SCHEMA_VERSION`, holding :data:`MIGRATION_LOCK`.

    Args:
        conn: an autocommit connection, used for nothing else meanwhile.
        where: the database, as shown in messages (no password).

    Returns:
        How many steps this call applied (0 when another process had done them).

    Raises:
        StoreError: the database was written by a newer version of this package.
    """
    import psycopg

    # The fast path takes no lock: a current schema is the common case at every start.
    if await schema_version(conn) == SCHEMA_VERSION:
        return 0
    await conn.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK,))
    try:
        applied = 0
        while True:
            async with conn.transaction():
                await conn.execute(_VERSION_TABLE)
                version = await schema_version(conn)
                if version > SCHEMA_VERSION:
                    raise StoreError(
                        f"{where} has dashboard schema version {version}, newer than this "
                        f"dashboard understands ({SCHEMA_VERSION}); upgrade dashboard to use it"
                    )
                if version == SCHEMA_VERSION:
                    return applied
                for statement in MIGRATIONS[version]:
                    await conn.execute(statement)
                await conn.execute("DELETE FROM dashboard_schema")
                await conn.execute(
                    "INSERT INTO dashboard_schema (version) VALUES (%s)", (version + 1,)
                )
                applied += 1
    finally:
        # A broken connection has dropped the lock with its session; say what broke, not this.
        with contextlib.suppress(psycopg.Error):
            await conn.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK,))
