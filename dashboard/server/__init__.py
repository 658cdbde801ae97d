"""Tornado side: thin handlers between sockets and the hub, and the combined Panel server."""

from .base import ServerContext
from .limits import Limits
from .pusher_app import PusherApp
from .routes import api_routes
from .serve import DashboardServer, PortInUse, freeze_startup_heap

__all__ = [
    "DashboardServer",
    "Limits",
    "PortInUse",
    "PusherApp",
    "ServerContext",
    "api_routes",
    "freeze_startup_heap",
]
