"""The API routes, as Tornado patterns to hand to ``pn.serve(extra_patterns=...)``."""

from __future__ import annotations

from typing import Any

from .api import HealthHandler, PublishHandler
from .auth import ChannelAuthHandler, UserAuthHandler
from .base import NotFoundHandler, ServerContext
from .identity import IdentityHandler
from .pusher_api import pusher_api_routes
from .pusher_ws import PusherSocketHandler
from .rooms import room_routes
from .sse import EventStreamHandler


def api_routes(ctx: ServerContext) -> list[tuple[str, Any, dict[str, Any]]]:
    """Routes under ``/api/`` and the Pusher socket ``/app/{key}`` (Bokeh owns ``/ws`` and
    the page routes)."""
    kwargs = {"ctx": ctx}
    return [
        (r"/api/events", EventStreamHandler, kwargs),
        (r"/api/publish", PublishHandler, kwargs),
        (r"/api/health", HealthHandler, kwargs),
        (r"/api/identity", IdentityHandler, kwargs),
        (r"/pusher/auth", ChannelAuthHandler, kwargs),
        (r"/pusher/user-auth", UserAuthHandler, kwargs),
        *pusher_api_routes(kwargs),
        (r"/apps/.*", NotFoundHandler, kwargs),
        *room_routes(kwargs),
        (r"/api/.*", NotFoundHandler, kwargs),
        (r"/app/([^/]+)", PusherSocketHandler, kwargs),
    ]
