"""Page loads are limited per client address: each builds a Panel session.

A ``GET`` of the dashboard's page runs the app for a new Bokeh session (about 0.5 s of CPU and
the session's memory, kept 15 s or more), before any login or identity is known. Unbounded,
one address could keep every core of the process busy with a loop of ``curl``. So the Tornado
application gets a rule in front of the page routes (after the ``Host`` rule of
:mod:`.hosts`): a page load past ``Limits.pages_per_minute`` / ``pages_burst`` for its client
address goes to :class:`TooManyPagesHandler`, a JSON 429 with ``Retry-After``, and builds
nothing. Behind a reverse proxy, ``dashboard serve --xheaders`` makes the address the client's.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import tornado.httputil
import tornado.routing
import tornado.web

from .base import ApiHandler, ServerContext
from .limits import too_many


class PageFlood(tornado.routing.Matcher):
    """Matches a page load (``GET`` of one of ``paths``) over its address's limit; each page
    load it sees takes a token."""

    def __init__(self, ctx: ServerContext, paths: Iterable[str]) -> None:
        self.ctx = ctx
        self.paths = frozenset(paths)

    def match(self, request: tornado.httputil.HTTPServerRequest) -> dict[str, Any] | None:
        if request.method != "GET" or request.path not in self.paths:
            return None
        wait = self.ctx.rate_limits.pages.acquire(request.remote_ip or "")
        return {"path_kwargs": {"wait": str(wait)}} if wait else None


class TooManyPagesHandler(ApiHandler):
    """429 ``rate_limited`` (JSON) with ``Retry-After``."""

    access = {}  # never reached: prepare() refuses first

    async def prepare(self) -> None:
        wait = float(self.path_kwargs.get("wait", "1"))
        raise too_many(self.ctx.rate_limits.pages, wait, "page loads from this address")


def limit_page_loads(
    application: tornado.web.Application, ctx: ServerContext, paths: Iterable[str]
) -> None:
    """Put the page-load rule in front of every route of ``application`` but the ``Host``
    rule, which :func:`~.hosts.refuse_foreign_hosts` puts first afterwards."""
    router = application.default_router
    rule = router.process_rule(
        tornado.routing.Rule(PageFlood(ctx, paths), [(r".*", TooManyPagesHandler, {"ctx": ctx})])
    )
    router.rules.insert(0, rule)
