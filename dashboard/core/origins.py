"""Which browser origins may open a stream: the page's own host, or an allowlist.

Allowlist entries read like Bokeh's ``--allow-websocket-origin``: ``host:port``, ``host`` (any
port), ``*`` (any origin), with ``*`` standing for one dot-separated part (``192.168.*.*``) or
for the port (``example.com:*``). An origin without a port has its scheme's default port.

The decision follows Tornado's cross-origin check for WebSockets (6.6), so ``/api/events`` and
``/app/{key}`` agree: a request without an ``Origin`` header is accepted, because only browsers
send one and origin checks exist to stop a page on one site from using a browser's access to
another; a non-browser client can send any ``Origin`` it likes, so refusing it would protect
nothing. ``Sec-Fetch-Site: same-origin`` (set by the browser, never by a page's script) is
trusted even when a reverse proxy rewrote the ``Host`` header.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterable

#: The allowlist entry that admits every origin.
ANY_ORIGIN = "*"

_DEFAULT_PORTS = {"http": 80, "ws": 80, "https": 443, "wss": 443}


def parse_origin(origin: str) -> tuple[str, int] | None:
    """The lower-case host and the port of an ``Origin`` header value.

    Args:
        origin: e.g. ``"http://127.0.0.1:5006"``.

    Returns:
        ``(host, port)``, or ``None`` for ``"null"`` (sandboxed frames, ``file:`` pages) and
        anything else without a host.
    """
    try:
        parts = urllib.parse.urlsplit(origin.strip())
        port = parts.port
    except ValueError:  # a port that is not a number, or out of range
        return None
    if not parts.hostname:
        return None
    if port is None:
        port = _DEFAULT_PORTS.get(parts.scheme.lower(), 80)
    return parts.hostname.lower(), port


def same_host(origin: str, host: str) -> bool:
    """Whether ``origin`` names the host and port of the ``Host`` header ``host``.

    The scheme is not compared (nor does Tornado): behind a TLS-terminating proxy the server
    cannot tell which scheme the browser used.
    """
    parsed = parse_origin(origin)
    if parsed is None or not host:
        return False
    scheme = origin.partition("://")[0]
    served = parse_origin(f"{scheme}://{host}")
    return served == parsed


def matches_allowlist(origin: str, allowlist: Iterable[str]) -> bool:
    """Whether ``origin`` matches one of the ``allowlist`` patterns (see the module doc)."""
    patterns = [pattern.strip().lower() for pattern in allowlist]
    if ANY_ORIGIN in patterns:
        return True
    parsed = parse_origin(origin)
    if parsed is None:
        return False
    host, port = parsed
    return any(_match(host, port, pattern) for pattern in patterns if pattern)


def names_origin(origin: str, allowlist: Iterable[str]) -> bool:
    """Whether an allowlist entry other than the bare wildcard ``*`` matches ``origin``.

    Only such an origin is trusted with a user's cookies: ``*`` admits any page to public
    streams, never to act or read as the user.
    """
    return matches_allowlist(origin, [entry for entry in allowlist if entry.strip() != ANY_ORIGIN])


def cookies_count(origin: str | None, host: str | None, allowlist: Iterable[str]) -> bool:
    """Whether the cookies of a request may identify its user.

    Yes without an ``Origin`` (not a browser's cross-origin request), for the page's own
    origin, and for origins the allowlist names; no for any other page, which the browser
    may still have sent them from (a same-site page: SameSite=Lax does not stop it).
    """
    if origin is None:
        return True
    return same_host(origin, host or "") or names_origin(origin, allowlist)


#: Names that reach only this machine: a server bound to loopback answers only to these (and
#: to hosts the allowlist names), so a rebound DNS name cannot reach it from a browser.
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})


def host_allowed(host: str | None, allowed_hosts: frozenset[str] | None) -> bool:
    """Whether a request's ``Host`` header names a host this server answers to.

    Args:
        host: the ``Host`` header (``name``, ``name:port``, ``[v6]:port``).
        allowed_hosts: lower-case host names without ports; ``None`` accepts any.

    DNS rebinding points a name the attacker controls at 127.0.0.1: the browser then treats
    the loopback server as the attacker's own origin (same-origin, no CORS, no CSRF check
    can tell), but it still sends the attacker's name in ``Host``.
    """
    if allowed_hosts is None:
        return True
    parsed = parse_origin(f"http://{host}") if host else None
    return parsed is not None and parsed[0] in allowed_hosts


def allowlist_hosts(allowlist: Iterable[str]) -> frozenset[str]:
    """The host names of the allowlist's entries (``dash.example:443`` -> ``dash.example``);
    entries with a wildcard name no single host and are left out."""
    hosts = set()
    for entry in allowlist:
        entry = entry.strip().lower()
        if entry.startswith("["):
            name = entry[1:].partition("]")[0]
        else:
            name = entry.rpartition(":")[0] if entry.count(":") == 1 else entry
        if name and ANY_ORIGIN not in name:
            hosts.add(name)
    return frozenset(hosts)


def origin_allowed(
    origin: str | None,
    host: str | None,
    allowlist: Iterable[str],
    fetch_site: str | None = None,
) -> bool:
    """Whether a request may be served, judged by its browser-set headers.

    Args:
        origin: the ``Origin`` header, ``None`` when absent (not a browser).
        host: the ``Host`` header.
        allowlist: patterns of the other origins allowed (see the module doc).
        fetch_site: the ``Sec-Fetch-Site`` header, ``None`` when absent.

    Returns:
        ``True`` without an ``Origin``, for same-origin requests and for allowlisted origins.
    """
    if fetch_site is not None:
        fetch_site = fetch_site.strip().lower()
        if fetch_site in ("same-origin", "none"):
            return True
        # "same-site" or "cross-site": the browser says the origin differs from the page's.
        return origin is not None and matches_allowlist(origin, allowlist)
    if origin is None:
        return True
    return same_host(origin, host or "") or matches_allowlist(origin, allowlist)


def _match(host: str, port: int, pattern: str) -> bool:
    if pattern.startswith("["):  # [::1]:5006
        pattern_host, _, rest = pattern[1:].partition("]")
        pattern_port = rest[1:] if rest.startswith(":") else ""
    elif ":" in pattern:
        pattern_host, _, pattern_port = pattern.rpartition(":")
    else:
        pattern_host, pattern_port = pattern, ""
    if pattern_port not in ("", ANY_ORIGIN) and pattern_port != str(port):
        return False
    if pattern_host == ANY_ORIGIN:
        return True
    host_parts, pattern_parts = host.split("."), pattern_host.split(".")
    # As many parts on both sides: "example.com" must not match "example.com.evil.net".
    if len(host_parts) != len(pattern_parts):
        return False
    return all(p in (h, ANY_ORIGIN) for h, p in zip(host_parts, pattern_parts, strict=True))
