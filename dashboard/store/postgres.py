"""The shared store: rooms, messages and notifications in PostgreSQL, for several processes.

Driver: psycopg 3 with ``psycopg_pool.AsyncConnectionPool``, imported only when a store is
built, so the package (and its test collection) works on a machine without them.

Ordering: message ids come from one identity sequence, but a sequence alone hands ids out in
call order, not commit order; a reader paging "after id N" could then miss a lower id that
commits later. Each insert therefore takes a per-room transaction lock
(``pg_advisory_xact_lock``) before drawing its id, so within a room ids are in commit order,
which the server relies on when it commits first and publishes second.

Failures: every call finishes or fails within ``timeout`` seconds (waiting for a pooled
connection, the statement itself via ``statement_timeout``, and a client-side deadline
covering both). A database that is down, restarting, out of connections or too slow raises
:class:`StoreUnavailable`; the pool keeps reconnecting in the background and checks each
connection before lending it, so service resumes by itself when the database is back.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from .base import Message, MessagePage, Room, Store
from .credentials import SecretsError, SecretsMissing, ServerSecrets, check_secret, generate
from .errors import (
    NotFound,
    StoreClosed,
    StoreError,
    StoreUnavailable,
    UnsupportedStore,
)
from .postgres_notifications import PostgresNotifications
from .postgres_schema import ROOM_LOCK_CLASS, migrate
from .rooms import RoomMethods, changed_message

if TYPE_CHECKING:
    from psycopg import AsyncConnection
    from psycopg_pool import AsyncConnectionPool

T = TypeVar("T")

_COLUMNS = "id, room, user_id, user_name, text, created, edited, deleted"
#: Seconds :meth:`PostgresStore.open` may spend migrating, or waiting for another process to.
MIGRATION_TIMEOUT = 120.0
#: URL schemes this store answers to; ``postgresql+driver://`` (SQLAlchemy's) is refused.
SCHEMES = ("postgresql", "postgres")


def _message(row: tuple[Any, ...]) -> Message:
    id, room, user_id, user_name, text, created, edited, deleted = row
    return Message(id, room, user_id, user_name, text, created, edited, bool(deleted))


def _drivers() -> tuple[Any, Any]:
    try:
        import psycopg
        import psycopg_pool
    except ImportError:
        raise UnsupportedStore(
            "PostgreSQL needs psycopg 3 and its pool: pip install 'dashboard[postgres]'"
        ) from None
    return psycopg, psycopg_pool


#: Calls that may wait for a pooled connection at once (``PostgresStore(max_waiting=...)``).
DEFAULT_MAX_WAITING = 256


class PostgresStore(RoomMethods, PostgresNotifications, Store):
    """Rooms, messages, notifications and the server's secrets in one PostgreSQL database.

    Several server processes may share the database; they see each other's writes at once.

    Args:
        url: a libpq URL, ``postgresql://user:password@host:port/dbname?option=value``.
        pool_size: most connections this process opens (the pool keeps one open when idle);
            every concurrent call holds one for its duration.
        timeout: seconds any one call may take, waiting for a connection included, before
            it raises :class:`StoreUnavailable`.
        connect_timeout: seconds to wait for a new connection (libpq counts whole seconds,
            at least 2).
        reconnect_timeout: seconds the pool retries a lost connection in the background
            (1, 2, 4... seconds apart) before leaving the next call to start again. It bounds
            how long service stays down after the database is back, whatever the outage's
            length; with no bound the retries would space out as long as the outage lasted.
        max_waiting: calls that may wait for a connection at once; one more is refused at once
            with :class:`StoreUnavailable`. A waiting call whose ``timeout`` passed stays in
            psycopg_pool's queue until a connection is free, so without this bound an outage
            would grow memory with every request (3.4 KB each, measured).

    Raises:
        UnsupportedStore: psycopg is not installed, or ``url`` is not a PostgreSQL URL.
    """

    def __init__(
        self,
        url: str,
        *,
        pool_size: int = 10,
        timeout: float = 5.0,
        connect_timeout: float = 5.0,
        reconnect_timeout: float = 5.0,
        max_waiting: int = DEFAULT_MAX_WAITING,
    ) -> None:
        psycopg, _ = _drivers()
        scheme = url.partition("://")[0].lower()
        if scheme not in SCHEMES:
            raise UnsupportedStore(f"expected postgresql://..., got a {scheme!r} URL")
        try:
            params = psycopg.conninfo.conninfo_to_dict(url)
        except psycopg.Error as exc:
            detail = " ".join(str(exc).split())
            raise UnsupportedStore(f"not a usable PostgreSQL URL: {detail}") from None
        # libpq checks the port only when it connects; a typo should fail at once.
        for port in str(params.get("port") or "5432").split(","):
            if not (port.isascii() and port.isdigit() and 0 < int(port) < 65536):
                raise UnsupportedStore(f"not a usable PostgreSQL URL: bad port {port!r}")
        if pool_size < 1 or max_waiting < 1:
            raise ValueError("pool_size and max_waiting must be at least 1")
        if not min(timeout, connect_timeout, reconnect_timeout) > 0:
            raise ValueError("timeouts must be positive")
        self.url = url
        self.pool_size = pool_size
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.reconnect_timeout = reconnect_timeout
        self.max_waiting = max_waiting
        host = params.get("host") or "localhost"
        #: The database as messages name it: ``host:port/dbname``, never the password.
        self.where = f"{host}:{params.get('port') or 5432}/{params.get('dbname') or ''}"
        self._url_options = str(params.get("options") or "")
        self._pool: AsyncConnectionPool | None = None
        self._opening = asyncio.Lock()

    def __repr__(self) -> str:
        return f"PostgresStore({self.where!r})"

    def _connect_options(self) -> dict[str, Any]:
        milliseconds = int(self.timeout * 1000)
        return {
            "autocommit": True,  # transactions are explicit: conn.transaction()
            "connect_timeout": max(2, math.ceil(self.connect_timeout)),
            "application_name": "dashboard",
            # The server ends a statement, or a transaction left idle, that outlives a call.
            # Appended to the URL's own options (a search_path, say), which this would replace.
            "options": f"{self._url_options} -c statement_timeout={milliseconds} "
            f"-c idle_in_transaction_session_timeout={milliseconds * 2}".strip(),
            # A peer that vanished without a FIN (a dead host) is noticed in ~20 s, not hours.
            "keepalives": 1,
            "keepalives_idle": 10,
            "keepalives_interval": 5,
            "keepalives_count": 2,
        }

    async def open(self) -> None:
        async with self._opening:  # two concurrent opens must not build two pools
            if self._pool is None:
                await self._open()

    async def _open(self) -> None:
        psycopg, psycopg_pool = _drivers()
        options = self._connect_options()
        try:
            async with asyncio.timeout(self.connect_timeout + MIGRATION_TIMEOUT):
                conn = await psycopg.AsyncConnection.connect(self.url, **options)
                try:
                    # Waiting for another process's migration lock is not a slow query.
                    await conn.execute("SET statement_timeout = 0")
                    await migrate(conn, self.where)
                finally:
                    await conn.close()
        except (psycopg.Error, TimeoutError) as exc:
            raise self._translate(exc) from exc
        pool = psycopg_pool.AsyncConnectionPool(
            self.url,
            kwargs=options,
            min_size=1,
            max_size=self.pool_size,
            open=False,
            timeout=self.timeout,
            # A connection broken by a database restart is found before it is lent, not by
            # the request that borrows it.
            check=psycopg_pool.AsyncConnectionPool.check_connection,
            # Callers get 503s meanwhile; a call finding the pool empty starts a new round.
            reconnect_timeout=self.reconnect_timeout,
            max_waiting=self.max_waiting,
            name="dashboard",
        )
        try:
            await pool.open(wait=True, timeout=self.connect_timeout)
        except BaseException as exc:
            await pool.close()
            if isinstance(exc, psycopg.Error | TimeoutError):
                raise self._translate(exc) from exc
            raise
        self._pool = pool

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close(timeout=self.timeout)

    async def ping(self) -> None:
        await self._run(self._ping)

    @staticmethod
    async def _ping(conn: AsyncConnection) -> None:
        await conn.execute("SELECT 1")

    def describe(self) -> dict[str, object]:
        """``{"kind": "postgresql", "where": "host:port/dbname", "pool": {"size",
        "available", "waiting"}}`` (the pool's connections, idle ones, and requests waiting
        for one; psycopg_pool's ``get_stats()``)."""
        report: dict[str, object] = {"kind": "postgresql", "where": self.where}
        if self._pool is not None:
            stats = self._pool.get_stats()
            report["pool"] = {
                "size": stats.get("pool_size", 0),
                "available": stats.get("pool_available", 0),
                "waiting": stats.get("requests_waiting", 0),
            }
        return report

    async def _run(self, fn: Callable[..., Awaitable[T]], *args: Any) -> T:
        """``await fn(conn, *args)`` on a pooled connection, bounded by :attr:`timeout`."""
        pool = self._pool
        if pool is None:
            raise StoreClosed(f"{self!r} is not open")
        psycopg, _ = _drivers()
        try:
            async with asyncio.timeout(self.timeout), pool.connection() as conn:
                return await fn(conn, *args)
        except (psycopg.Error, TimeoutError) as exc:
            if self._pool is None:
                raise StoreClosed(f"{self!r} was closed") from exc
            raise self._translate(exc) from exc

    def _translate(self, exc: BaseException) -> StoreError:
        psycopg, _ = _drivers()
        if isinstance(exc, TimeoutError | psycopg.OperationalError):
            # Down, restarting, refusing connections, out of resources, or too slow.
            detail = " ".join(str(exc).split())[:300] or "timed out"
            return StoreUnavailable(
                f"PostgreSQL at {self.where} is unavailable ({detail}); retry later"
            )
        return StoreError(f"PostgreSQL at {self.where}: {' '.join(str(exc).split())[:300]}")

    async def load_or_create_secrets(self) -> ServerSecrets:
        """The server secrets every process using this database shares (``dashboard_secrets``);
        generated by whichever process asks first.

        Raises:
            StoreUnavailable: the database cannot be reached.
            StoreError: the stored secret is too short or publicly known.
        """
        loaded = await self._run(self._secrets, generate(), time.time())
        try:
            check_secret(loaded.app_secret)
        except ValueError as exc:
            raise StoreError(f"dashboard_secrets in {self.where}: {exc}") from None
        return loaded

    @staticmethod
    async def _secrets(conn: AsyncConnection, fresh: ServerSecrets, now: float) -> ServerSecrets:
        # ON CONFLICT DO NOTHING: processes starting together all read the first one's row.
        await conn.execute(
            "INSERT INTO dashboard_secrets (app_secret, publish_token, created) "
            "VALUES (%s, %s, %s) ON CONFLICT (id) DO NOTHING",
            (fresh.app_secret, fresh.publish_token, now),
        )
        cursor = await conn.execute("SELECT app_secret, publish_token FROM dashboard_secrets")
        row = await cursor.fetchone()
        assert row is not None
        return ServerSecrets(row[0], row[1])

    @staticmethod
    async def _ensure_room(conn: AsyncConnection, name: str, now: float) -> Room:
        await conn.execute(
            "INSERT INTO dashboard_rooms (name, created) VALUES (%s, %s) "
            "ON CONFLICT (name) DO NOTHING",
            (name, now),
        )
        cursor = await conn.execute(
            "SELECT name, created FROM dashboard_rooms WHERE name = %s", (name,)
        )
        row = await cursor.fetchone()
        assert row is not None
        return Room(*row)

    @staticmethod
    async def _list_rooms(conn: AsyncConnection) -> list[Room]:
        cursor = await conn.execute("SELECT name, created FROM dashboard_rooms ORDER BY name")
        return [Room(*row) for row in await cursor.fetchall()]

    @staticmethod
    async def _add_message(
        conn: AsyncConnection, room: str, user_id: str, user_name: str, text: str, now: float
    ) -> Message:
        async with conn.transaction():
            # Held until COMMIT: the next writer in this room draws its id after ours commits.
            await conn.execute(
                "SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (ROOM_LOCK_CLASS, room)
            )
            await conn.execute(
                "INSERT INTO dashboard_rooms (name, created) VALUES (%s, %s) "
                "ON CONFLICT (name) DO NOTHING",
                (room, now),
            )
            cursor = await conn.execute(
                "INSERT INTO dashboard_messages (room, user_id, user_name, text, created) "
                "VALUES (%s, %s, %s, %s, %s) RETURNING id",
                (room, user_id, user_name, text, now),
            )
            row = await cursor.fetchone()
        assert row is not None
        return Message(row[0], room, user_id, user_name, text, now, None, False)

    async def _change(
        self, conn: AsyncConnection, id: int, user_id: str, text: str | None, now: float
    ) -> Message:
        """Edit (``text`` given) or soft-delete (``text=None``) one message as ``user_id``."""
        async with conn.transaction():
            new = changed_message(await self._get(conn, id, lock=True), user_id, text, now)
            await conn.execute(
                "UPDATE dashboard_messages SET text = %s, edited = %s, deleted = %s WHERE id = %s",
                (new.text, new.edited, new.deleted, id),
            )
        return new

    @staticmethod
    async def _page(conn: AsyncConnection, room: str, before: int, limit: int) -> MessagePage:
        # One row more than asked tells whether an older page exists, without a COUNT.
        cursor = await conn.execute(
            f"SELECT {_COLUMNS} FROM dashboard_messages WHERE room = %s AND id < %s "
            "ORDER BY id DESC LIMIT %s",
            (room, before, limit + 1),
        )
        newest_first = [_message(row) for row in await cursor.fetchall()]
        more = len(newest_first) > limit
        page = newest_first[:limit][::-1]
        return MessagePage(page, page[0].id if more else None)

    @staticmethod
    async def _get(conn: AsyncConnection, id: int, lock: bool = False) -> Message:
        cursor = await conn.execute(
            f"SELECT {_COLUMNS} FROM dashboard_messages WHERE id = %s"
            + (" FOR UPDATE" if lock else ""),
            (id,),
        )
        row = await cursor.fetchone()
        if row is None:
            raise NotFound(f"no message with id {id}")
        return _message(row)


def read_kept_secrets(url: str, timeout: float = 5.0) -> ServerSecrets:
    """The secrets ``dashboard serve --db URL`` keeps in that database, read synchronously
    (how ``dashboard token`` and ``dashboard notify`` find them without a running server).

    Raises:
        SecretsMissing: no server has generated them there yet (or the schema is missing).
        SecretsError: the database cannot be reached.
        UnsupportedStore: ``url`` is not a usable PostgreSQL URL, or psycopg is missing.
    """
    store = PostgresStore(url, timeout=timeout, connect_timeout=timeout)
    psycopg, _ = _drivers()
    options = store._connect_options()
    try:
        with psycopg.connect(url, **options) as conn:
            if conn.execute("SELECT to_regclass('dashboard_secrets')").fetchone() == (None,):
                row = None
            else:
                query = "SELECT app_secret, publish_token FROM dashboard_secrets"
                row = conn.execute(query).fetchone()
    except psycopg.Error as exc:
        problem = store._translate(exc)
        raise SecretsError(f"cannot read the secrets in {store.where}: {problem}") from None
    if row is None:
        raise SecretsMissing(f"no secrets in {store.where} (table dashboard_secrets)")
    return ServerSecrets(row[0], row[1])
