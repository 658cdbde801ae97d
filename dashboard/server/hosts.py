"""Every route refuses a ``Host`` the server does not answer to: the pages and the login too.

The API handlers check ``Host`` themselves (:func:`~.base.check_host`), but the routes Panel
and Bokeh own (the pages, ``/login``, ``/static``, Bokeh's ``/ws``) would answer any name. Under
DNS rebinding (a name the attacker controls pointed at 127.0.0.1) the browser treats the server
as the attacker's own origin: a page of theirs could read the dashboard's first render (its
document's data), or spend the visitor's login attempts. So the Tornado application gets one
rule in front of all others: a request whose ``Host`` is not allowed goes to
:class:`ForbiddenHostHandler`, a JSON 403, whatever its path and method.
"""

from __future__ import annotations

from typing import Any

import tornado.httputil
import tornado.routing
import tornado.web

from ..core.origins import host_allowed
from .base import ApiHandler, ServerContext, check_host
from .errors import ApiError


class ForeignHost(tornado.routing.Matcher):
    """Matches a request whose ``Host`` this server does not answer to."""

    def __init__(self, ctx: ServerContext) -> None:
        self.ctx = ctx

    def match(self, request: tornado.httputil.HTTPServerRequest) -> dict[str, Any] | None:
        host = request.headers.get("Host")
        return None if host_allowed(host, self.ctx.allowed_hosts) else {}


class ForbiddenHostHandler(ApiHandler):
    """403 ``forbidden_host`` (JSON) for any method and path."""

    access = {}  # never reached: prepare() refuses first

    async def prepare(self) -> None:
        check_host(self, self.ctx)  # the 403, with the operator's remedy in its message
        # Only if the allowlist changed since the request was routed: still no answer here.
        raise ApiError(403, "forbidden_host", "this server does not answer to this host")


def refuse_foreign_hosts(application: tornado.web.Application, ctx: ServerContext) -> None:
    """Put the ``Host`` rule in front of every route of ``application`` (Bokeh's and ours)."""
    router = application.default_router
    # process_rule makes the list a router of the application's, as add_handlers does; but
    # add_handlers puts a rule last but one, after Bokeh's catch-all host rule.
    rule = router.process_rule(
        tornado.routing.Rule(ForeignHost(ctx), [(r".*", ForbiddenHostHandler, {"ctx": ctx})])
    )
    router.rules.insert(0, rule)
