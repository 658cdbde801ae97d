"""Persistence for rooms and messages behind one small async interface.

The embedded default is an SQLite file (:class:`SQLiteStore`); :func:`open_store` picks a
backend from a path or URL so configuration stays one string when PostgreSQL arrives.
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
            (SQLAlchemy's convention: the path is what follows the third slash).
        options: passed to the backend, e.g. ``busy_timeout=1.0`` for SQLite.

    Raises:
        UnsupportedStore: for ``postgresql://`` (not supported yet) or any other scheme.
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
    if scheme in ("postgres", "postgresql") or scheme.startswith("postgresql+"):
        raise UnsupportedStore(
            "PostgreSQL is not supported yet; use an SQLite file path or sqlite:///path"
        )
    raise UnsupportedStore(f"unknown store scheme {scheme!r}; use a file path or sqlite:///path")


async def open_store(url_or_path: str | Path, **options: Any) -> Store:
    """Build the store that ``url_or_path`` names and open it.

    Use as ``store = await open_store("chat.db")`` and ``await store.close()``, or
    ``async with await open_store("chat.db") as store:``.

    Raises:
        UnsupportedStore: see :func:`store_from_url`.
        StoreCorrupt: the file is not a usable database.
        StoreUnavailable: the database is locked or cannot be opened.
    """
    store = store_from_url(url_or_path, **options)
    await store.open()
    return store
