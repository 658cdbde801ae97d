"""The store seam: rooms and messages behind one small async interface.

The row types are frozen dataclasses, serialised only at the edges (REST, the hub). Input
rules live here as plain functions so every backend enforces exactly the same ones, and one
shared test suite (``tests/store``) runs against each backend through a parametrised fixture.

Message ids come from one sequence shared by all rooms, strictly increasing and never reused,
so an id doubles as a resume cursor: "everything in this room after id N" is a plain query.
"""

from __future__ import annotations

import abc
import asyncio
import time
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal

from ..core.channels import validate_channel
from .errors import (
    NUL,
    NUL_REFUSED,
    InvalidMessage,
    InvalidPaging,
    InvalidUser,
    NotFound,
    StoreError,
)
from .notifications import Notification, NotificationPage, ReadAll

MAX_TEXT_LENGTH = 4000
MAX_USER_LENGTH = 128
DEFAULT_PAGE = 50
MAX_PAGE = 200
# SQLite and PostgreSQL bigint both stop here; larger cursors simply mean "the newest".
MAX_ID = 2**63 - 1

Op = Literal["INSERT", "UPDATE", "DELETE"]


@dataclass(frozen=True)
class Room:
    """A chat room. Its name follows the channel rules, so a room maps onto one channel."""

    name: str
    created: float


@dataclass(frozen=True)
class Message:
    """One stored message. A deleted message stays as a tombstone: ``text`` is ``""``."""

    id: int
    room: str
    user_id: str
    user_name: str
    text: str
    created: float
    edited: float | None
    deleted: bool


@dataclass(frozen=True)
class Change:
    """A row change on a room, in the spirit of Supabase's ``postgres_changes``.

    Subscribers filter by :attr:`room` and by :attr:`op`; ``message`` is the row after the
    change (for ``DELETE``, the tombstone).
    """

    op: Op
    message: Message

    @property
    def room(self) -> str:
        return self.message.room


@dataclass(frozen=True)
class MessagePage:
    """One page of a room's history, oldest first.

    ``next_before`` is the cursor for the next older page, or ``None`` when this page
    reaches the room's first message.
    """

    messages: list[Message]
    next_before: int | None


def validate_room(name: object) -> str:
    """Room names follow the channel rules (:func:`~dashboard.core.channels.validate_channel`)."""
    return validate_channel(name)


def validate_user(value: object, what: str = "user_id") -> str:
    """Return ``value`` if it is a 1..128 character string without NUL, else raise
    :class:`InvalidUser`."""
    if not isinstance(value, str):
        raise InvalidUser(f"{what} must be a string, not {type(value).__name__}")
    if not value or len(value) > MAX_USER_LENGTH:
        raise InvalidUser(f"{what} must be 1 to {MAX_USER_LENGTH} characters, got {len(value)}")
    if NUL in value:
        raise InvalidUser(NUL_REFUSED.format(what=what))
    return value


def validate_text(text: object) -> str:
    """Return ``text`` if it is a non-blank string of at most 4000 characters, valid Unicode
    without NUL (``\\x00``).

    Raises:
        InvalidMessage: otherwise, saying which rule it broke.
    """
    if not isinstance(text, str):
        raise InvalidMessage(f"text must be a string, not {type(text).__name__}")
    if not text.strip():
        raise InvalidMessage("text must not be empty")
    if len(text) > MAX_TEXT_LENGTH:
        raise InvalidMessage(f"text is {len(text)} characters long; the limit is {MAX_TEXT_LENGTH}")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        # Lone surrogates would fail deep inside the driver; refuse them up front.
        raise InvalidMessage("text is not valid Unicode") from None
    if NUL in text:
        raise InvalidMessage(NUL_REFUSED.format(what="text"))
    return text


def validate_message_id(value: object) -> int:
    """Return ``value`` if it could be a message id; an impossible int is simply not found."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidMessage(f"message id must be an integer, not {type(value).__name__}")
    if not 1 <= value <= MAX_ID:
        raise NotFound(f"no message with id {value}")
    return value


def validate_page(before: object, limit: object) -> tuple[int, int]:
    """Return ``(before, limit)`` with ``before=None`` turned into "after the newest id"."""
    if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= MAX_PAGE:
        raise InvalidPaging(f"limit must be an integer from 1 to {MAX_PAGE}, got {limit!r}")
    if before is None:
        return MAX_ID, limit
    if not isinstance(before, int) or isinstance(before, bool) or before < 1:
        raise InvalidPaging(f"before must be a positive message id, got {before!r}")
    return min(before, MAX_ID), limit


#: Seconds a health check waits for the database's answer before it reports ``"down"``.
HEALTH_TIMEOUT = 2.0


class Store(abc.ABC):
    """Persistence for rooms and messages; every backend passes the same test suite.

    Every write is committed before its coroutine returns, so a caller may broadcast the
    result as a :class:`Change` knowing it will survive a restart. Use ``async with store:``
    or pair :meth:`open` with :meth:`close`.
    """

    #: Seconds :meth:`health` waits for the database's answer before it reports ``"down"``.
    health_timeout: float = HEALTH_TIMEOUT

    @abc.abstractmethod
    async def open(self) -> None:
        """Connect, check the data and create or migrate the schema. Idempotent.

        Raises:
            StoreCorrupt: the data is not a usable database.
            StoreUnavailable: the database is locked or cannot be opened.
        """

    @abc.abstractmethod
    async def close(self) -> None:
        """Release the connection. Idempotent; committed data is already durable."""

    @abc.abstractmethod
    async def ping(self) -> None:
        """One round trip to the database (``SELECT 1``).

        Raises:
            StoreUnavailable: the database cannot be reached. StoreClosed: not open.
        """

    @abc.abstractmethod
    def describe(self) -> dict[str, object]:
        """Which database this is, for health: ``kind`` and where (no password)."""

    async def health(self) -> dict[str, object]:
        """What ``GET /api/health`` reports under ``store``: :meth:`describe` plus ``state``
        (``"ok"``, or ``"down"`` with ``last_error``) and, when up, ``latency_ms`` of one
        :meth:`ping`. Never raises for the database's state; waits at most
        :attr:`health_timeout` s."""
        timeout = self.health_timeout
        started = time.perf_counter()
        try:
            async with asyncio.timeout(timeout):
                await self.ping()
        except TimeoutError:
            error = f"no answer within {timeout:g} s"
        except StoreError as exc:
            error = str(exc)
        else:
            latency_ms = round((time.perf_counter() - started) * 1000, 3)
            return {**self.describe(), "state": "ok", "latency_ms": latency_ms}
        return {**self.describe(), "state": "down", "last_error": error}  # after: fresh stats

    @abc.abstractmethod
    async def ensure_room(self, name: str) -> Room:
        """Create the room unless it exists.

        Returns:
            The room, with the time it was first created.
        """

    @abc.abstractmethod
    async def list_rooms(self) -> list[Room]:
        """Every room, sorted by name."""

    @abc.abstractmethod
    async def add_message(self, room: str, user_id: str, user_name: str, text: str) -> Message:
        """Store a new message, creating the room if needed.

        Returns:
            The committed message, with its new id.
        """

    @abc.abstractmethod
    async def edit_message(self, id: int, user_id: str, text: str) -> Message:
        """Replace a message's text and set ``edited``.

        Raises:
            NotFound: no message has this id.
            Forbidden: ``user_id`` is not the author.
            MessageDeleted: the message was deleted.
        """

    @abc.abstractmethod
    async def delete_message(self, id: int, user_id: str) -> Message:
        """Soft-delete a message: clear its text and flag it, keeping its id and place.

        Raises:
            NotFound, Forbidden, MessageDeleted: as for :meth:`edit_message`.
        """

    @abc.abstractmethod
    async def messages(
        self, room: str, *, before: int | None = None, limit: int = DEFAULT_PAGE
    ) -> MessagePage:
        """The newest ``limit`` messages of ``room`` with ``id < before``, oldest first.

        Tombstones are included so pages stay stable; an unknown room gives an empty page.

        Args:
            before: a message id; ``None`` starts at the newest message.
            limit: page size, 1 to 200.
        """

    @abc.abstractmethod
    async def get_message(self, id: int) -> Message:
        """One message by id.

        Raises:
            NotFound: no message has this id.
        """

    # Notifications (types and input rules in :mod:`dashboard.store.notifications`).

    @abc.abstractmethod
    async def add_notification(
        self,
        user: str,
        type: str,
        title: str,
        message: str = "",
        link: str | None = None,
        data: Any = None,
    ) -> Notification:
        """Store a notification for ``user`` (a user id, or ``"*"`` for everyone).

        Returns:
            The committed notification, with its new id, unread.

        Raises:
            InvalidUser, InvalidNotification: input that breaks the rules.
        """

    @abc.abstractmethod
    async def notifications(
        self,
        user_id: str,
        *,
        unread_only: bool = False,
        before: int | None = None,
        limit: int = DEFAULT_PAGE,
    ) -> NotificationPage:
        """The newest ``limit`` notifications of ``user_id``'s inbox (their own plus
        broadcasts) with ``id < before``, newest first, with ``read`` as this user sees it.

        Args:
            unread_only: leave out what this user has read.
            before: a notification id; ``None`` starts at the newest.
            limit: page size, 1 to 200.
        """

    @abc.abstractmethod
    async def get_notification(self, id: int, user_id: str) -> Notification:
        """One notification as ``user_id`` sees it.

        Raises:
            NotFound: no notification has this id.
            Forbidden: it belongs to another user.
        """

    @abc.abstractmethod
    async def mark_notification_read(self, id: int, user_id: str) -> Notification:
        """Mark one notification read for ``user_id``; idempotent.

        Returns:
            The notification, ``read=True``.

        Raises:
            NotFound, Forbidden: as for :meth:`get_notification`.
        """

    @abc.abstractmethod
    async def mark_all_notifications_read(self, user_id: str) -> ReadAll:
        """Mark every notification of ``user_id``'s inbox read, in one write."""

    @abc.abstractmethod
    async def unread_notification_count(self, user_id: str) -> int:
        """How many notifications of ``user_id``'s inbox they have not read."""

    async def __aenter__(self) -> Store:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
