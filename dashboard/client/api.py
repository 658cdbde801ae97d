"""The dashboard server's REST side, for one identified user: identity, rooms, messages,
notifications, auth.

Every request carries ``Authorization: Bearer <user token>`` (``dashboard token USER`` prints
one; a served dashboard session mints its own), so the server attributes messages to that
user and signs Pusher subscriptions only for them. :meth:`DashboardAPI.authorizer` plugs the
server's ``/pusher/auth`` into a :class:`~dashboard.client.PusherClient`, which is how a
notebook or a script joins presence channels without holding the app secret.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import aiohttp
from yarl import URL

from ..core.errors import DashboardError
from ..core.user_tokens import UserIdentity
from ..store.base import Message, MessagePage, Room
from ..store.notifications import Notification, NotificationPage, notification_from_json
from .pusher_channels import Authorizer

#: A fixed token, or a function returning a fresh one (e.g. re-issued before it expires).
TokenSource = str | Callable[[], str]


class APIError(DashboardError):
    """The server refused a request, or could not be reached.

    Attributes:
        status: the HTTP status; ``None`` when no response arrived.
        code: the server's error code (``"not_found"``, ``"forbidden"`` ...), or ``None``.
    """

    def __init__(self, message: str, status: int | None = None, code: str | None = None):
        super().__init__(message)
        self.status = status
        self.code = code


class DashboardAPI:
    """Calls a dashboard server's HTTP API as one user.

    Args:
        url: the server's base URL, e.g. ``http://127.0.0.1:5006``.
        token: the user token, or a function that returns one for each request.
        session: the aiohttp session to use; when ``None`` one is created and closed by
            :meth:`aclose`.
        timeout: seconds per request.

    Usage::

        async with DashboardAPI("http://127.0.0.1:5006", token) as api:
            me = await api.identity()
            message = await api.post("lobby", "hello")
    """

    def __init__(
        self,
        url: str | URL,
        token: TokenSource,
        *,
        session: aiohttp.ClientSession | None = None,
        timeout: float = 10.0,
    ) -> None:
        base = URL(str(url))
        if base.scheme not in ("http", "https") or not base.host:
            raise ValueError(f"{str(url)!r} is not an http(s) URL")
        self.url = base.with_path(base.path.rstrip("/"))
        self._token = token
        self._session = session
        self._owns_session = session is None
        self._timeout = aiohttp.ClientTimeout(total=timeout)

    async def __aenter__(self) -> DashboardAPI:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the session if this object created it. Idempotent."""
        if self._owns_session and self._session is not None:
            await self._session.close()
        self._session = None

    # -- endpoints ---------------------------------------------------------------------

    async def identity(self) -> UserIdentity:
        """Who the token speaks for (``GET /api/identity``)."""
        body = await self._request("GET", "/api/identity")
        return UserIdentity(str(body["user_id"]), body.get("name"))

    async def rooms(self) -> list[Room]:
        """Every room, sorted by name."""
        body = await self._request("GET", "/api/rooms")
        return [Room(room["name"], room["created"]) for room in body["rooms"]]

    async def messages(
        self, room: str, *, before: int | None = None, limit: int = 50
    ) -> MessagePage:
        """A page of ``room``'s messages with ``id < before``, oldest first."""
        params: dict[str, str] = {"limit": str(limit)}
        if before is not None:
            params["before"] = str(before)
        body = await self._request("GET", f"{_room_path(room)}/messages", params=params)
        return MessagePage(
            [Message(**message) for message in body["messages"]], body.get("next_before")
        )

    async def post(self, room: str, text: str) -> Message:
        """Post ``text`` to ``room`` as this user; returns the committed message."""
        body = await self._request("POST", f"{_room_path(room)}/messages", json={"text": text})
        return Message(**body)

    async def edit(self, room: str, id: int, text: str) -> Message:
        """Replace the text of one's own message ``id``."""
        path = f"{_room_path(room)}/messages/{id}"
        return Message(**await self._request("PATCH", path, json={"text": text}))

    async def delete(self, room: str, id: int) -> Message:
        """Delete one's own message ``id``; returns the tombstone."""
        return Message(**await self._request("DELETE", f"{_room_path(room)}/messages/{id}"))

    async def notifications(
        self, *, unread_only: bool = False, before: int | None = None, limit: int = 50
    ) -> NotificationPage:
        """A page of this user's inbox (their own and broadcast notifications), newest first."""
        params = {"limit": str(limit)}
        if unread_only:
            params["unread"] = "true"
        if before is not None:
            params["before"] = str(before)
        body = await self._request("GET", "/api/notifications", params=params)
        return NotificationPage(
            [notification_from_json(item) for item in body["notifications"]],
            body.get("next_before"),
            int(body["unread_count"]),
        )

    async def mark_read(self, id: int) -> Notification:
        """Mark notification ``id`` read for this user (every session of theirs hears it)."""
        return notification_from_json(await self._request("POST", f"/api/notifications/{id}/read"))

    async def mark_all_read(self) -> int:
        """Mark every notification read; returns how many were unread."""
        body = await self._request("POST", "/api/notifications/read-all")
        return int(body["marked"])

    async def send_notification(self, body: dict[str, Any]) -> Notification:
        """``POST /api/notifications``: this object's token must be the server's publish token.

        Raises:
            APIError: refused, or an answer that is not a notification.
        """
        answer = await self._request("POST", "/api/notifications", json=body)
        try:
            return notification_from_json(answer)
        except (ValueError, TypeError, AttributeError):
            raise APIError(
                "the server answered something that is not a notification",
                code="not_a_notification",
            ) from None

    def authorizer(self) -> Authorizer:
        """A :class:`~dashboard.client.PusherClient` authorizer backed by ``/pusher/auth``.

        The server signs private and presence subscriptions for this API's user only; the
        presence ``channel_data`` it returns is passed through untouched.
        """

        async def authorize(socket_id: str, channel: str, channel_data: Any) -> dict[str, Any]:
            fields = {"socket_id": socket_id, "channel_name": channel}
            result: dict[str, Any] = await self._request("POST", "/pusher/auth", json=fields)
            return result

        return authorize

    # -- plumbing ----------------------------------------------------------------------

    def auth_headers(self) -> dict[str, str]:
        """``{"Authorization": "Bearer <token>"}`` with a fresh token from the token source."""
        token = self._token() if callable(self._token) else self._token
        return {"Authorization": f"Bearer {token}"}

    async def _request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        json: Any = None,
    ) -> Any:
        if self._session is None:
            if not self._owns_session:
                raise APIError("this DashboardAPI was closed")
            self._session = aiohttp.ClientSession()
        headers = self.auth_headers()
        url = URL(str(self.url) + path, encoded=True)
        try:
            async with self._session.request(
                method, url, params=params, json=json, headers=headers, timeout=self._timeout
            ) as response:
                try:
                    body = await response.json(content_type=None)
                except ValueError:
                    body = None
                if response.status >= 400:
                    raise _error(method, path, response.status, body)
                return body
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise APIError(f"{method} {path}: {type(exc).__name__}: {exc}") from None


def _room_path(room: str) -> str:
    # Room names may hold any printable character, "/" and "?" included.
    return "/api/rooms/" + quote(room, safe="")


def _error(method: str, path: str, status: int, body: Any) -> APIError:
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        return APIError(body["message"], status, body.get("error"))
    return APIError(f"{method} {path} failed with HTTP {status}", status)
