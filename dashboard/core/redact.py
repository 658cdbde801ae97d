"""URLs as they may be shown (logs, health, errors, the startup banner): without secrets.

A Redis or PostgreSQL URL can carry a password in two places: before the ``@``
(``redis://:pw@host``) and in the query string (``redis://host/0?password=pw``, which
redis-py accepts; ``postgresql://host/db?password=pw``, libpq's ``password`` and
``sslpassword``). Both are replaced by ``***``.
"""

from __future__ import annotations

import urllib.parse

#: Query parameters that hold a secret, compared case-insensitively.
SECRET_PARAMETERS = frozenset({"password", "passwd", "pwd", "sslpassword", "token", "secret"})
HIDDEN = "***"


def redact_url(url: str) -> str:
    """``url`` with every password in it replaced by ``***``; other text is left as it is.
    A string that is not a URL at all comes back unchanged."""
    try:
        parts = urllib.parse.urlsplit(url)
        password = parts.password
    except ValueError:  # e.g. an unclosed "[" in the host: hide the userinfo by hand
        return _redact_unparsed(url)
    netloc = parts.netloc
    if password is not None:
        host = netloc.rsplit("@", 1)[1]
        netloc = f"{parts.username or ''}:{HIDDEN}@{host}"
    query = _redact_query(parts.query)
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc, query=query))


def _redact_query(query: str) -> str:
    pairs = urllib.parse.parse_qsl(query, keep_blank_values=True)
    if not any(key.lower() in SECRET_PARAMETERS for key, _ in pairs):
        return query
    return "&".join(
        f"{key}={HIDDEN}"
        if key.lower() in SECRET_PARAMETERS
        else urllib.parse.urlencode({key: value})
        for key, value in pairs
    )


def _redact_unparsed(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    rest, qmark, query = rest.partition("?")
    authority, slash, path = rest.partition("/")
    if sep and "@" in authority:
        userinfo, _, host = authority.rpartition("@")  # a password may hold "@" itself
        rest = f"{userinfo.split(':', 1)[0]}:{HIDDEN}@{host}{slash}{path}"
    return f"{scheme}{sep}{rest}{qmark}{_redact_query(query) if qmark else ''}"
