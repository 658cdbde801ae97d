"""What every API handler shares: JSON errors, JSON bodies, bearer tokens, server context."""

from __future__ import annotations

import hmac
import json
import logging
from dataclasses import dataclass, field
from typing import Any

import tornado.web

from ..ai.base import Provider
from ..chat import ChatService
from ..core.errors import PayloadTooLarge, ValidationError
from ..core.presence import PresenceRoster
from ..core.user_limits import KeyedRateLimiter
from ..hub import Hub
from ..notifications import NotificationService
from .pusher_app import PusherApp

log = logging.getLogger("dashboard.server")


@dataclass
class ServerContext:
    """State shared by the handlers of one server.

    Attributes:
        hub: the realtime hub.
        token: bearer token that guards publishing.
        heartbeat: seconds between SSE heartbeat comments on an idle stream.
        retry_ms: reconnect delay suggested to SSE clients.
        max_body_bytes: largest request body accepted by JSON endpoints.
        streams: the open SSE handlers, for health and shutdown.
        chat_relays: the ``/api/chat`` answers streaming now, cancelled on shutdown.
        app: the Pusher app served at ``/app/{key}``.
        roster: who is on each presence channel, one for the whole server.
        pusher_channels: channel -> the open Pusher connections subscribed to it, for
            presence notices, which do not go through the hub.
        pusher_sockets: socket_id -> open Pusher connection, for unique ids and shutdown.
        chat: rooms and messages (``/api/rooms``); ``None`` when the server has no store.
        notifications: per-user inboxes (``/api/notifications``); ``None`` without a store.
        allowed_origins: browser origins other than the server's own host that may open
            ``/api/events`` and ``/app/{key}`` (:mod:`dashboard.core.origins`); none by default.
        ai: the model behind ``POST /api/chat``; ``None`` answers 503.
        ai_limits: ``POST /api/chat`` requests per user: 20 a minute, 10 at once.
    """

    hub: Hub
    token: str
    version: str
    heartbeat: float = 15.0
    retry_ms: int = 3000
    max_body_bytes: int = 64 * 1024
    streams: set[Any] = field(default_factory=set)
    chat_relays: set[Any] = field(default_factory=set)
    app: PusherApp = field(default_factory=PusherApp)
    roster: PresenceRoster = field(default_factory=PresenceRoster)
    pusher_channels: dict[str, set[Any]] = field(default_factory=dict)
    pusher_sockets: dict[str, Any] = field(default_factory=dict)
    chat: ChatService | None = None
    notifications: NotificationService | None = None
    allowed_origins: frozenset[str] = frozenset()
    ai: Provider | None = None
    ai_limits: KeyedRateLimiter = field(
        default_factory=lambda: KeyedRateLimiter(rate=20 / 60, burst=10)
    )


#: The ``WWW-Authenticate`` header of a 401 that wants a bearer token.
BEARER_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="dashboard"'}


class ApiError(tornado.web.HTTPError):
    """An HTTP error with a JSON body ``{"error": code, "message": message}``.

    ``message`` is written for the client, whatever the status (a 503 says what is
    unavailable); ``headers`` (``Retry-After``, ``WWW-Authenticate`` ...) go with the answer.
    They must travel on the error: Tornado clears headers set before an error is sent.
    """

    def __init__(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(status, reason=None)
        self.code = code
        self.message = message
        self.headers = headers or {}


class ApiHandler(tornado.web.RequestHandler):
    """Base handler: every error, expected or not, is answered as JSON, never as a traceback."""

    ctx: ServerContext

    def initialize(self, ctx: ServerContext) -> None:
        self.ctx = ctx

    def set_default_headers(self) -> None:
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.set_header("Cache-Control", "no-store")

    def write_json(self, payload: Any, status: int = 200) -> None:
        self.set_status(status)
        self.finish(json.dumps(payload))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, ApiError):
            code, message = exc.code, exc.message
            for name, value in exc.headers.items():
                self.set_header(name, value)
        elif status_code >= 500:  # unexpected: the details are for the server log only
            code, message = "internal_error", "internal server error (see the server log)"
        elif isinstance(exc, tornado.web.HTTPError) and exc.log_message:
            code, message = (
                "http_error",
                exc.log_message % exc.args if exc.args else exc.log_message,
            )
        else:
            code, message = "http_error", self._reason
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.finish(json.dumps({"error": code, "message": message}))

    def validation_error(self, exc: ValidationError) -> ApiError:
        status = 413 if isinstance(exc, PayloadTooLarge) else 400
        return ApiError(status, exc.code, str(exc))

    def json_body(self) -> Any:
        """The request body parsed as JSON.

        The Content-Type is not checked: ``curl -d`` labels JSON as a form, and refusing it
        would only get in the way.

        Raises:
            ApiError: 413 when too large, 400 for bad JSON.
        """
        body = self.request.body
        if len(body) > self.ctx.max_body_bytes:
            raise ApiError(413, "body_too_large", f"body exceeds {self.ctx.max_body_bytes} bytes")
        try:
            return json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ApiError(400, "invalid_json", f"body is not valid JSON: {exc}") from None

    def require_token(self) -> None:
        """Check ``Authorization: Bearer <DASHBOARD_TOKEN>`` in constant time.

        Raises:
            ApiError: 401 when the header is missing or the token is wrong.
        """
        scheme, _, token = self.request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise ApiError(
                401,
                "unauthorized",
                "send Authorization: Bearer <DASHBOARD_TOKEN>",
                BEARER_CHALLENGE,
            )
        if not hmac.compare_digest(token.strip().encode(), self.ctx.token.encode()):
            raise ApiError(401, "unauthorized", "invalid token", BEARER_CHALLENGE)


class NotFoundHandler(ApiHandler):
    """JSON 404 for unknown routes under /api/."""

    def prepare(self) -> None:
        raise ApiError(404, "not_found", f"no API route {self.request.path}")
