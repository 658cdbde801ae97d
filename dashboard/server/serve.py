"""One Tornado process serving the Panel dashboard and the API side by side."""

from __future__ import annotations

import asyncio
import errno
import gc
import hmac
import logging
import secrets
import socket
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import panel as pn

from .. import __version__
from ..ai import Provider, provider_from_env
from ..chat import ChatService
from ..hub import Hub
from ..notifications import NotificationService
from ..store import Store, store_from_url
from .base import ServerContext
from .pusher_app import DEFAULT_APP_ID, DEFAULT_APP_KEY, DEFAULT_APP_SECRET, PusherApp
from .pusher_ws import close_all
from .routes import OFFLINE_ICONS, api_routes

log = logging.getLogger("dashboard.server")

#: Builds the page for one browser session.
PageFactory = Callable[[], Any]


class PortInUse(OSError):
    """The requested port is taken by another program."""


class DashboardServer:
    """The served dashboard: Panel pages at ``/``, the hub's API under ``/api/``.

    Args:
        hub: the hub to serve; a fresh in-memory hub by default.
        page: builds the page of each browser session; no page when ``None``.
        port: TCP port; 0 picks a free one.
        address: interface to bind, loopback by default.
        token: bearer token for ``POST /api/publish``; generated when ``None``.
        heartbeat: seconds between SSE heartbeat comments on idle streams.
        websocket_origins: extra ``host:port`` values browsers may use to reach the page; the
            same allowlist, plus the request's own host, guards ``/api/events`` and ``/app/{key}``
            (``*`` allows any origin; see :mod:`dashboard.core.origins`).
        app_id: the Pusher app id; a local default when ``None``.
        app_key: the key Pusher clients connect with (``/app/{key}``); a local default.
        app_secret: signs private/presence subscriptions; a local default, not secret.
        pusher: the full Pusher app settings (timeouts, limits); overrides the three above.
        store: a :class:`~dashboard.store.Store`, or a path / ``sqlite:///`` URL for one, that
            serves chat rooms under ``/api/rooms``; opened by :meth:`start` and closed by
            :meth:`stop` (also when passed in already built). No rooms when ``None``.
        basic_auth: turns on Panel's login page: a password every user name may log in with,
            or the path of a JSON file ``{"user": "password", ...}``. The login name is then
            the user's identity everywhere (presence, chat, ``/pusher/auth``).
        cookie_secret: signs Panel's login cookie; when ``None``, derived from the app secret
            (logins survive a restart) unless that is the public default.
        ai: the model behind ``POST /api/chat`` (:mod:`dashboard.ai`); when ``None``,
            :func:`~dashboard.ai.provider_from_env` (OpenAI with ``OPENAI_API_KEY``, else
            the offline demo).

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
    ) -> None:
        self.hub = hub or Hub()
        self.page = page
        self.address = address
        self.port = port
        self.token = token or secrets.token_urlsafe(24)
        self.token_generated = token is None
        self.websocket_origins = list(websocket_origins)
        app = pusher or PusherApp(
            app_id=app_id or DEFAULT_APP_ID,
            key=app_key or DEFAULT_APP_KEY,
            secret=app_secret or DEFAULT_APP_SECRET,
        )
        self.ctx = ServerContext(
            hub=self.hub, token=self.token, version=__version__, heartbeat=heartbeat, app=app
        )
        self.ctx.ai = ai if ai is not None else provider_from_env()
        self.basic_auth = basic_auth
        self.cookie_secret = cookie_secret or _login_cookie_secret(app.secret)
        self._server: Any = None
        # Built here so a bad store URL fails at once; opened by start(), closed by stop().
        self.store = store_from_url(store) if isinstance(store, str | Path) else store
        if self.store is not None:
            self.ctx.chat = ChatService(self.store, self.hub)
            self.ctx.notifications = NotificationService(self.store, self.hub)

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
        pages = {"/": self.page} if self.page is not None else {}
        # Every page of this process loads it: chat icons come from here, not from a CDN.
        pn.config.js_files = {**pn.config.js_files, "dashboard_offline_icons": OFFLINE_ICONS}
        try:
            self._server = pn.serve(
                pages,
                port=self.port,
                address=self.address,
                websocket_origin=sorted(origins),
                extra_patterns=api_routes(self.ctx),
                show=False,
                start=False,
                title="Realtime dashboard",
                basic_auth=self.basic_auth,
                # Without a login there is no login cookie to sign, and /api handlers then
                # ignore any cookie named "user" (see identity.py).
                cookie_secret=self.cookie_secret if self.basic_auth else None,
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
    """A key for Panel's login cookie: derived from a chosen app secret (logins then survive a
    restart), random for the public default one (which would let anyone forge a login)."""
    if app_secret == DEFAULT_APP_SECRET:
        return secrets.token_urlsafe(32)
    return hmac.new(app_secret.encode(), b"dashboard panel cookie secret", "sha256").hexdigest()


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
