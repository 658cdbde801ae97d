"""The notification half of :class:`~dashboard.store.PostgresStore`, kept in its own module.

The same model as the SQLite store (:mod:`dashboard.store.sqlite_notifications`): a
notification is read by user U when its id is at or below U's read-all watermark
(``dashboard_notification_read_marks``) or U has a row for it in
``dashboard_notification_reads``. Read-all moves the watermark and drops the rows it now
covers. A page and its unread count are read in one ``REPEATABLE READ`` snapshot, so they
agree even while other processes write. New notifications take one transaction lock, so ids
commit in order and read-all's watermark never covers one that had not committed yet.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Final

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

if TYPE_CHECKING:
    from psycopg import AsyncConnection


#: The first key of ``pg_advisory_xact_lock(int, int)`` serialising one user's read-all.
READ_LOCK_CLASS: Final = 0x6E6F7469
#: The key of ``pg_advisory_xact_lock(int, int)`` every new notification takes (with 0).
INSERT_LOCK_CLASS: Final = 0x6E6F7470

_COLUMNS = "n.id, n.user_id, n.type, n.title, n.message, n.link, n.data, n.created"
_VISIBLE = "(n.user_id = %(user)s OR n.user_id = '*')"
_READ = (
    "(n.id <= %(mark)s OR EXISTS (SELECT 1 FROM dashboard_notification_reads r "
    "WHERE r.user_id = %(user)s AND r.notification = n.id))"
)


async def _one(conn: AsyncConnection, query: str, params: Any) -> Any:
    cursor = await conn.execute(query, params)
    row = await cursor.fetchone()
    return None if row is None else row[0]


async def _add(
    conn: AsyncConnection,
    user: str,
    type: str,
    title: str,
    message: str,
    link: str | None,
    data: str | None,
    now: float,
) -> Notification:
    async with conn.transaction():
        # Ids must commit in order: read-all marks "everything up to the newest id I see", so
        # a lower id committing after a higher one would be marked read unseen. One lock for
        # all inboxes, since a broadcast is in every inbox; notifications are not a hot path.
        await conn.execute("SELECT pg_advisory_xact_lock(%s, 0)", (INSERT_LOCK_CLASS,))
        id = await _one(
            conn,
            "INSERT INTO dashboard_notifications "
            "(user_id, type, title, message, link, data, created) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING id",
            (user, type, title, message, link, data, now),
        )
    decoded = None if data is None else json.loads(data)
    return Notification(id, user, type, title, message, link, decoded, now, False)


async def _mark(conn: AsyncConnection, user: str) -> int:
    up_to = await _one(
        conn, "SELECT up_to FROM dashboard_notification_read_marks WHERE user_id = %s", (user,)
    )
    return 0 if up_to is None else int(up_to)


async def _unread(conn: AsyncConnection, user: str, mark: int) -> int:
    count = await _one(
        conn,
        f"SELECT count(*) FROM dashboard_notifications n WHERE {_VISIBLE} "
        f"AND n.id > %(mark)s AND NOT {_READ}",
        {"user": user, "mark": mark},
    )
    return int(count)


async def _snapshot(conn: AsyncConnection) -> None:
    """Inside ``conn.transaction()``: make it one consistent read-only snapshot."""
    await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")


async def _count(conn: AsyncConnection, user: str) -> int:
    async with conn.transaction():
        await _snapshot(conn)
        return await _unread(conn, user, await _mark(conn, user))


async def _page(
    conn: AsyncConnection, user: str, unread_only: bool, before: int, limit: int
) -> NotificationPage:
    where = f"{_VISIBLE} AND n.id < %(before)s" + (f" AND NOT {_READ}" if unread_only else "")
    async with conn.transaction():
        await _snapshot(conn)
        mark = await _mark(conn, user)
        # One row more than asked tells whether an older page exists, without a COUNT.
        cursor = await conn.execute(
            f"SELECT {_COLUMNS}, {_READ} FROM dashboard_notifications n WHERE {where} "
            "ORDER BY n.id DESC LIMIT %(limit)s",
            {"user": user, "mark": mark, "before": before, "limit": limit + 1},
        )
        rows = await cursor.fetchall()
        unread = await _unread(conn, user, mark)
    page = [notification_from_row(row) for row in rows[:limit]]
    more = len(rows) > limit
    return NotificationPage(page, page[-1].id if more else None, unread)


async def _get(conn: AsyncConnection, id: int, user: str) -> Notification:
    if not 1 <= id <= base.MAX_ID:
        raise NotFound(f"no notification with id {id}")
    cursor = await conn.execute(
        f"SELECT {_COLUMNS}, {_READ} FROM dashboard_notifications n WHERE n.id = %(id)s",
        {"id": id, "user": user, "mark": await _mark(conn, user)},
    )
    row = await cursor.fetchone()
    if row is None:
        raise NotFound(f"no notification with id {id}")
    notification = notification_from_row(row)
    if notification.user not in (user, BROADCAST):
        raise Forbidden(f"notification {id} belongs to another user")
    return notification


async def _mark_read(conn: AsyncConnection, id: int, user: str) -> Notification:
    async with conn.transaction():
        notification = await _get(conn, id, user)
        if not notification.read:
            await conn.execute(
                "INSERT INTO dashboard_notification_reads (user_id, notification) "
                "VALUES (%s, %s) ON CONFLICT DO NOTHING",
                (user, id),
            )
    return replace(notification, read=True)


async def _mark_all(conn: AsyncConnection, user: str) -> ReadAll:
    async with conn.transaction():
        # Two read-alls of one user (two tabs, two processes) count each notification once.
        await conn.execute(
            "SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (READ_LOCK_CLASS, user)
        )
        mark = await _mark(conn, user)
        marked = await _unread(conn, user, mark)
        newest = await _one(
            conn,
            f"SELECT max(n.id) FROM dashboard_notifications n WHERE {_VISIBLE}",
            {"user": user},
        )
        up_to = max(mark, newest or 0)
        if up_to > mark:
            await conn.execute(
                "INSERT INTO dashboard_notification_read_marks (user_id, up_to) VALUES (%s, %s) "
                "ON CONFLICT (user_id) DO UPDATE SET up_to = excluded.up_to",
                (user, up_to),
            )
            # The watermark covers these now; dropping them keeps the table small.
            await conn.execute(
                "DELETE FROM dashboard_notification_reads WHERE user_id = %s "
                "AND notification <= %s",
                (user, up_to),
            )
    return ReadAll(marked, up_to)


class PostgresNotifications(NotificationMethods):
    """The queries :class:`NotificationMethods` runs, mixed into
    :class:`~dashboard.store.PostgresStore`, which provides ``_run``."""

    _n_add = staticmethod(_add)
    _n_page = staticmethod(_page)
    _n_get = staticmethod(_get)
    _n_mark_read = staticmethod(_mark_read)
    _n_mark_all = staticmethod(_mark_all)
    _n_count = staticmethod(_count)
