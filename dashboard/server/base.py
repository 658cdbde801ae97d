"""What every API handler shares: the server context, and one request pipeline.

Every request to an :class:`ApiHandler` goes through the same steps, in this order, before its
method runs:

1. the method must be one the handler declares in :attr:`ApiHandler.access` (else 405);
2. cross-origin protection (Tornado's ``cross_origin_protection``, the algorithm of Go's
   ``http.CrossOriginProtection``): a state-changing request from a browser page on a foreign
   origin is refused with 403 unless the allowlist names that origin or the request carries
   its own ``Authorization`` (a bearer token is never sent by the browser on its own);
3. authentication and the route's :class:`~.access.Access` (401);
4. the body limit, on ``Content-Length`` before anything is read (413), then on the bytes
   as they stream in; a refused body is never read, and the connection is closed.

Only then is the body available, through :meth:`ApiHandler.json_body` (:func:`parse_json`:
every malformed input is a 400) or :meth:`ApiHandler.form_body`. Every error, expected or not,
is answered as JSON, never as a traceback; CORS headers for allowlisted origins survive it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import tornado.httputil
import tornado.web

from ..ai.base import Provider
from ..chat import ChatService
from ..core.cors import cors_headers, preflight_headers
from ..core.errors import BackendUnavailable, PayloadTooLarge, ValidationError
from ..core.json_input import parse_json
from ..core.origins import cookies_count, host_allowed, names_origin
from ..core.user_tokens import UserIdentity
from ..hub import Hub
from ..hub.occupancy import LocalOccupancy, Occupancy
from ..hub.presence import MemoryPresence, Presence, RosterChange
from ..notifications import NotificationService
from .access import PANEL_USER_COOKIE, Access, AccessPolicy, Caller
from .errors import BEARER_CHALLENGE, ApiError
from .limits import Limits, RateLimiters
from .pusher_app import PusherApp
from .store_health import StoreHealth

__all__ = ["BEARER_CHALLENGE", "ApiError", "ApiHandler", "NotFoundHandler", "ServerContext"]

log = logging.getLogger("dashboard.server")

#: Bytes tolerated (and ignored) in the body of a GET, DELETE or OPTIONS request.
IGNORED_BODY_LIMIT = 1024


@dataclass
class ServerContext:
    """State shared by the handlers of one server.

    Attributes:
        hub: the realtime hub.
        policy: who callers are and what they may do (:mod:`.access`).
        version: the package version, for health.
        heartbeat: seconds between SSE heartbeat comments on an idle stream.
        retry_ms: reconnect delay suggested to SSE clients.
        limits: the server's bounds (:class:`~.limits.Limits`).
        rate_limits: the token buckets enforcing the rate bounds.
        streams: the open SSE handlers, for health and shutdown.
        chat_relays: the ``/api/chat`` answers streaming now, cancelled on shutdown.
        app: the Pusher app served at ``/app/{key}``.
        presence: who is on each presence channel: this process' rosters
            (:class:`~dashboard.hub.presence.MemoryPresence`), or the cluster's in Redis.
        occupancy: subscriptions per channel for the HTTP API: this process' hub, or the
            cluster's (:mod:`dashboard.hub.occupancy`); built from ``hub`` when ``None``.
        pusher_channels: channel -> the open Pusher connections subscribed to it.
        presence_listeners: channel -> the Pusher connections on it or joining it, told
            about roster changes (:meth:`roster_changed`), which do not go through the hub.
        pusher_sockets: socket_id -> open Pusher connection, for unique ids and shutdown.
        chat: rooms and messages (``/api/rooms``); ``None`` when the server has no store.
        notifications: per-user inboxes (``/api/notifications``); ``None`` without a store.
        store_health: the store's state for ``/api/health``; ``None`` without a store.
        allowed_origins: browser origins other than the server's own host that may open
            ``/api/events`` and ``/app/{key}``, send state-changing requests with the
            user's cookies, and read answers through CORS (:mod:`dashboard.core.origins`).
        ai: the model behind ``POST /api/chat``; ``None`` answers 503.
        login_max_age_days: how old a login cookie may be, as Panel's pages accept it
            (``pn.config.oauth_expiry``).
        allowed_hosts: the ``Host`` names requests may carry (a server bound to loopback
            answers only to loopback names and the allowlist's hosts: DNS rebinding);
            ``None`` for any.
        redis_url: the Redis the hub shares with other processes (``--redis``), ``None``
            for a hub of its own; its client comes from
            :func:`dashboard.hub.backends.redis.connect`.
        redis_prefix: the prefix of every Redis key and pub/sub channel this server uses.
    """

    hub: Hub
    policy: AccessPolicy
    version: str
    heartbeat: float = 15.0
    retry_ms: int = 3000
    limits: Limits = field(default_factory=Limits)
    rate_limits: RateLimiters = field(default_factory=RateLimiters)
    streams: set[Any] = field(default_factory=set)
    chat_relays: set[Any] = field(default_factory=set)
    app: PusherApp = field(default_factory=PusherApp)
    presence: Presence = field(default_factory=MemoryPresence)
    occupancy: Occupancy = None  # type: ignore[assignment]  # set in __post_init__
    pusher_channels: dict[str, set[Any]] = field(default_factory=dict)
    presence_listeners: dict[str, set[Any]] = field(default_factory=dict)
    pusher_sockets: dict[str, Any] = field(default_factory=dict)
    chat: ChatService | None = None
    notifications: NotificationService | None = None
    store_health: StoreHealth | None = None
    allowed_origins: frozenset[str] = frozenset()
    ai: Provider | None = None
    allowed_hosts: frozenset[str] | None = None
    login_max_age_days: float = 1.0
    redis_url: str | None = None
    redis_prefix: str = "dashboard:"

    def __post_init__(self) -> None:
        if self.occupancy is None:
            self.occupancy = LocalOccupancy(self.hub)

    def roster_changed(self, change: RosterChange) -> None:
        """The presence's ``notify``: tell this process' connections on the channel."""
        for connection in tuple(self.presence_listeners.get(change.channel, ())):
            connection.roster_changed(change)


def _is_length(text: str) -> bool:
    """Whether ``text`` is a Content-Length: ASCII digits only (``str.isdigit`` also takes
    ``"²"``, which ``int`` then refuses)."""
    return text.isascii() and text.isdigit()


class TornadoRequestView:
    """What :meth:`AccessPolicy.authenticate` reads, taken from a Tornado handler.

    Cookies count only when :func:`~dashboard.core.origins.cookies_count` says so: a page on
    another origin that the allowlist does not name (the wildcard ``*`` names none) is never
    identified by the cookies its browser sent along.
    """

    def __init__(self, handler: tornado.web.RequestHandler, ctx: ServerContext):
        self.handler = handler
        self.max_age_days = ctx.login_max_age_days
        allowed_origins = ctx.allowed_origins
        headers = handler.request.headers
        self._cookies_count = cookies_count(
            headers.get("Origin"), headers.get("Host"), allowed_origins
        )

    def header(self, name: str) -> str | None:
        return self.handler.request.headers.get(name)

    def cookie(self, name: str) -> str | None:
        return self.handler.get_cookie(name) if self._cookies_count else None

    def login_cookie(self) -> str | None:
        # get_secure_cookie raises without a cookie_secret, which Panel sets only with its auth.
        if not self._cookies_count or not self.handler.application.settings.get("cookie_secret"):
            return None
        raw = self.handler.get_secure_cookie(PANEL_USER_COOKIE, max_age_days=self.max_age_days)
        if not raw:
            return None
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            return None

    @property
    def remote_ip(self) -> str:
        return self.handler.request.remote_ip or ""


class MalformedOriginIsForeign:
    """Mixin for Tornado handlers: an ``Origin`` that cannot be parsed is simply not this host.

    Tornado (6.6) splits the ``Origin`` with :func:`urllib.parse.urlsplit` in its
    cross-origin check, which raises ``ValueError`` for ``http://[zz``: a 500 and a traceback
    for any caller who sends one.
    """

    def _origin_matches_host(self, origin: str) -> bool:
        try:
            return bool(super()._origin_matches_host(origin))  # type: ignore[misc]
        except ValueError:
            return False


def check_host(handler: tornado.web.RequestHandler, ctx: ServerContext) -> None:
    """Refuse a ``Host`` this server does not answer to (see :func:`host_allowed`).

    Raises:
        ApiError: 403 ``forbidden_host``.
    """
    host = handler.request.headers.get("Host")
    if not host_allowed(host, ctx.allowed_hosts):
        raise ApiError(
            403,
            "forbidden_host",
            f"this server does not answer to the host {host!r}; the operator can add it with "
            "--allow-websocket-origin HOST:PORT",
        )


def write_json_error(handler: tornado.web.RequestHandler, status_code: int, **kwargs: Any) -> None:
    """Answer an error as ``{"error", "message"}``, whatever raised it."""
    exc = kwargs.get("exc_info", (None, None, None))[1]
    if isinstance(exc, BackendUnavailable):
        # Whichever handler met it: the shared backend is down for now, retry shortly.
        exc = ApiError(503, exc.code, str(exc), {"Retry-After": str(exc.retry_after)})
        handler.set_status(503)
    if isinstance(exc, ApiError):
        code, message = exc.code, exc.message
        for name, value in exc.headers.items():
            handler.set_header(name, value)
    elif status_code >= 500:  # unexpected: the details are for the server log only
        code, message = "internal_error", "internal server error (see the server log)"
    elif isinstance(exc, tornado.web.HTTPError) and exc.log_message:
        code = "forbidden_origin" if status_code == 403 else "http_error"
        message = exc.log_message % exc.args if exc.args else exc.log_message
    else:
        code, message = "http_error", handler._reason
    handler.set_header("Content-Type", "application/json; charset=utf-8")
    handler.finish(json.dumps({"error": code, "message": message}))


@tornado.web.stream_request_body
class ApiHandler(MalformedOriginIsForeign, tornado.web.RequestHandler):
    """Base handler: declares access per method, and runs the pipeline of the module doc.

    Subclasses set :attr:`access` (``{"GET": Access.OPEN, "POST": Access.USER}``) and, when
    their bodies may be larger than the JSON default, :attr:`body_limit`.
    """

    ctx: ServerContext
    #: What each method needs; a method not listed answers 405.
    access: ClassVar[Mapping[str, Access]] = {}
    #: Largest body of POST, PUT and PATCH, in bytes; ``None``: the server's JSON limit.
    #: Other methods take no body (up to 1 KB of one is read and ignored).
    body_limit: ClassVar[int | None] = None

    caller: Caller
    _prepared = False
    _foreign_origin: ApiError | None = None
    _refusal: ApiError | None = None
    _body: bytearray | None = None
    _received = 0

    def initialize(self, ctx: ServerContext) -> None:
        self.ctx = ctx
        self._set_cors_headers()

    def set_default_headers(self) -> None:
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.set_header("Cache-Control", "no-store")
        if hasattr(self, "ctx"):  # Tornado calls this before initialize(), and after errors
            self._set_cors_headers()  # so CORS survives an error: its body must be readable

    def _set_cors_headers(self) -> None:
        headers = self.request.headers
        allowed = cors_headers(
            headers.get("Origin"), headers.get("Host", ""), self.ctx.allowed_origins
        )
        for name, value in allowed.items():
            self.set_header(name, value)

    # -- the pipeline --------------------------------------------------------------------

    def check_trusted_origin(self, origin: str) -> bool:
        """Tornado's cross-origin protection asks this for a state-changing request that a
        browser sent from another origin.

        Raises:
            ApiError: 403 ``forbidden_origin`` unless the allowlist names the origin (the
                wildcard ``*`` does not) or the request carries its own bearer token.
        """
        if names_origin(origin, self.ctx.allowed_origins):
            return True  # the wildcard * never lends a page the user's cookies
        if self.request.headers.get("Authorization", "").lower().startswith("bearer "):
            return True  # a token the page holds itself, never one the browser adds
        # Refused in prepare(), like any other refusal, so that a small body is read first
        # and the connection survives (Tornado would answer before the body and close).
        self._foreign_origin = ApiError(
            403,
            "forbidden_origin",
            f"a page on {origin!r} may not send this request; the server's operator can "
            "allow that origin with --allow-websocket-origin HOST:PORT",
        )
        return True

    async def prepare(self) -> None:
        self._prepared = True
        method = self.request.method or ""
        try:
            if method != "OPTIONS":  # a preflight never carries credentials: options() answers
                self._admit(method)
        except ApiError as refusal:
            if self._waits_to_send() or not self._small_body(method):
                # Answered now, before the body: Tornado then closes the connection unread.
                refusal.headers["Connection"] = "close"
                raise
            # The client is sending a body within the limit: answered once it is in, since a
            # response finished before the request is read ends the connection, which would
            # cost a keep-alive client its socket (and the reset may hide the answer from it).
            self._refusal = refusal
            setattr(self, method.lower(), self._refuse)
        self._start_body(method)

    def _admit(self, method: str) -> None:
        check_host(self, self.ctx)
        if self._foreign_origin is not None:
            raise self._foreign_origin
        access = self.access.get(method)
        if access is None:
            allowed = ", ".join(sorted(self.access))
            raise ApiError(
                405, "method_not_allowed", f"{method} is not allowed here; use {allowed}",
                {"Allow": allowed},
            )  # fmt: skip
        view = TornadoRequestView(self, self.ctx)
        self.caller = self.ctx.policy.authenticate(view, access)
        self.ctx.policy.admit(self.caller, access)

    def _waits_to_send(self) -> bool:
        """Whether the client sends its body only once invited (``Expect: 100-continue``):
        then a refusal before the body costs it nothing, and Tornado sends no invitation."""
        return self.request.headers.get("Expect", "").lower() == "100-continue"

    def _small_body(self, method: str) -> bool:
        """Whether the request declares a body within the limit (none counts)."""
        headers = self.request.headers
        if "chunked" in headers.get("Transfer-Encoding", "").lower():
            return False
        declared = headers.get("Content-Length", "0").strip()
        return _is_length(declared) and int(declared) <= self._limit(method)

    def _refuse(self, *args: str) -> None:
        assert self._refusal is not None
        raise self._refusal

    def _start_body(self, method: str) -> None:
        """Refuse a body over the limit by its ``Content-Length``, before reading any of it.

        A client that sends ``Expect: 100-continue`` (curl does for large bodies) then reads
        the 413 without sending the body; others may see the connection close under them.
        """
        limit = self._limit(method)
        declared = self.request.headers.get("Content-Length")
        if declared is not None:
            if not _is_length(declared.strip()):
                raise ApiError(
                    400,
                    "invalid_content_length",
                    "Content-Length is not a number",
                    {"Connection": "close"},
                )
            if int(declared) > limit:
                raise self._too_large(limit)
        self._body = bytearray()

    def _limit(self, method: str) -> int:
        if method not in ("POST", "PUT", "PATCH"):
            return IGNORED_BODY_LIMIT
        return self.body_limit if self.body_limit is not None else self.ctx.limits.json_body_bytes

    def _too_large(self, limit: int) -> ApiError:
        return ApiError(
            413, "body_too_large", f"body exceeds {limit} bytes", {"Connection": "close"}
        )

    def data_received(self, chunk: bytes) -> None:
        if self._finished or self._body is None:
            return  # refused already: the rest is discarded as Tornado closes the connection
        self._received += len(chunk)
        limit = self._limit(self.request.method or "")
        if self._received > limit:
            self._body = None
            self.send_error(413, exc_info=(ApiError, self._too_large(limit), None))
        elif self._refusal is None:  # a refused request's body is only counted, never kept
            self._body += chunk

    def options(self, *args: str) -> None:
        """Answer a CORS preflight (see :mod:`dashboard.core.cors`)."""
        headers = self.request.headers
        origin = headers.get("Origin")
        methods = [*self.access, "OPTIONS"]
        if origin is None:  # not a preflight; say what the route supports
            self.set_header("Allow", ", ".join(sorted(methods)))
            self.set_status(204)
            return
        allowed = preflight_headers(
            origin,
            headers.get("Host", ""),
            self.ctx.allowed_origins,
            methods,
            headers.get("Access-Control-Request-Method"),
            headers.get("Access-Control-Request-Headers"),
        )
        if allowed is None:
            raise ApiError(
                403,
                "forbidden_origin",
                f"preflight refused for origin {origin!r}: allow it with "
                "--allow-websocket-origin HOST:PORT, and use only the methods and headers "
                "this route allows",
            )
        for name, value in allowed.items():
            self.set_header(name, value)
        self.set_status(204)

    # -- what handlers use ---------------------------------------------------------------

    @property
    def user(self) -> UserIdentity:
        """The caller's user; only on methods declared :attr:`Access.USER`.

        Raises:
            ApiError: 401 when there is none (a declaration that does not match its use).
        """
        user = self.caller.user
        if user is None:
            raise ApiError(401, "no_identity", "this request is not identified", BEARER_CHALLENGE)
        return user

    @property
    def body(self) -> bytes:
        """The request body, complete and within the limit."""
        return bytes(self._body or b"")

    def json_body(self) -> Any:
        """The request body parsed as JSON (:func:`~dashboard.core.json_input.parse_json`).

        The Content-Type is not checked: ``curl -d`` labels JSON as a form, and refusing it
        would only get in the way.

        Raises:
            ApiError: 413 when too large, 400 for anything that is not plain JSON.
        """
        limits = self.ctx.limits
        try:
            return parse_json(self.body, max_bytes=self._limit("POST"), max_depth=limits.json_depth)
        except ValidationError as exc:
            raise self.validation_error(exc) from None

    def form_body(self) -> dict[str, str]:
        """The body as ``application/x-www-form-urlencoded`` fields (the first of each),
        text decoded as UTF-8 with errors replaced."""
        arguments: dict[str, list[bytes]] = {}
        files: dict[str, list[tornado.httputil.HTTPFile]] = {}
        tornado.httputil.parse_body_arguments(
            "application/x-www-form-urlencoded", self.body, arguments, files
        )
        return {
            name: values[0].decode("utf-8", "replace")
            for name, values in arguments.items()
            if values
        }

    def write_json(self, payload: Any, status: int = 200) -> None:
        self.set_status(status)
        self.finish(json.dumps(payload))

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        if isinstance(value, BackendUnavailable):
            # The backend logs its outage once; a 503 per request needs no traceback.
            log.debug("503 %s %s: %s", self.request.method, self.request.path, value)
            return
        super().log_exception(typ, value, tb)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        if not self._prepared:
            # Refused before prepare() (Tornado's own checks): the body was never read, and
            # Tornado closes the connection after this answer; say so to keep-alive clients.
            self.set_header("Connection", "close")
        write_json_error(self, status_code, **kwargs)

    def validation_error(self, exc: ValidationError) -> ApiError:
        status = 413 if isinstance(exc, PayloadTooLarge) else 400
        return ApiError(status, exc.code, str(exc))


class NotFoundHandler(ApiHandler):
    """JSON 404 for unknown routes under ``/api/`` and ``/apps/`` (401 first with a login:
    an anonymous caller learns nothing of the route map)."""

    access = {method: Access.OPEN for method in ("GET", "POST", "PUT", "PATCH", "DELETE")}

    async def prepare(self) -> None:
        await super().prepare()
        raise self._refusal or ApiError(404, "not_found", f"no API route {self.request.path}")
