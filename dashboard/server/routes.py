"""The API routes, as Tornado patterns to hand to ``pn.serve(extra_patterns=...)``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .ai_chat import ChatRelayHandler
from .api import HealthHandler, PublishHandler
from .assets import AssetHandler
from .auth import ChannelAuthHandler, UserAuthHandler
from .base import NotFoundHandler, ServerContext
from .identity import IdentityHandler
from .notifications import notification_routes
from .pusher_api import pusher_api_routes
from .pusher_ws import PusherSocketHandler
from .rooms import room_routes
from .sse import EventStreamHandler

#: Static files the pages load (the offline icon font); a path, so no Panel import here.
ASSETS_DIR = Path(__file__).resolve().parents[1] / "ui" / "assets"
#: Points Bokeh's icons at the font in ASSETS_DIR (see dashboard/ui/assets/offline-icons.js).
OFFLINE_ICONS = "/api/assets/offline-icons.js"
#: Shows the page's own link to this server and reloads the page when the server is back
#: (see dashboard/ui/assets/link-status.js); it asks /api/health whether the server is back.
LINK_STATUS = "/api/assets/link-status.js?probe=/api/health"
#: Starts the sidebar closed on a phone (see dashboard/ui/assets/narrow-sidebar.js).
NARROW_SIDEBAR = "/api/assets/narrow-sidebar.js"


def api_routes(ctx: ServerContext) -> list[tuple[str, Any, dict[str, Any]]]:
    """Routes under ``/api/`` and the Pusher socket ``/app/{key}`` (Bokeh owns ``/ws`` and
    the page routes)."""
    kwargs = {"ctx": ctx}
    return [
        (r"/api/events", EventStreamHandler, kwargs),
        (r"/api/publish", PublishHandler, kwargs),
        (r"/api/health", HealthHandler, kwargs),
        (r"/api/identity", IdentityHandler, kwargs),
        (r"/api/chat", ChatRelayHandler, kwargs),
        (r"/pusher/auth", ChannelAuthHandler, kwargs),
        (r"/pusher/user-auth", UserAuthHandler, kwargs),
        *pusher_api_routes(kwargs),
        (r"/apps/.*", NotFoundHandler, kwargs),
        *room_routes(kwargs),
        *notification_routes(kwargs),
        (r"/api/assets/(.*)", AssetHandler, {"path": str(ASSETS_DIR), **kwargs}),
        (r"/api/.*", NotFoundHandler, kwargs),
        (r"/app/([^/]+)", PusherSocketHandler, kwargs),
    ]
