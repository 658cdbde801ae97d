"""``POST /api/notifications`` with the server's publish token (aiohttp only).

Used by :func:`dashboard.notifications.notify` when no in-process service is at hand: a
notebook, a script, a cron job on another host.
"""

from __future__ import annotations

import os
from typing import Any

import aiohttp
from yarl import URL

from ..store.notifications import Notification, notification_from_json
from .api import APIError

DEFAULT_URL = "http://127.0.0.1:5006"


class NotifyError(APIError):
    """The server refused the notification (``status`` and ``code`` say why), or could not be
    reached (``status`` is ``None``). The message is the server's own, e.g. ``"title is
    required and must not be empty"``."""


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
        token: the server's publish token; ``$DASHBOARD_TOKEN`` when ``None``.
        session: an aiohttp session to reuse; a short-lived one otherwise.
        request_timeout: seconds for the whole request.

    Returns:
        The stored notification.

    Raises:
        NotifyError: no token, a bad URL, a refusal (4xx/5xx) or an unreachable server.
    """
    base = URL(url or os.environ.get("DASHBOARD_URL") or DEFAULT_URL)
    if base.scheme not in ("http", "https") or not base.host:
        raise NotifyError(f"{str(base)!r} is not an http(s) URL")
    token = token or os.environ.get("DASHBOARD_TOKEN")
    if not token:
        raise NotifyError(
            "no token: pass token= or set DASHBOARD_TOKEN (printed by `dashboard serve`)"
        )
    endpoint = base.with_path(base.path.rstrip("/") + "/api/notifications")
    headers = {"Authorization": f"Bearer {token}"}
    owned = session is None
    client = session or aiohttp.ClientSession()
    try:
        async with client.post(
            endpoint,
            json=body,
            headers=headers,
            timeout=aiohttp.ClientTimeout(total=request_timeout),
        ) as response:
            try:
                answer = await response.json(content_type=None)
            except ValueError:
                answer = None
            if response.status >= 400:
                raise _refused(response.status, answer)
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise NotifyError(f"cannot reach {base}: {type(exc).__name__}: {exc}") from None
    finally:
        if owned:
            await client.close()
    try:
        return notification_from_json(answer)
    except (ValueError, TypeError, AttributeError):
        raise NotifyError(f"{endpoint} answered something that is not a notification") from None


def _refused(status: int, answer: Any) -> NotifyError:
    if isinstance(answer, dict) and isinstance(answer.get("message"), str):
        return NotifyError(f"{status}: {answer['message']}", status, answer.get("error"))
    return NotifyError(f"the server refused the notification with HTTP {status}", status)
