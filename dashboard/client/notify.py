"""``POST /api/notifications`` with the server's publish token (aiohttp only).

Used by :func:`dashboard.notifications.notify` when no in-process service is at hand: a
notebook, a script, a cron job on another host.
"""

from __future__ import annotations

import os
from typing import Any

import aiohttp

from ..store.credentials import SecretsError, local_secrets
from ..store.notifications import Notification
from .api import APIError, DashboardAPI

DEFAULT_URL = "http://127.0.0.1:5006"


class NotifyError(APIError):
    """The server refused the notification (``status`` and ``code`` say why), or could not be
    reached (``status`` is ``None``). The message is the server's own, e.g. ``"title is
    required and must not be empty"``."""


def _local_publish_token() -> str:
    try:
        return local_secrets().publish_token
    except SecretsError as exc:
        raise NotifyError(
            f"no token: pass token= or set DASHBOARD_TOKEN ({exc}; a `dashboard serve` on this "
            "machine keeps one there)"
        ) from None


async def post_notification(
    body: dict[str, Any],
    *,
    url: str | None = None,
    token: str | None = None,
    session: aiohttp.ClientSession | None = None,
    request_timeout: float = 10.0,
) -> Notification:
    """Send one notification to a running dashboard server.

    Args:
        body: ``{"user", "type", "title", "message", "link", "data"}`` as the API takes it.
        url: the server's base URL; ``$DASHBOARD_URL``, else ``http://127.0.0.1:5006``.
        token: the server's publish token; ``$DASHBOARD_TOKEN`` when ``None``, else the one a
            ``dashboard serve`` on this machine keeps beside its database.
        session: an aiohttp session to reuse; a short-lived one otherwise.
        request_timeout: seconds for the whole request.

    Returns:
        The stored notification.

    Raises:
        NotifyError: no token, a bad URL, a refusal (4xx/5xx) or an unreachable server.
    """
    base = url or os.environ.get("DASHBOARD_URL") or DEFAULT_URL
    token = token or os.environ.get("DASHBOARD_TOKEN") or _local_publish_token()
    try:
        api = DashboardAPI(base, token, session=session, timeout=request_timeout)
    except ValueError as exc:
        raise NotifyError(str(exc)) from None
    try:
        return await api.send_notification(body)
    except APIError as exc:
        if exc.status is not None:
            raise NotifyError(f"{exc.status}: {exc}", exc.status, exc.code) from None
        if exc.code is None:  # no answer at all
            raise NotifyError(f"cannot reach {base}: {exc}") from None
        raise NotifyError(str(exc), code=exc.code) from None
    finally:
        await api.aclose()  # closes the session only if it made one
