"""The embedded default store: one SQLite file, driven from one dedicated thread.

Threading: the stdlib ``sqlite3`` module blocks, so every call runs on a single-thread
executor that owns the only connection. The event loop never waits on disk, and because
that thread runs jobs in submission order, writes are serialised without any lock of ours
(SQLite allows one writer at a time anyway). Cancelling a call does not stop a job the thread
has started: a cancelled write may still commit.

Durability: WAL journal with ``synchronous=FULL`` by default, i.e. one fsync per write.
``NORMAL`` would survive a process crash but could lose the last commits on power loss;
since a message is broadcast as soon as it is committed, and ``AUTOINCREMENT`` would then
hand the lost ids to new messages, clients could hold ids that later name different
messages. An fsync per chat message is cheap next to that; ``synchronous="NORMAL"`` stays
available for benchmarks and throwaway data.

Failures: a locked database waits ``busy_timeout`` seconds, then raises
:class:`StoreUnavailable`; a file that is not a database or fails ``PRAGMA quick_check`` on
open raises :class:`StoreCorrupt` naming the file and what to do.
"""

from __future__ import annotations

import asyncio
import functools
import os
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Literal, TypeVar

from .base import Message, MessagePage, Room, Store
from .errors import (
    NotFound,
    StoreClosed,
    StoreCorrupt,
    StoreError,
    StoreUnavailable,
    UnsupportedStore,
)
from .rooms import RoomMethods, changed_message
from .sqlite_notifications import SQLiteNotifications
from .sqlite_schema import migrate, transaction

T = TypeVar("T")

_COLUMNS = "id, room, user_id, user_name, text, created, edited, deleted"
_CORRUPT_CODES = {sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB}
_BUSY_CODES = {sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED}
_UNAVAILABLE_CODES = {
    sqlite3.SQLITE_CANTOPEN,
    sqlite3.SQLITE_IOERR,
    sqlite3.SQLITE_FULL,
    sqlite3.SQLITE_READONLY,
    sqlite3.SQLITE_PERM,
}


def _message(row: tuple[Any, ...]) -> Message:
    id, room, user_id, user_name, text, created, edited, deleted = row
    return Message(id, room, user_id, user_name, text, created, edited, bool(deleted))


class SQLiteStore(RoomMethods, SQLiteNotifications, Store):
    """Rooms, messages and notifications in one SQLite file.

    Args:
        path: the database file; missing parent directories are created. ``":memory:"`` is
            refused: the point of the store is to survive a restart.
        busy_timeout: seconds to wait for another connection's lock before giving up.
        synchronous: ``"FULL"`` (survives power loss) or ``"NORMAL"`` (survives a crash of
            this process only); see the module docstring.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        busy_timeout: float = 5.0,
        synchronous: Literal["FULL", "NORMAL"] = "FULL",
    ) -> None:
        if str(path) in ("", ":memory:"):
            raise UnsupportedStore(f"SQLiteStore needs a file path, not {str(path)!r}")
        if synchronous not in ("FULL", "NORMAL"):
            raise ValueError(f"synchronous must be 'FULL' or 'NORMAL', not {synchronous!r}")
        if busy_timeout < 0:
            raise ValueError("busy_timeout must not be negative")
        self.path = Path(path)
        self.busy_timeout = busy_timeout
        self.synchronous = synchronous
        self._executor: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None  # touched only on the executor thread

    def __repr__(self) -> str:
        return f"SQLiteStore({str(self.path)!r})"

    async def open(self) -> None:
        if self._executor is not None:
            return
        # Calls made while this is connecting queue behind it on the same thread.
        executor = self._executor = ThreadPoolExecutor(1, thread_name_prefix="dashboard-store")
        try:
            await self._run(self._connect)
        except BaseException:
            self._executor = None
            executor.shutdown(wait=False)
            raise

    async def close(self) -> None:
        executor, self._executor = self._executor, None
        if executor is None:
            return
        try:
            # Jobs submitted earlier run first, so nothing already accepted is cut short.
            await asyncio.get_running_loop().run_in_executor(executor, self._disconnect)
        finally:
            executor.shutdown(wait=False)

    async def ping(self) -> None:
        await self._run(lambda: self._connection().execute("SELECT 1").fetchone())

    def describe(self) -> dict[str, object]:
        # The file's name only: /api/health is open, and a full path shows the home folder
        # (and where the secrets file lies). The startup banner shows the path.
        return {"kind": "sqlite", "file": self.path.name}

    # Everything below runs on the executor thread.

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        if self._executor is None:
            raise StoreClosed(f"{self!r} is not open")
        call = functools.partial(self._translating, time.monotonic(), fn, *args)
        return await asyncio.get_running_loop().run_in_executor(self._executor, call)

    def _translating(self, queued: float, fn: Callable[..., T], *args: Any) -> T:
        # Calls run one at a time, each waiting up to busy_timeout for a lock another process
        # holds: without this, the sixth call in line would answer after 6 x busy_timeout.
        # One that already waited that long in line gives up at once, with nothing written.
        waited = time.monotonic() - queued
        if waited > self.busy_timeout:
            raise StoreUnavailable(
                f"{self.path} is busy: this call waited {waited:.1f} s for the calls before "
                "it; retry later"
            )
        try:
            return fn(*args)
        except sqlite3.Error as exc:
            raise self._translate(exc) from exc

    def _translate(self, exc: sqlite3.Error) -> StoreError:
        code = (getattr(exc, "sqlite_errorcode", None) or 0) & 0xFF  # primary result code
        if code in _CORRUPT_CODES:
            return StoreCorrupt(self._corrupt_message(str(exc)))
        if code in _BUSY_CODES:
            return StoreUnavailable(
                f"{self.path} is locked by another connection or process; gave up after "
                f"{self.busy_timeout:g} s. Retry later, or stop whatever holds the lock."
            )
        if code in _UNAVAILABLE_CODES:
            return StoreUnavailable(f"cannot use {self.path}: {exc}")
        return StoreError(f"{self.path}: {exc}")

    def _corrupt_message(self, detail: str) -> str:
        return (
            f"{self.path} is not a usable SQLite database ({detail}). Stop the server, move "
            f"the file and its -wal and -shm files aside (or restore them from a backup), and "
            f"start again: a new, empty database is created in its place."
        )

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StoreClosed(f"{self!r} is not open")
        return self._conn

    def _connect(self) -> None:
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            # Messages and inboxes are nobody else's business: a new database is owner-only,
            # and SQLite gives its -wal and -shm files the database file's permissions.
            os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        except FileExistsError:
            pass  # an existing database keeps the permissions its owner gave it
        except OSError as exc:
            raise StoreUnavailable(f"cannot create {self.path}: {exc}") from exc
        # isolation_level=None: no implicit transactions; transaction() says BEGIN IMMEDIATE so
        # the write lock is taken up front and the busy timeout applies to it.
        conn = sqlite3.connect(self.path, timeout=self.busy_timeout, isolation_level=None)
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout * 1000)}")
            # The first statement reads the header: a non-database file fails here.
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute(f"PRAGMA synchronous = {self.synchronous}")
            conn.execute("PRAGMA foreign_keys = ON")
            # quick_check reads every page (linear in file size) but skips index cross-checks;
            # it is the price of refusing to serve from a damaged file.
            problems = [row[0] for row in conn.execute("PRAGMA quick_check(5)")]
            if problems != ["ok"]:
                raise StoreCorrupt(self._corrupt_message(" ".join(" ".join(problems).split())))
            migrate(conn, self.path)
        except BaseException:
            conn.close()
            raise
        self._conn = conn

    def _disconnect(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()  # the last connection to close also checkpoints the WAL

    def _ensure_room(self, name: str, now: float) -> Room:
        conn = self._connection()
        with transaction(conn):
            conn.execute("INSERT OR IGNORE INTO rooms (name, created) VALUES (?, ?)", (name, now))
            row = conn.execute("SELECT name, created FROM rooms WHERE name = ?", (name,)).fetchone()
        return Room(*row)

    def _list_rooms(self) -> list[Room]:
        rows = self._connection().execute("SELECT name, created FROM rooms ORDER BY name")
        return [Room(*row) for row in rows]

    def _add_message(
        self, room: str, user_id: str, user_name: str, text: str, now: float
    ) -> Message:
        conn = self._connection()
        with transaction(conn):
            conn.execute("INSERT OR IGNORE INTO rooms (name, created) VALUES (?, ?)", (room, now))
            cursor = conn.execute(
                "INSERT INTO messages (room, user_id, user_name, text, created) "
                "VALUES (?, ?, ?, ?, ?)",
                (room, user_id, user_name, text, now),
            )
        assert cursor.lastrowid is not None
        return Message(cursor.lastrowid, room, user_id, user_name, text, now, None, False)

    def _change(self, id: int, user_id: str, text: str | None, now: float) -> Message:
        """Edit (``text`` given) or soft-delete (``text=None``) one message as ``user_id``."""
        conn = self._connection()
        with transaction(conn):
            new = changed_message(self._get(id), user_id, text, now)
            conn.execute(
                "UPDATE messages SET text = ?, edited = ?, deleted = ? WHERE id = ?",
                (new.text, new.edited, new.deleted, id),
            )
        return new

    def _page(self, room: str, before: int, limit: int) -> MessagePage:
        # One row more than asked tells whether an older page exists, without a COUNT.
        rows = self._connection().execute(
            f"SELECT {_COLUMNS} FROM messages WHERE room = ? AND id < ? ORDER BY id DESC LIMIT ?",
            (room, before, limit + 1),
        )
        newest_first = [_message(row) for row in rows]
        more = len(newest_first) > limit
        page = newest_first[:limit][::-1]
        return MessagePage(page, page[0].id if more else None)

    def _get(self, id: int) -> Message:
        row = (
            self._connection()
            .execute(f"SELECT {_COLUMNS} FROM messages WHERE id = ?", (id,))
            .fetchone()
        )
        if row is None:
            raise NotFound(f"no message with id {id}")
        return _message(row)
