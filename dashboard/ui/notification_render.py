"""Markup for notifications: list entries, the unread badge, toast text. Everything escaped.

Titles, messages and links come from anyone holding the publish token (a CI job, a notebook),
so nothing in them may become markup: text is escaped, and a link is only ever an ``href`` of
an ``http(s)://`` URL or a same-site path, judged by :func:`~dashboard.markup.judge_link` as the
store judged it (again here, for rows stored before it did).
"""

from __future__ import annotations

import html
import time

from ..markup import LINK_REL, judge_link
from ..store.notifications import Notification

#: Type -> (symbol, colour). Plain symbols rather than emoji: they render in every font.
#: White text on each colour has a contrast of at least 4.5:1 (WCAG AA); the toasts use them too.
TYPE_STYLES = {
    "info": ("i", "#2563eb"),
    "success": ("✓", "#15803d"),
    "warning": ("!", "#b45309"),
    "error": ("×", "#dc2626"),
}

NOTIFICATION_CSS = """
.notice-list { list-style: none; margin: 0; padding: 0; }
.notice { display: flex; gap: 8px; padding: 6px 4px; border-bottom: 1px solid #e2e8f0;
  white-space: normal; }
.notice-unread { background: #eff6ff; }
.notice-icon { flex: none; width: 22px; height: 22px; border-radius: 50%; color: #fff;
  font-weight: 700; font-size: 13px; line-height: 22px; text-align: center; }
.notice-body { flex: 1; min-width: 0; overflow-wrap: anywhere; }
.notice-title { font-weight: 600; }
.notice-read .notice-title { font-weight: 400; color: #475569; }
.notice-message { color: #334155; font-size: 13px; white-space: pre-wrap; }
.notice-meta { color: #475569; font-size: 11px; }
.notice-empty { color: #475569; font-style: italic; padding: 6px 4px; }
"""

BADGE_CSS = """
.unread-badge { display: inline-block; min-width: 20px; padding: 1px 6px; border-radius: 10px;
  background: #dc2626; color: #fff; font-size: 12px; font-weight: 700; text-align: center; }
.unread-badge[data-count="0"] { display: none; }
"""


def relative_time(created: float, now: float | None = None) -> str:
    """``"just now"``, ``"5 min ago"``, ``"3 h ago"``, ``"2 d ago"``."""
    seconds = max(0.0, (time.time() if now is None else now) - created)
    if seconds < 45:
        return "just now"
    if seconds < 3600:
        return f"{max(1, round(seconds / 60))} min ago"
    if seconds < 86400:
        return f"{round(seconds / 3600)} h ago"
    return f"{round(seconds / 86400)} d ago"


def safe_link(link: str | None) -> str | None:
    """``link`` normalized when it is an ``http(s)://`` URL or a same-site path (as a browser
    parses it: :func:`~dashboard.markup.judge_link`), else ``None``."""
    return judge_link(link) if link else None


def render_notification(notification: Notification, now: float | None = None) -> str:
    """One entry: type icon, title, message, relative time and an optional link."""
    symbol, colour = TYPE_STYLES.get(notification.type, TYPE_STYLES["info"])
    state = "notice-read" if notification.read else "notice-unread"
    message = (
        f'<div class="notice-message">{html.escape(notification.message)}</div>'
        if notification.message
        else ""
    )
    link = safe_link(notification.link)
    opener = (
        f' · <a href="{html.escape(link)}" target="_blank" rel="{LINK_REL}">open</a>'
        if link
        else ""
    )
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(notification.created))
    return (
        f'<div class="notice {state}" data-id="{notification.id}" '
        f'data-type="{html.escape(notification.type)}">'
        f'<span class="notice-icon" style="background:{colour}">{symbol}</span>'
        f'<div class="notice-body"><div class="notice-title">'
        f"{html.escape(notification.title)}</div>{message}"
        f'<div class="notice-meta"><span title="{stamp}">'
        f"{relative_time(notification.created, now)}</span>{opener}</div></div></div>"
    )


def render_badge(unread: int, *, loaded: bool = True) -> str:
    """The unread count; ``data-loaded`` says whether the inbox has been read yet."""
    shown = "99+" if unread > 99 else str(unread)
    return (
        f'<span class="unread-badge" data-count="{unread}" '
        f'data-loaded="{str(loaded).lower()}">{shown}</span>'
    )


def toast_text(notification: Notification) -> str:
    """The toast's content. Panel's toasts render HTML, so this is escaped too."""
    text = notification.title
    if notification.message:
        text += f": {notification.message}"
    if len(text) > 200:
        text = text[:199] + "…"
    return html.escape(text)
