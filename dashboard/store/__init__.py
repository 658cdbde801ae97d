"""Persistence for rooms and messages behind one small async interface.

The embedded default is an SQLite file (:class:`SQLiteStore`); several server processes share
one PostgreSQL database (:class:`PostgresStore`, which needs the ``postgres`` extra).
:func:`open_store` picks the backend from a path or URL, so configuration stays one string.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .base import Change, Message, MessagePage, Op, Room, Store
from .errors import (
    Forbidden,
    InvalidMessage,
    InvalidNotification,
    InvalidPaging,
    InvalidUser,
    MessageDeleted,
    NotFound,
    StoreClosed,
    StoreCorrupt,
    StoreError,
    StoreUnavailable,
    UnsupportedStore,
)
from .notifications import Notification, NotificationPage, ReadAll
from .postgres import PostgresStore
from .sqlite import SQLiteStore

__all__ = [
    "Change",
    "Forbidden",
    "InvalidMessage",
    "InvalidNotification",
    "InvalidPaging",
    "InvalidUser",
    "Message",
    "MessageDeleted",
    "MessagePage",
    "NotFound",
    "Notification",
    "NotificationPage",
    "Op",
    "PostgresStore",
    "ReadAll",
    "Room",
    "SQLiteStore",
    "Store",
    "StoreClosed",
    "StoreCorrupt",
    "StoreError",
    "StoreUnavailable",
    "UnsupportedStore",
    "open_store",
    "store_from_url",
]


def store_from_url(url_or_path: str | Path, **options: Any) -> Store:
    """Build (but do not open) the store that ``url_or_path`` names.

    Args:
        url_or_path: a file path, or ``sqlite:///relative.db`` / ``sqlite:////abs/path.db``
            (SQLAlchemy's convention: the path is what follows the third slash), or
            ``postgresql://user:password@host:port/dbname`` (also ``postgres://``).
        options: passed to the backend, e.g. ``busy_timeout=1.0`` for SQLite or
            ``pool_size=20`` for PostgreSQL.

    Raises:
        UnsupportedStore: an unknown scheme, a malformed URL, or PostgreSQL without psycopg.
    """
    if isinstance(url_or_path, Path):
        return SQLiteStore(url_or_path, **options)
    scheme, sep, rest = url_or_path.partition("://")
    if not sep:
        return SQLiteStore(url_or_path, **options)
    scheme = scheme.lower()
    if scheme == "sqlite":
        if not rest.startswith("/"):
            raise UnsupportedStore(f"expected sqlite:///path, got {url_or_path!r}")
        return SQLiteStore(rest[1:], **options)
    if scheme in ("postgres", "postgresql"):
        return PostgresStore(str(url_or_path), **options)
    if scheme.startswith(("postgresql+", "postgres+")):
        raise UnsupportedStore(
            f"{scheme}:// names a SQLAlchemy driver; give a plain postgresql:// URL"
        )
    raise UnsupportedStore(
        f"unknown store scheme {scheme!r}; use a file path, sqlite:///path or postgresql://..."
    )


async def open_store(url_or_path: str | Path, **options: Any) -> Store:
    """Build the store that ``url_or_path`` names and open it.

    Use as ``store = await open_store("chat.db")`` and ``await store.close()``, or
    ``async with await open_store("chat.db") as store:``.

    Raises:
        UnsupportedStore: see :func:`store_from_url`.
        StoreCorrupt: the file is not a usable database.
        StoreUnavailable: the database is locked, unreachable or cannot be opened.
    """
    store = store_from_url(url_or_path, **options)
    await store.open()
    return store
