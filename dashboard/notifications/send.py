"""``notify(...)``: one call that raises a notification from anywhere.

In the server process (a handler, a Panel callback), pass the server's
:class:`NotificationService` and the call stays in-process; from a notebook or a script, it
posts to a running server with its publish token.
"""

from __future__ import annotations

from typing import Any

from ..store.notifications import BROADCAST, Notification
from .service import NotificationService


async def notify(
    title: str,
    message: str = "",
    *,
    user: str = BROADCAST,
    type: str = "info",
    link: str | None = None,
    data: Any = None,
    service: NotificationService | None = None,
    url: str | None = None,
    token: str | None = None,
) -> Notification:
    """Raise a notification for ``user`` (a user id), or for everyone (``"*"``, the default).

    Args:
        title: 1 to 200 characters.
        message: at most 2000 characters.
        user: the recipient's user id, or ``"*"`` for every user.
        type: ``"info"``, ``"success"``, ``"warning"`` or ``"error"``.
        link: an ``http(s)://`` URL or a ``/path`` the notification points to.
        data: any JSON value, at most 4 KB as JSON.
        service: notify in-process through this service (e.g. ``server.ctx.notifications``);
            ``url`` and ``token`` are then ignored.
        url: otherwise, the server to post to: ``$DASHBOARD_URL``, else
            ``http://127.0.0.1:5006``.
        token: its publish token; ``$DASHBOARD_TOKEN`` when ``None``, else the one a
            ``dashboard serve`` on this machine keeps beside its database.

    Returns:
        The stored notification.

    Raises:
        InvalidNotification, InvalidUser, PayloadTooLarge: bad input, in-process.
        NotifyError: over HTTP, the server's refusal (its message included) or no answer.

    Usage::

        await notify("Nightly export done", link="/reports/nightly", type="success")
        await notify("Your job failed", user="ada", type="error", service=server.ctx.notifications)
    """
    if service is not None:
        return await service.notify(user, title, message, type=type, link=link, data=data)
    from ..client.notify import post_notification  # aiohttp only when it is needed

    body = {"user": user, "type": type, "title": title, "message": message}
    if link is not None:
        body["link"] = link
    if data is not None:
        body["data"] = data
    return await post_notification(body, url=url, token=token)
