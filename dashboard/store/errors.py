"""Typed errors raised by every store backend.

Each class carries a short machine-readable ``code`` so the server can map it to an HTTP
status without matching message text: validation errors are 400s, :class:`NotFound` a 404,
:class:`Forbidden` a 403, :class:`MessageDeleted` a 409 and the two storage failures 503s.
Input rules reuse :class:`~dashboard.core.errors.ValidationError`, so one handler covers
bad channel names and bad messages alike.
"""

from __future__ import annotations

from typing import Final

from ..core.errors import DashboardError, ValidationError

NUL: Final = "\x00"
#: Every store refuses NUL in text alike (a 400 at the API): PostgreSQL text cannot hold it,
#: and the SQLite store must not accept what the PostgreSQL one would refuse.
NUL_REFUSED: Final = "{what} must not contain NUL characters (\\x00)"


class StoreError(DashboardError):
    """Base class for errors about stored rooms and messages.

    Attributes:
        code: a short machine-readable reason, e.g. ``"not_found"``.
    """

    code = "store_error"


class NotFound(StoreError, LookupError):
    """No message has this id."""

    code = "not_found"


class Forbidden(StoreError):
    """The user may not change this message: only its author may edit or delete it."""

    code = "forbidden"


class MessageDeleted(StoreError):
    """The message was deleted; a tombstone cannot be edited or deleted again.

    Raised instead of succeeding silently so that every successful write is exactly one
    change event: a caller never broadcasts a second ``DELETE`` for the same message.
    """

    code = "message_deleted"


class StoreUnavailable(StoreError):
    """The database cannot be used right now: locked by another process, unreadable,
    read-only or out of space. Retrying later may succeed; nothing was written."""

    code = "store_unavailable"


class StoreCorrupt(StoreError):
    """The database file is not a database, is malformed or failed its integrity check.

    Retrying will not help; the message names the file and what to do about it.
    """

    code = "store_corrupt"


class UnsupportedStore(StoreError, ValueError):
    """A store URL whose scheme this version cannot open (e.g. ``postgresql://``)."""

    code = "unsupported_store"


class StoreClosed(StoreError, RuntimeError):
    """The store was used before :meth:`~dashboard.store.Store.open` or after ``close``."""

    code = "store_closed"


class InvalidMessage(ValidationError):
    """Message text that is empty, blank, longer than 4000 characters or not a string."""

    code = "invalid_message"


class InvalidUser(ValidationError):
    """A user id or display name that is empty, longer than 128 characters or not a string."""

    code = "invalid_user"


class InvalidNotification(ValidationError):
    """A notification with a missing or oversize title, an oversize message, an unknown type,
    a link that is not ``http(s)://...`` or ``/path``, or ``data`` over 4 KB as JSON."""

    code = "invalid_notification"


class InvalidPaging(ValidationError):
    """A page ``limit`` outside 1..200 or a ``before`` cursor that is not a positive id."""

    code = "invalid_paging"
