"""The notification half of :class:`~dashboard.store.SQLiteStore`, kept in its own module.

A notification is read by user U when its id is at or below U's read-all watermark
(``notification_read_marks``) or U has a row for it in ``notification_reads``. Read-all moves
the watermark and drops the rows it now covers, so it is one small write however many
broadcasts exist. Everything named ``_n_*`` runs on the store's executor thread.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Iterator
from dataclasses import replace

from . import base
from .errors import Forbidden, NotFound
from .notification_methods import NotificationMethods
from .notifications import (
    BROADCAST,
    Notification,
    NotificationPage,
    ReadAll,
    notification_from_row,
)
from .sqlite_schema import transaction

_COLUMNS = "n.id, n.user, n.type, n.title, n.message, n.link, n.data, n.created"
_VISIBLE = "(n.user = :user OR n.user = '*')"
_READ = (
    "(n.id <= :mark OR EXISTS (SELECT 1 FROM notification_reads r "
    "WHERE r.user = :user AND r.notification = n.id))"
)


@contextlib.contextmanager
def _snapshot(conn: sqlite3.Connection) -> Iterator[None]:
    """A read transaction, so a page and its unread count agree with each other."""
    conn.execute("BEGIN")
    try:
        yield
    finally:
        if conn.in_transaction:
            conn.execute("COMMIT")


class SQLiteNotifications(NotificationMethods):
    """The queries :class:`NotificationMethods` runs, mixed into
    :class:`~dashboard.store.SQLiteStore`, which provides ``_run`` and ``_connection``."""

    def _connection(self) -> sqlite3.Connection:  # provided by SQLiteStore
        raise NotImplementedError

    # Everything below runs on the executor thread.

    def _n_add(
        self,
        user: str,
        type: str,
        title: str,
        message: str,
        link: str | None,
        data: str | None,
        now: float,
    ) -> Notification:
        conn = self._connection()
        with transaction(conn):
            cursor = conn.execute(
                "INSERT INTO notifications (user, type, title, message, link, data, created) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (user, type, title, message, link, data, now),
            )
        assert cursor.lastrowid is not None
        decoded = None if data is None else json.loads(data)
        return Notification(cursor.lastrowid, user, type, title, message, link, decoded, now, False)

    def _n_mark(self, user: str) -> int:
        row = (
            self._connection()
            .execute("SELECT up_to FROM notification_read_marks WHERE user = ?", (user,))
            .fetchone()
        )
        return 0 if row is None else int(row[0])

    def _n_unread(self, conn: sqlite3.Connection, user: str, mark: int) -> int:
        row = conn.execute(
            f"SELECT COUNT(*) FROM notifications n WHERE {_VISIBLE} AND n.id > :mark "
            f"AND NOT {_READ}",
            {"user": user, "mark": mark},
        ).fetchone()
        return int(row[0])

    def _n_count(self, user: str) -> int:
        conn = self._connection()
        with _snapshot(conn):
            return self._n_unread(conn, user, self._n_mark(user))

    def _n_page(self, user: str, unread_only: bool, before: int, limit: int) -> NotificationPage:
        conn = self._connection()
        where = f"{_VISIBLE} AND n.id < :before" + (f" AND NOT {_READ}" if unread_only else "")
        with _snapshot(conn):
            mark = self._n_mark(user)
            # One row more than asked tells whether an older page exists, without a COUNT.
            rows = conn.execute(
                f"SELECT {_COLUMNS}, {_READ} FROM notifications n WHERE {where} "
                "ORDER BY n.id DESC LIMIT :limit",
                {"user": user, "mark": mark, "before": before, "limit": limit + 1},
            ).fetchall()
            unread = self._n_unread(conn, user, mark)
        page = [notification_from_row(row) for row in rows[:limit]]
        more = len(rows) > limit
        return NotificationPage(page, page[-1].id if more else None, unread)

    def _n_get(self, id: int, user: str) -> Notification:
        if not 1 <= id <= base.MAX_ID:
            raise NotFound(f"no notification with id {id}")
        conn = self._connection()
        row = conn.execute(
            f"SELECT {_COLUMNS}, {_READ} FROM notifications n WHERE n.id = :id",
            {"id": id, "user": user, "mark": self._n_mark(user)},
        ).fetchone()
        if row is None:
            raise NotFound(f"no notification with id {id}")
        notification = notification_from_row(row)
        if notification.user not in (user, BROADCAST):
            raise Forbidden(f"notification {id} belongs to another user")
        return notification

    def _n_mark_read(self, id: int, user: str) -> Notification:
        conn = self._connection()
        with transaction(conn):
            notification = self._n_get(id, user)
            if not notification.read:
                conn.execute(
                    "INSERT OR IGNORE INTO notification_reads (user, notification) VALUES (?, ?)",
                    (user, id),
                )
        return replace(notification, read=True)

    def _n_mark_all(self, user: str) -> ReadAll:
        conn = self._connection()
        with transaction(conn):
            mark = self._n_mark(user)
            marked = self._n_unread(conn, user, mark)
            newest = conn.execute(
                f"SELECT MAX(n.id) FROM notifications n WHERE {_VISIBLE}", {"user": user}
            ).fetchone()[0]
            up_to = max(mark, newest or 0)
            if up_to > mark:
                conn.execute(
                    "INSERT INTO notification_read_marks (user, up_to) VALUES (?, ?) "
                    "ON CONFLICT (user) DO UPDATE SET up_to = excluded.up_to",
                    (user, up_to),
                )
                # The watermark covers these now; dropping them keeps the table small.
                conn.execute(
                    "DELETE FROM notification_reads WHERE user = ? AND notification <= ?",
                    (user, up_to),
                )
        return ReadAll(marked, up_to)
