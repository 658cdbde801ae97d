"""One Tornado process serving the Panel dashboard and the API side by side."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
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
from ..hub.occupancy import RedisOccupancy
from ..hub.redis_limits import RedisRateLimiter
from ..hub.redis_presence import DEFAULT_PRESENCE_TIMEOUT, RedisPresence
from ..notifications import NotificationService
from ..store import Store, store_from_url
from ..store.credentials import (
    ServerSecrets,
    check_secret,
    load_or_create_secrets,
    secrets_path,
)
from ..store.credentials import generate as generate_secrets
from ..store.postgres import PostgresStore
from ..store.sqlite import SQLiteStore
from .access import AccessPolicy
from .base import ServerContext
from .headers import security_headers
from .hosts import refuse_foreign_hosts
from .limits import Limits, RateLimiters
from .login import LoginProvider, read_credentials
from .pages import limit_page_loads
from .pusher_app import DEFAULT_APP_ID, DEFAULT_APP_KEY, PusherApp
from .pusher_ws import close_all
from .routes import LINK_STATUS, NARROW_SIDEBAR, OFFLINE_ICONS, api_routes
from .store_health import StoreHealth

log = logging.getLogger("dashboard.server")

#: The prefix of Redis keys and channels (``--redis-prefix``).
DEFAULT_REDIS_PREFIX = "dashboard:"

#: Builds the page for one browser session.
PageFactory = Callable[[], Any]
#: Largest request body Tornado reads for any route (our API routes refuse far less).
MAX_HTTP_BODY = 1024 * 1024
#: Seconds :meth:`DashboardServer.stop` waits for the connections still open to close.
CLOSE_TIMEOUT = 5.0


class PortInUse(OSError):
    """The requested port is taken by another program."""


class DashboardServer:
    """The served dashboard: Panel pages at ``/``, the hub's API under ``/api/``.

    Security (the threat model is in docs/security.md): there is no built-in secret. Without
    ``app_secret`` / ``token``, a server with a file store keeps generated ones beside its
    database (:mod:`dashboard.store.credentials`), one with a PostgreSQL store keeps them in
    the database (read by :meth:`start`, shared by every process using it), any other server
    makes fresh ones per process. Who may do what is one :class:`~.access.AccessPolicy`;
    browsers are held to the origin allowlist (CSRF, CORS, sockets), and every cookie is
    ``SameSite=Lax``.

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
        store: a :class:`~dashboard.store.Store`, or a path / ``sqlite:///`` /
            ``postgresql://`` URL for one, that serves chat rooms under ``/api/rooms``; opened
            by :meth:`start` and closed by :meth:`stop` (also when passed in already built).
            No rooms when ``None``.
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
        secrets_file: where generated secrets are kept; beside a file store's database, or in
            a PostgreSQL store's ``dashboard_secrets`` table, when ``None``; nowhere (fresh per
            process) without a store.
        use_xheaders: behind a reverse proxy, take the client's address and scheme from
            ``X-Real-Ip`` / ``X-Forwarded-For`` and ``X-Forwarded-Proto`` (per-address limits,
            ``Secure`` cookies). Only with a proxy that sets them: anyone else could.
        redis_url: ``redis://HOST:PORT/DB``: without ``hub``, the hub keeps its history and
            delivers its events through this Redis (:mod:`dashboard.hub.backends.redis`),
            shared with every process given the same URL and prefix. Presence rosters,
            channel occupancy and the ``/api/chat`` limits then hold across those processes
            too (docs/deploy.md). Kept on the context (``ctx.redis_url``).
        redis_prefix: the prefix of this server's Redis keys and pub/sub channels.
        presence_timeout: with ``redis_url``, seconds within which the presence members of a
            process that stopped (crashed) are removed everywhere.

    Raises:
        WeakSecret: an ``app_secret`` or ``token`` under 16 characters, or a publicly known one.
        SecretsError, StoreError: the secrets file or the store cannot be used.
        ValueError: a ``redis_url`` that is not a Redis URL.

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
        redis_url: str | None = None,
        redis_prefix: str = DEFAULT_REDIS_PREFIX,
        presence_timeout: float = DEFAULT_PRESENCE_TIMEOUT,
    ) -> None:
        self.hub = hub or hub_for(redis_url, redis_prefix)
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
        #: Which secrets come from the secrets file or the database (``"app secret"``,
        #: ``"publish token"``); the others were configured, or live in this process only.
        self.kept_secrets: tuple[str, ...] = ()
        #: The file generated secrets are kept in; ``None`` when none is used.
        self.secrets_file: Path | None = None
        #: Where :attr:`kept_secrets` are kept, for humans: a file, or a database table.
        self.secrets_location: str | None = None
        # A PostgreSQL store keeps them in the database, shared by every process using it;
        # they are read by start(), once the store is open, and replace these placeholders.
        self._secrets_from_store = (
            secrets_path_ is None
            and isinstance(self.store, PostgresStore)
            and (configured is None or token is None)
        )
        self._configured = (configured, token, cookie_secret)
        if configured is None or token is None:
            kept = load_or_create_secrets(secrets_path_) if secrets_path_ else generate_secrets()
            if secrets_path_ is not None or self._secrets_from_store:
                self.secrets_file = secrets_path_
                self.secrets_location = (
                    str(secrets_path_) if secrets_path_ else "the database (dashboard_secrets)"
                )
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
            redis_url=redis_url,
            redis_prefix=redis_prefix,
        )
        self.ctx.ai = ai if ai is not None else provider_from_env()
        self._redis: Any = None
        if redis_url is not None:
            self._share_through_redis(redis_url, redis_prefix, presence_timeout)
        self.basic_auth = basic_auth
        self.cookie_secret = cookie_secret or _login_cookie_secret(app.secret)
        self._server: Any = None
        if self.store is not None:
            self.ctx.chat = ChatService(self.store, self.hub)
            self.ctx.notifications = NotificationService(self.store, self.hub)
            self.ctx.store_health = StoreHealth(self.store)

    def _share_through_redis(self, url: str, prefix: str, timeout: float) -> None:
        """What must hold across processes goes to Redis: rosters, occupancy, rate limits."""
        from ..hub.backends.redis import connect

        ctx, limits = self.ctx, self.ctx.limits
        redis = self._redis = connect(url)
        ctx.presence = RedisPresence(redis, prefix=prefix, timeout=timeout)
        ctx.occupancy = RedisOccupancy(self.hub, redis, prefix=prefix, timeout=timeout)

        def shared(name: str, per_minute: float, burst: int) -> RedisRateLimiter:
            return RedisRateLimiter(redis, name, per_minute / 60, burst, prefix=prefix)

        # Otherwise N processes would allow N times as much, password guesses included.
        rates = ctx.rate_limits
        rates.chat = shared("chat", limits.chat_per_minute, limits.chat_burst)
        rates.guest_chat = shared(
            "guest-chat", limits.guest_chat_per_minute, limits.guest_chat_burst
        )
        rates.new_guests = shared(
            "new-guests", limits.new_guests_per_minute, limits.new_guests_burst
        )
        rates.login = shared("login", limits.login_per_minute, limits.login_burst)
        rates.messages = shared("messages", limits.messages_per_minute, limits.messages_burst)
        rates.new_rooms = shared("new-rooms", limits.new_rooms_per_minute, limits.new_rooms_burst)

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
            StoreCorrupt, StoreUnavailable: the message store cannot be opened (or, for
                PostgreSQL, its secrets read).
        """
        if self.store is not None:
            await self.store.open()  # before binding: a bad database stops the start here
        if self.ctx.store_health is not None:
            await self.ctx.store_health.report()  # so that no /api/health ever waits for one
        if self._secrets_from_store:
            assert isinstance(self.store, PostgresStore)
            self._use_kept_secrets(await self.store.load_or_create_secrets())
        await self.hub.start()
        await self.ctx.presence.start(self.ctx.roster_changed)
        await self.ctx.occupancy.start()
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
        limit_page_loads(self._server._tornado, self.ctx, pages)  # Bokeh's Tornado application
        refuse_foreign_hosts(self._server._tornado, self.ctx)  # first of all rules
        self._server.start()

    def _use_kept_secrets(self, kept: ServerSecrets) -> None:
        """Replace the placeholder secrets with ``kept`` wherever none was configured."""
        app_secret, token, cookie_secret = self._configured
        if app_secret is None:
            self.ctx.app = dataclasses.replace(self.ctx.app, secret=kept.app_secret)
            self.ctx.policy.secret = kept.app_secret
            if cookie_secret is None:
                self.cookie_secret = _login_cookie_secret(kept.app_secret)
        if token is None:
            self.token = self.ctx.policy.publish_token = kept.publish_token

    async def stop(self) -> None:
        """Close the SSE streams cleanly, then stop listening and close the connections
        still open (keep-alive ones), waiting at most ``CLOSE_TIMEOUT`` s for them."""
        await self.hub.stop()  # ends every subscription, so each stream handler finishes
        for relay in list(self.ctx.chat_relays):
            relay.cancel()  # closes each upstream model request
        close_all(self.ctx)  # Pusher sockets without a subscription
        # After every socket left its presence channels: their leaves reach the cluster.
        await self.ctx.occupancy.stop()
        await self.ctx.presence.stop()
        await asyncio.sleep(0)  # let the handlers write their last chunk
        if self._server is not None:
            http = self._server._http  # Bokeh's own unlisten() closes connections this way
            self._server.stop()
            self._server = None
            # Idle keep-alive connections would otherwise stay open (and their clients wait
            # on them) until the process exits.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(http.close_all_connections(), CLOSE_TIMEOUT)
        if self.store is not None:
            await self.store.close()  # last, so writes the handlers queued still commit
        if self._redis is not None:
            await self._redis.aclose()


def hub_for(redis_url: str | None, prefix: str = DEFAULT_REDIS_PREFIX) -> Hub:
    """A hub of this process alone (memory), or one that shares the Redis at ``redis_url``
    with every process given the same URL and ``prefix``.

    Raises:
        ValueError: ``redis_url`` is not a Redis URL.
    """
    if redis_url is None:
        return Hub()
    from ..hub.backends.redis import RedisBackend

    return Hub(RedisBackend(redis_url, prefix=prefix))


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
