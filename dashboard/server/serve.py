"""One Tornado process serving the Panel dashboard and the API side by side."""

from __future__ import annotations

import asyncio
import errno
import gc
import hmac
import ipaddress
import logging
import socket
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import panel as pn

from .. import __version__
from ..ai import Provider, provider_from_env
from ..chat import ChatService
from ..core.channel_policy import Authorize, ChannelPolicy, ChannelRule
from ..core.origins import LOOPBACK_HOSTS, allowlist_hosts
from ..hub import Hub
from ..notifications import NotificationService
from ..store import Store, store_from_url
from ..store.credentials import (
    check_secret,
    load_or_create_secrets,
    secrets_path,
)
from ..store.credentials import generate as generate_secrets
from ..store.sqlite import SQLiteStore
from .access import AccessPolicy
from .base import ServerContext
from .headers import security_headers
from .limits import Limits, RateLimiters
from .login import LoginProvider, read_credentials
from .pusher_app import DEFAULT_APP_ID, DEFAULT_APP_KEY, PusherApp
from .pusher_ws import close_all
from .routes import LINK_STATUS, NARROW_SIDEBAR, OFFLINE_ICONS, api_routes

log = logging.getLogger("dashboard.server")

#: Builds the page for one browser session.
PageFactory = Callable[[], Any]
#: Largest request body Tornado reads for any route (our API routes refuse far less).
MAX_HTTP_BODY = 1024 * 1024


class PortInUse(OSError):
    """The requested port is taken by another program."""


class DashboardServer:
    """The served dashboard: Panel pages at ``/``, the hub's API under ``/api/``.

    Security (the threat model is in docs/security.md): there is no built-in secret. Without
    ``app_secret`` / ``token``, a server with a file store keeps generated ones beside its
    database (:mod:`dashboard.store.credentials`), any other server makes fresh ones per
    process. Who may do what is one :class:`~.access.AccessPolicy`; browsers are held to the
    origin allowlist (CSRF, CORS, sockets), and every cookie is ``SameSite=Lax``.

    Args:
        hub: the hub to serve; a fresh in-memory hub by default.
        page: builds the page of each browser session; no page when ``None``.
        port: TCP port; 0 picks a free one.
        address: interface to bind, loopback by default.
        token: bearer token for ``POST /api/publish`` and ``POST /api/notifications``, at
            least 16 characters; from the secrets file, or generated, when ``None``.
        heartbeat: seconds between SSE heartbeat comments on idle streams.
        websocket_origins: extra ``host:port`` values browsers may use to reach the page; the
            same allowlist, plus the request's own host, guards ``/api/events``,
            ``/app/{key}``, every state-changing request made with cookies, and CORS
            (``*`` allows any origin, without cookies; see :mod:`dashboard.core.cors`).
        app_id: the Pusher app id; ``"1"`` when ``None``.
        app_key: the key Pusher clients connect with (``/app/{key}``); ``"dashboard-key"``.
        app_secret: signs private/presence subscriptions, user tokens and cookies; at least
            16 characters; from the secrets file, or generated, when ``None``.
        pusher: the full Pusher app settings (timeouts, limits); overrides the three above.
        store: a :class:`~dashboard.store.Store`, or a path / ``sqlite:///`` URL for one, that
            serves chat rooms under ``/api/rooms``; opened by :meth:`start` and closed by
            :meth:`stop` (also when passed in already built). No rooms when ``None``.
        basic_auth: turns on Panel's login page: a password every user name may log in with,
            or the path of a JSON file ``{"user": "password", ...}``. The login name is then
            the user's identity everywhere, and every API route, stream and socket needs a
            login, a user token or (where documented) the publish token.
        cookie_secret: signs Panel's login cookie; derived from the app secret when ``None``
            (logins survive a restart).
        ai: the model behind ``POST /api/chat`` (:mod:`dashboard.ai`); when ``None``,
            :func:`~dashboard.ai.provider_from_env` (OpenAI with ``OPENAI_API_KEY``, else
            the offline demo).
        authorize: the application's own channel rule, ``authorize(user, channel) -> bool``,
            for private and presence channels the built-in rules and ``channel_rules`` do not
            decide (:mod:`dashboard.core.channel_policy`); an exception refuses.
        channel_rules: ``"PATTERN=USERS"`` rules (``"private-team-*=ada,bob"``) or
            :class:`~dashboard.core.channel_policy.ChannelRule` objects.
        limits: the server's bounds (:class:`~.limits.Limits`).
        frame_ancestors: who may frame the pages (CSP ``frame-ancestors``), ``'self'`` by
            default.
        secrets_file: where generated secrets are kept; beside a file store's database when
            ``None``, nowhere (fresh per process) without one.
        use_xheaders: behind a reverse proxy, take the client's address and scheme from
            ``X-Real-Ip`` / ``X-Forwarded-For`` and ``X-Forwarded-Proto`` (per-address limits,
            ``Secure`` cookies). Only with a proxy that sets them: anyone else could.

    Raises:
        WeakSecret: an ``app_secret`` or ``token`` under 16 characters, or a publicly known one.
        SecretsError, StoreError: the secrets file or the store cannot be used.

    Usage::

        server = DashboardServer(port=0)
        await server.start()
        print(server.url)
        ...
        await server.stop()
    """

    def __init__(
        self,
        hub: Hub | None = None,
        *,
        page: PageFactory | None = None,
        port: int = 5006,
        address: str = "127.0.0.1",
        token: str | None = None,
        heartbeat: float = 15.0,
        websocket_origins: Sequence[str] = (),
        app_id: str | None = None,
        app_key: str | None = None,
        app_secret: str | None = None,
        pusher: PusherApp | None = None,
        store: Store | str | Path | None = None,
        basic_auth: str | None = None,
        cookie_secret: str | None = None,
        ai: Provider | None = None,
        authorize: Authorize | None = None,
        channel_rules: Sequence[str | ChannelRule] = (),
        limits: Limits | None = None,
        frame_ancestors: str = "'self'",
        secrets_file: str | Path | None = None,
        use_xheaders: bool = False,
    ) -> None:
        self.hub = hub or Hub()
        self.page = page
        self.address = address
        self.port = port
        self.websocket_origins = list(websocket_origins)
        self.frame_ancestors = frame_ancestors
        self.use_xheaders = use_xheaders
        # Built here so a bad store URL fails at once; opened by start(), closed by stop().
        self.store = store_from_url(store) if isinstance(store, str | Path) else store
        if secrets_file is None and isinstance(self.store, SQLiteStore):
            secrets_file = secrets_path(self.store.path)
        secrets_path_ = Path(secrets_file) if secrets_file is not None else None
        configured = pusher.secret if pusher is not None else app_secret
        if configured is not None:
            check_secret(configured)
        if token is not None:
            check_secret(token, "the publish token")
        #: Which secrets come from the secrets file (``"app secret"``, ``"publish token"``);
        #: the others were configured, or live in this process only.
        self.kept_secrets: tuple[str, ...] = ()
        #: The file generated secrets are kept in; ``None`` when none is used.
        self.secrets_file: Path | None = None
        if configured is None or token is None:
            kept = load_or_create_secrets(secrets_path_) if secrets_path_ else generate_secrets()
            if secrets_path_ is not None:
                self.secrets_file = secrets_path_
                self.kept_secrets = tuple(
                    what
                    for what, given in (("app secret", configured), ("publish token", token))
                    if given is None
                )
            configured = configured or kept.app_secret
            token = token or kept.publish_token
        self.token = token
        app = pusher or PusherApp(
            app_id=app_id or DEFAULT_APP_ID, key=app_key or DEFAULT_APP_KEY, secret=configured
        )
        rules = [ChannelRule.parse(r) if isinstance(r, str) else r for r in channel_rules]
        policy = AccessPolicy(
            secret=app.secret,
            publish_token=self.token,
            login=bool(basic_auth),
            channels=ChannelPolicy(rules, authorize),
        )
        limits = limits or Limits()
        self.ctx = ServerContext(
            hub=self.hub,
            policy=policy,
            version=__version__,
            heartbeat=heartbeat,
            app=app,
            limits=limits,
            rate_limits=RateLimiters(limits),
        )
        self.ctx.ai = ai if ai is not None else provider_from_env()
        self.basic_auth = basic_auth
        self.cookie_secret = cookie_secret or _login_cookie_secret(app.secret)
        self._server: Any = None
        if self.store is not None:
            self.ctx.chat = ChatService(self.store, self.hub)
            self.ctx.notifications = NotificationService(self.store, self.hub)

    def _login_options(self) -> dict[str, Any]:
        """``pn.serve`` options for the login: Panel's page, with attempts limited and names
        checked (login.py), and the key of its cookie. Without a login there is no login
        cookie to sign, and the API ignores any cookie named ``user``."""
        if not self.basic_auth:
            return {}
        # Panel's pages read the cookie back with this age; our routes do the same.
        self.ctx.login_max_age_days = pn.config.oauth_expiry
        provider = LoginProvider(read_credentials(self.basic_auth), self.ctx.rate_limits.login)
        return {"auth_provider": provider, "cookie_secret": self.cookie_secret}

    @property
    def url(self) -> str:
        host = f"[{self.address}]" if ":" in self.address else self.address
        return f"http://{host}:{self.port}"

    @property
    def local_url(self) -> str:
        """Where this process reaches itself: :attr:`url`, with a wildcard address replaced by
        loopback (a dashboard session's chat connection uses it)."""
        if self.address in ("", "0.0.0.0"):
            return f"http://127.0.0.1:{self.port}"
        if self.address == "::":
            return f"http://[::1]:{self.port}"
        return self.url

    async def start(self) -> None:
        """Bind the port and start serving on the running event loop.

        Raises:
            PortInUse: when the port is taken.
            StoreCorrupt, StoreUnavailable: the message store cannot be opened.
        """
        if self.store is not None:
            await self.store.open()  # before binding: a bad database stops the start here
        await self.hub.start()
        if self.port == 0:
            self.port = _free_port(self.address)
        origins = {f"{host}:{self.port}" for host in ("localhost", "127.0.0.1", self.address)}
        origins |= set(self.websocket_origins)
        self.ctx.allowed_origins = frozenset(origins)
        if _is_loopback(self.address):
            # Only this machine can reach the port, so only these names can be meant: any
            # other Host is a rebound DNS name (see dashboard.core.origins.host_allowed).
            self.ctx.allowed_hosts = LOOPBACK_HOSTS | allowlist_hosts(self.websocket_origins)
        pages = {"/": self.page} if self.page is not None else {}
        # Every page of this process loads them: chat icons come from here, not from a CDN;
        # the browser itself shows whether the page is still connected to this server; and a
        # phone opens the dashboard with its sidebar closed (a no-op on pages without one).
        pn.config.js_files = {
            **pn.config.js_files,
            "dashboard_offline_icons": OFFLINE_ICONS,
            "dashboard_link_status": LINK_STATUS,
            "dashboard_narrow_sidebar": NARROW_SIDEBAR,
        }
        try:
            self._server = pn.serve(
                pages,
                # Tornado's cross-origin protection for every state-changing request, Panel's
                # own login form included (ApiHandler.check_trusted_origin adds the allowlist).
                cross_origin_protection=True,
                transforms=[security_headers(self.frame_ancestors)],
                # A backstop for routes that read whole bodies (Panel's): no API route takes
                # more than 256 KB, and they refuse by Content-Length before reading.
                http_server_kwargs={
                    "max_body_size": MAX_HTTP_BODY,
                    "body_timeout": self.ctx.limits.body_timeout,
                    # Also bounds the wait for a request's headers: no slowloris.
                    "idle_connection_timeout": self.ctx.limits.idle_timeout,
                    "xheaders": self.use_xheaders,
                },
                port=self.port,
                address=self.address,
                websocket_origin=sorted(origins),
                extra_patterns=api_routes(self.ctx),
                show=False,
                start=False,
                title="Realtime dashboard",
                **self._login_options(),
            )
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise PortInUse(
                    exc.errno, f"port {self.port} on {self.address} is in use"
                ) from None
            raise
        self._server.start()

    async def stop(self) -> None:
        """Close the SSE streams cleanly, then stop listening."""
        await self.hub.stop()  # ends every subscription, so each stream handler finishes
        for relay in list(self.ctx.chat_relays):
            relay.cancel()  # closes each upstream model request
        close_all(self.ctx)  # Pusher sockets without a subscription
        await asyncio.sleep(0)  # let the handlers write their last chunk
        if self._server is not None:
            self._server.stop()
            self._server = None
        if self.store is not None:
            await self.store.close()  # last, so writes the handlers queued still commit


def _login_cookie_secret(app_secret: str) -> str:
    """A key for Panel's login cookie, derived from the app secret: logins survive a restart,
    and the key never equals a secret used for anything else."""
    return hmac.new(app_secret.encode(), b"dashboard panel cookie secret", "sha256").hexdigest()


def _is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return address.lower() == "localhost"


def _free_port(address: str) -> int:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.bind((address, 0))
        return int(probe.getsockname()[1])


def freeze_startup_heap() -> None:
    """Hide everything allocated so far from the garbage collector (``gc.freeze()``).

    Panel and Bokeh leave about 130,000 long-lived objects behind at start-up. Without this,
    every full collection during fan-out walks them all and stalls every stream for 100 ms or
    more (measured in docs/benchmarks.md). ``dashboard serve`` calls it once it is up; a
    notebook does not need it.
    """
    gc.collect()
    gc.freeze()
