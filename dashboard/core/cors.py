"""CORS answers for allowlisted origins, sans I/O (Fetch Standard, "CORS protocol").

A page on another origin reads our responses only when they carry
``Access-Control-Allow-Origin``; it may send credentials (cookies, ``EventSource(url,
{withCredentials: true})``) only when they also carry ``Access-Control-Allow-Credentials:
true``; and it may send ``Authorization`` or ``Last-Event-ID`` from ``fetch`` only after a
preflight ``OPTIONS`` allowed them. The allowlist is the one of :mod:`.origins`:

* an origin the allowlist names (``--allow-websocket-origin app.example:443``) gets its own
  origin back, with credentials: the operator trusts that page with the user's cookies;
* an origin admitted only by the wildcard ``*`` gets ``*``, which browsers never combine
  with credentials: any page may read public data, none may act with a user's cookies;
* anything else gets no CORS headers at all (and a refused preflight).
"""

from __future__ import annotations

from collections.abc import Iterable

from .origins import matches_allowlist, names_origin, same_host

#: Request headers a preflight may allow: credentials, resume, JSON bodies.
ALLOWED_HEADERS = ("Authorization", "Content-Type", "Last-Event-ID", "Cache-Control")
#: Response headers a cross-origin script may read besides the safelisted ones.
EXPOSED_HEADERS = ("Retry-After", "Location", "WWW-Authenticate")
#: Seconds a browser may cache a preflight answer.
MAX_AGE = 600


def cors_headers(origin: str | None, host: str, allowlist: Iterable[str]) -> dict[str, str]:
    """The CORS headers of an actual (non-preflight) response.

    Args:
        origin: the request's ``Origin`` header; ``None`` when absent.
        host: the request's ``Host`` header.
        allowlist: the server's origin allowlist.

    Returns:
        Nothing for same-origin and foreign requests; the origin and credentials for a named
        origin; ``*`` without credentials for one admitted by the wildcard.
    """
    if origin is None or same_host(origin, host):
        return {}
    allowlist = list(allowlist)
    expose = {"Access-Control-Expose-Headers": ", ".join(EXPOSED_HEADERS)}
    if names_origin(origin, allowlist):
        return {
            "Access-Control-Allow-Origin": origin,
            "Access-Control-Allow-Credentials": "true",
            "Vary": "Origin",
            **expose,
        }
    if matches_allowlist(origin, allowlist):
        return {"Access-Control-Allow-Origin": "*", **expose}
    return {}


def preflight_headers(
    origin: str,
    host: str,
    allowlist: Iterable[str],
    methods: Iterable[str],
    requested_method: str | None,
    requested_headers: str | None,
) -> dict[str, str] | None:
    """The answer to a preflight ``OPTIONS``, or ``None`` to refuse it.

    Args:
        origin, host, allowlist: as for :func:`cors_headers`.
        methods: the methods the route supports.
        requested_method: ``Access-Control-Request-Method``.
        requested_headers: ``Access-Control-Request-Headers`` (comma-separated).

    Returns:
        ``None`` for a foreign origin, a method the route lacks, or a header outside
        :data:`ALLOWED_HEADERS`; else the headers that allow the request.
    """
    allowed = cors_headers(origin, host, allowlist)
    if not allowed and not same_host(origin, host):
        return None
    methods = sorted(set(methods))
    if requested_method is not None and requested_method.upper() not in methods:
        return None
    wanted = {name.strip().lower() for name in (requested_headers or "").split(",") if name.strip()}
    if wanted - {name.lower() for name in ALLOWED_HEADERS}:
        return None
    return {
        **allowed,
        "Access-Control-Allow-Methods": ", ".join(methods),
        "Access-Control-Allow-Headers": ", ".join(ALLOWED_HEADERS),
        "Access-Control-Max-Age": str(MAX_AGE),
    }
