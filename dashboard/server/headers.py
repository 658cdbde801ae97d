"""Security headers on every response of the process: Panel's pages and handlers included.

One Tornado output transform, so nothing served escapes it:

* every ``Set-Cookie`` without a ``SameSite`` attribute gets ``SameSite=Lax`` (Panel's login
  cookie has none; a browser would then send it along with a cross-site form POST). Tornado
  writes the cookies into the headers *after* the transforms ran (``RequestHandler.flush``),
  so the transform hands back headers that add the attribute as cookies are added;
* HTML pages get ``Content-Security-Policy: frame-ancestors ...`` (``'self'`` by default,
  so no other site can frame the dashboard and trick clicks on it; CSP Level 2) and the
  equivalent ``X-Frame-Options`` for browsers that predate it;
* every response gets ``X-Content-Type-Options: nosniff`` and
  ``Referrer-Policy: same-origin``.
"""

from __future__ import annotations

import contextlib
import http.cookies
from collections.abc import Callable
from typing import Any

import tornado.httputil
import tornado.web

#: Frame ancestors that also have an ``X-Frame-Options`` spelling.
_X_FRAME_OPTIONS = {"'self'": "SAMEORIGIN", "'none'": "DENY"}


def with_samesite(cookie: str, default: str = "Lax") -> str:
    """``cookie`` (a ``Set-Cookie`` value) with ``SameSite=default`` unless it has one.

    The value is read with :mod:`http.cookies`, the parser Tornado writes cookies with, so a
    quoted value that happens to contain ``samesite`` is not taken for the attribute.
    """
    parsed = http.cookies.SimpleCookie()
    with contextlib.suppress(http.cookies.CookieError):  # unparsable: it gets the attribute
        parsed.load(cookie)
    if any(morsel["samesite"] for morsel in parsed.values()):
        return cookie
    return f"{cookie}; SameSite={default}"


class _SameSiteHeaders(tornado.httputil.HTTPHeaders):
    """Headers that give every ``Set-Cookie`` added to them a ``SameSite`` attribute."""

    def add(self, name: str, value: str, *args: Any, **kwargs: Any) -> None:
        if name.lower() == "set-cookie":
            value = with_samesite(value)
        super().add(name, value, *args, **kwargs)

    def __setitem__(self, name: str, value: str) -> None:
        if name.lower() == "set-cookie":
            value = with_samesite(value)
        super().__setitem__(name, value)


def security_headers(
    frame_ancestors: str = "'self'",
) -> Callable[[Any], tornado.web.OutputTransform]:
    """A transform factory for ``tornado.web.Application(transforms=[...])``.

    Args:
        frame_ancestors: the CSP ``frame-ancestors`` source list of HTML pages, e.g.
            ``"'self'"``, ``"'none'"`` or ``"'self' https://intranet.example"``.
    """

    class SecurityHeaders(tornado.web.OutputTransform):
        def transform_first_chunk(
            self,
            status_code: int,
            headers: tornado.httputil.HTTPHeaders,
            chunk: bytes,
            finishing: bool,
        ) -> tuple[int, tornado.httputil.HTTPHeaders, bytes]:
            headers = _SameSiteHeaders(headers)  # the copy rewrites cookies already there
            if headers.get("Content-Type", "").startswith("text/html"):
                headers["Content-Security-Policy"] = f"frame-ancestors {frame_ancestors}"
                legacy = _X_FRAME_OPTIONS.get(frame_ancestors.strip())
                if legacy is not None:
                    headers["X-Frame-Options"] = legacy
            headers.setdefault("X-Content-Type-Options", "nosniff")
            headers.setdefault("Referrer-Policy", "same-origin")
            return status_code, headers, chunk

    return SecurityHeaders
