"""What every API handler shares: JSON errors, JSON bodies, bearer tokens, server context."""

from __future__ import annotations

import hmac
import json
import logging
from dataclasses import dataclass, field
from typing import Any

import tornado.web

from ..chat import ChatService
from ..core.errors import PayloadTooLarge, ValidationError
from ..core.presence import PresenceRoster
from ..hub import Hub
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
        app: the Pusher app served at ``/app/{key}``.
        roster: who is on each presence channel, one for the whole server.
        pusher_channels: channel -> the open Pusher connections subscribed to it, for
            presence notices, which do not go through the hub.
        pusher_sockets: socket_id -> open Pusher connection, for unique ids and shutdown.
        chat: rooms and messages (``/api/rooms``); ``None`` when the server has no store.
        allowed_origins: browser origins other than the server's own host that may open
            ``/api/events`` and ``/app/{key}`` (:mod:`dashboard.core.origins`); none by default.
    """

    hub: Hub
    token: str
    version: str
    heartbeat: float = 15.0
    retry_ms: int = 3000
    max_body_bytes: int = 64 * 1024
    streams: set[Any] = field(default_factory=set)
    app: PusherApp = field(default_factory=PusherApp)
    roster: PresenceRoster = field(default_factory=PresenceRoster)
    pusher_channels: dict[str, set[Any]] = field(default_factory=dict)
    pusher_sockets: dict[str, Any] = field(default_factory=dict)
    chat: ChatService | None = None
    allowed_origins: frozenset[str] = frozenset()


class ApiError(tornado.web.HTTPError):
    """An HTTP error with a JSON body ``{"error": code, "message": message}``."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(status, reason=None)
        self.code = code
        self.message = message


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
        elif isinstance(exc, tornado.web.HTTPError) and exc.log_message:
            code, message = (
                "http_error",
                exc.log_message % exc.args if exc.args else exc.log_message,
            )
        else:
            code, message = "http_error", self._reason
        if status_code >= 500:
            code, message = "internal_error", "internal server error (see the server log)"
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
            self.set_header("WWW-Authenticate", 'Bearer realm="dashboard"')
            raise ApiError(401, "unauthorized", "send Authorization: Bearer <DASHBOARD_TOKEN>")
        if not hmac.compare_digest(token.strip().encode(), self.ctx.token.encode()):
            raise ApiError(401, "unauthorized", "invalid token")


class NotFoundHandler(ApiHandler):
    """JSON 404 for unknown routes under /api/."""

    def prepare(self) -> None:
        raise ApiError(404, "not_found", f"no API route {self.request.path}")
