"""Every API handler declares exactly the methods it serves: a declared method without a
handler would invite a body before Tornado's 405, an undeclared one would never be reached."""

from __future__ import annotations

import tornado.web

from dashboard.server import DashboardServer
from dashboard.server.base import ApiHandler, NotFoundHandler
from dashboard.server.routes import api_routes

METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


def test_declared_methods_are_the_served_ones():
    handlers = {
        spec[1]
        for spec in api_routes(DashboardServer(port=0).ctx)
        if isinstance(spec[1], type) and issubclass(spec[1], ApiHandler)
    }
    assert len(handlers) > 10
    for handler in handlers - {NotFoundHandler}:
        served = {
            method
            for method in METHODS
            if getattr(handler, method.lower())
            is not getattr(tornado.web.RequestHandler, method.lower())
        }
        assert set(handler.access) == served, handler.__name__
