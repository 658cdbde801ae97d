"""Tornado side: thin handlers between sockets and the hub, and the combined Panel server."""

from .base import ServerContext
from .routes import api_routes
from .serve import DashboardServer, PortInUse

__all__ = ["DashboardServer", "PortInUse", "ServerContext", "api_routes"]
