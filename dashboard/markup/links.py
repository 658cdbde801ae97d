"""Judge a link the way a browser will parse it, with a WHATWG URL parser (``ada-url``).

A hand-written check and the browser disagree about strings like ``/\\evil.example/x``: a
regex sees a path, the `WHATWG URL Standard <https://url.spec.whatwg.org/>`_ (which every
browser implements) treats ``\\`` as ``/`` in http(s) URLs and so sees the host
``evil.example``. :func:`judge_link` parses with ada, a WHATWG-conformant parser, and returns
the parser's own serialisation: what is stored and rendered is exactly what was judged.
"""

from __future__ import annotations

import re
from typing import Final

from ada_url import URL

#: Schemes a notification link may use.
WEB_SCHEMES: Final = ("http:", "https:")
#: A relative link is resolved against each of these bases and must stay on each one's host:
#: a link that names a host (``//host/x``, ``/\\host/x``) cannot stay on two different ones.
#: ``.invalid`` is reserved (RFC 2606).
_SENTINELS: Final = ("https://a.sentinel.invalid/", "https://b.sentinel.invalid/")
#: C0 controls, DEL and C1 controls. The URL parser silently drops tabs and newlines and
#: trims the rest, so ``java\tscript:`` and friends would be judged as something else than
#: what was written; such a link is refused instead.
_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def judge_link(link: str, *, schemes: tuple[str, ...] = WEB_SCHEMES) -> str | None:
    """The normalized form of ``link`` if a browser would take it somewhere safe, else ``None``.

    Accepted, per the WHATWG URL Standard (https://url.spec.whatwg.org/):

    - an absolute URL whose scheme is one of ``schemes`` (with a host for http and https, and
      no user name or password, which only serve to disguise the host:
      ``https://bank.example@evil.example``); returned as the parser's ``href``;
    - a same-site path (``/path?query#fragment``, written with its leading ``/``): resolved
      against two sentinel bases, it must keep each one's origin (scheme, host and port);
      returned as its path, query and fragment, which start with exactly one ``/``.

    Everything else is refused: other schemes (``javascript:``, ``data:``), scheme-relative
    and backslash forms that reach another host (``//evil``, ``/\\evil``, ``\\\\evil``),
    control characters (``/\\t/evil``), surrounding whitespace, relative references whose
    target depends on the page they are shown on (``docs/x``, ``#top``), text the parser
    rejects, lone surrogates.

    ``judge_link(judge_link(x)) == judge_link(x)`` whenever the first call accepts.

    Args:
        link: the link as written (a notification's ``link``, a Markdown destination).
        schemes: the absolute schemes allowed, each with its colon (``"mailto:"``).

    Returns:
        The link to store or put in ``href``, or ``None`` when it must not be a link.
    """
    if not link or _CONTROL.search(link) or link.strip() != link:
        return None
    try:
        absolute = URL(link)
    except (ValueError, UnicodeError):
        absolute = None
    if absolute is not None:
        return _judge_absolute(absolute, schemes)
    if not link.startswith("/"):
        return None
    path, again = (_same_site_path(link, base) for base in _SENTINELS)
    # "/.//evil.example" resolves to the path "//evil.example", which as an href on its own
    # is scheme-relative: another site.
    if path is None or path != again or not path.startswith("/") or path.startswith("//"):
        return None
    return path


def _same_site_path(link: str, base: str) -> str | None:
    try:
        resolved = URL(link, base=base)
    except (ValueError, UnicodeError):
        return None
    if resolved.origin != URL(base).origin or resolved.username or resolved.password:
        return None
    return resolved.pathname + resolved.search + resolved.hash


def _judge_absolute(url: URL, schemes: tuple[str, ...]) -> str | None:
    if url.protocol not in schemes:
        return None
    if url.protocol in WEB_SCHEMES and not url.hostname:
        return None
    if url.username or url.password:
        return None
    return url.href
