"""Notification rows and the input rules every store backend enforces for them.

A notification goes to one user (``user`` is their id) or to everyone (``user == "*"``). Its
``read`` flag is per viewing user, so it is not a column of the notification: a backend keeps
one row per (user, notification) read, plus a per-user "everything up to id N is read"
watermark written by read-all, which keeps read-all one row however many broadcasts there are.

Ids come from one sequence, strictly increasing and never reused, so an id doubles as a paging
cursor ("older than N") and as the read-all watermark.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Final, Literal

from ..core.channels import USER_CHANNEL_PREFIX, validate_channel
from ..core.user_tokens import MAX_USER_ID_LENGTH
from ..markup import judge_link
from .errors import NUL, NUL_REFUSED, InvalidNotification, InvalidUser

NotificationType = Literal["info", "success", "warning", "error"]

#: The ``user`` of a notification meant for every user.
BROADCAST: Final = "*"
NOTIFICATION_TYPES: Final[tuple[str, ...]] = ("info", "success", "warning", "error")
MAX_TITLE_LENGTH: Final = 200
MAX_MESSAGE_LENGTH: Final = 2000
MAX_LINK_LENGTH: Final = 2048
#: Largest ``data`` accepted, as compact UTF-8 JSON.
MAX_DATA_BYTES: Final = 4096
#: Each user's notifications travel on ``private-user-{id}``, so an id must fit that channel.


@dataclass(frozen=True)
class Notification:
    """One notification as one user sees it.

    Attributes:
        id: strictly increasing, never reused.
        user: the recipient's user id, or ``"*"`` for everyone.
        type: ``"info"``, ``"success"``, ``"warning"`` or ``"error"``.
        title: 1 to 200 characters.
        message: at most 2000 characters, possibly empty.
        link: an ``http(s)://`` URL or a path starting with ``/``, as
            :func:`~dashboard.markup.judge_link` normalized it; or ``None``.
        data: any JSON value (at most 4 KB as JSON), or ``None``.
        created: unix time in seconds.
        read: whether the viewing user has read it.
    """

    id: int
    user: str
    type: str
    title: str
    message: str
    link: str | None
    data: Any
    created: float
    read: bool


@dataclass(frozen=True)
class NotificationPage:
    """One page of a user's inbox (their own notifications plus broadcasts), newest first.

    Attributes:
        notifications: the page.
        next_before: pass it as ``before`` for the next older page; ``None`` at the end.
        unread_count: the user's unread notifications in the whole inbox, not just this page.
    """

    notifications: list[Notification]
    next_before: int | None
    unread_count: int


@dataclass(frozen=True)
class ReadAll:
    """What read-all did.

    Attributes:
        marked: how many notifications were unread before.
        up_to: every notification of the user's inbox with ``id <= up_to`` is now read
            (0 when the inbox is empty).
    """

    marked: int
    up_to: int


def validate_recipient(user: object) -> str:
    """Return ``user`` if it is ``"*"`` or a user id that fits ``private-user-{id}``.

    Raises:
        InvalidUser: otherwise (an id with spaces, say, could never be delivered live).
    """
    if user == BROADCAST:
        return BROADCAST
    if not isinstance(user, str):
        raise InvalidUser(f'user must be a user id or "*", not {type(user).__name__}')
    if not user:
        raise InvalidUser('user must be a user id or "*", not empty')
    try:
        if len(user) > MAX_USER_ID_LENGTH:
            raise ValueError  # no identity can be longer: it would never be read
        validate_channel(USER_CHANNEL_PREFIX + user)
    except ValueError:
        raise InvalidUser(
            f"user id {user[:40]!r} cannot receive notifications: it must be 1 to "
            f"{MAX_USER_ID_LENGTH} characters of letters, digits and _ - = @ , . ;"
        ) from None
    return user


def validate_type(value: object) -> str:
    if value not in NOTIFICATION_TYPES:
        raise InvalidNotification(
            f"type must be one of {', '.join(NOTIFICATION_TYPES)}, got {value!r}"
        )
    return str(value)


def validate_title(value: object) -> str:
    if not isinstance(value, str):
        raise InvalidNotification(f"title must be a string, not {type(value).__name__}")
    if not value.strip():
        raise InvalidNotification("title is required and must not be empty")
    if len(value) > MAX_TITLE_LENGTH:
        raise InvalidNotification(
            f"title is {len(value)} characters long; the limit is {MAX_TITLE_LENGTH}"
        )
    return _unicode(value, "title")


def validate_body(value: object) -> str:
    """The notification's ``message`` text."""
    if not isinstance(value, str):
        raise InvalidNotification(f"message must be a string, not {type(value).__name__}")
    if len(value) > MAX_MESSAGE_LENGTH:
        raise InvalidNotification(
            f"message is {len(value)} characters long; the limit is {MAX_MESSAGE_LENGTH}"
        )
    return _unicode(value, "message")


def validate_link(value: object) -> str | None:
    """``None``, or ``value`` as :func:`~dashboard.markup.judge_link` normalizes it: an
    ``http(s)://host...`` URL or a ``/path`` on this site, judged as a browser parses it.

    Raises:
        InvalidNotification: anything else (``javascript:``, ``//host``, ``/\\host``...), or
            longer than :data:`MAX_LINK_LENGTH` as written or normalized.
    """
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidNotification(f"link must be a string or null, not {type(value).__name__}")
    if len(value) > MAX_LINK_LENGTH:
        raise InvalidNotification(
            f"link is {len(value)} characters long; the limit is {MAX_LINK_LENGTH}"
        )
    link = judge_link(value)
    if link is None:
        raise InvalidNotification(
            "link must be an http:// or https:// URL or a path on this site (one /, not // "
            f"or /\\, which browsers read as another host), got {value[:60]!r}"
        )
    if len(link) > MAX_LINK_LENGTH:
        raise InvalidNotification(
            f"link is {len(link)} characters long once normalized; the limit is {MAX_LINK_LENGTH}"
        )
    return link


def encode_data(value: object) -> str | None:
    """``data`` as compact JSON text (``None`` for no data), at most 4 KB.

    Raises:
        InvalidNotification: not JSON-serialisable (NaN included) or too large.
    """
    if value is None:
        return None
    try:
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidNotification(f"data is not JSON-serialisable: {exc}") from None
    try:
        size = len(text.encode("utf-8"))
    except UnicodeEncodeError:
        raise InvalidNotification("data is not valid Unicode") from None
    if size > MAX_DATA_BYTES:
        raise InvalidNotification(
            f"data is {size} bytes as JSON; the limit is {MAX_DATA_BYTES} bytes"
        )
    return text


def validate_notification_id(value: object) -> int:
    """Return ``value`` if it is an int; the store answers NotFound for impossible ones."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidNotification(f"notification id must be an integer, not {type(value).__name__}")
    return value


def notification_json(notification: Notification) -> dict[str, Any]:
    """The wire form: ``{id, user, type, title, message, link, data, created, read}``."""
    return {
        "id": notification.id,
        "user": notification.user,
        "type": notification.type,
        "title": notification.title,
        "message": notification.message,
        "link": notification.link,
        "data": notification.data,
        "created": notification.created,
        "read": notification.read,
    }


def notification_from_json(data: dict[str, Any]) -> Notification:
    """The inverse of :func:`notification_json`.

    Raises:
        ValueError: when a field is missing or of the wrong kind.
    """
    try:
        return Notification(
            id=int(data["id"]),
            user=str(data["user"]),
            type=str(data["type"]),
            title=str(data["title"]),
            message=str(data["message"]),
            link=data.get("link"),
            data=data.get("data"),
            created=float(data["created"]),
            read=bool(data.get("read", False)),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"not a notification: {exc}") from None


def _unicode(value: str, what: str) -> str:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        # Lone surrogates would fail deep inside the driver; refuse them up front.
        raise InvalidNotification(f"{what} is not valid Unicode") from None
    if NUL in value:
        raise InvalidNotification(NUL_REFUSED.format(what=what))
    return value


def notification_from_row(row: tuple[Any, ...]) -> Notification:
    """A notification from a row of ``id, user, type, title, message, link, data, created,
    read`` (``data`` as stored: JSON text or NULL), whichever store read it."""
    id, user, type, title, message, link, data, created, read = row
    decoded = None if data is None else json.loads(data)
    return Notification(id, user, type, title, message, link, decoded, created, bool(read))
