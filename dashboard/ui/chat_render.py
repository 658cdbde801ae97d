"""HTML for a chat room's timeline: messages and join/leave notices, every user string escaped.

Kept apart from :mod:`dashboard.ui.chat_room` so the markup can be tested without a connection:
nothing a user types, names or edits can ever become markup or script.
"""

from __future__ import annotations

import html
import time
from collections.abc import Iterable
from dataclasses import dataclass

from ..store.base import Message

CHAT_CSS = """
.chat-timeline { display: flex; flex-direction: column-reverse; overflow-y: auto;
  height: var(--chat-height, 320px); border: 1px solid #e2e8f0; border-radius: 6px;
  padding: 6px 8px; background: #fff; font-size: 14px; }
.chat-entry { padding: 3px 0; line-height: 1.35; word-break: break-word; white-space: pre-wrap; }
.chat-user { font-weight: 600; margin-right: 6px; }
.chat-time { color: #64748b; font-size: 11px; margin-right: 6px; }
.chat-edited { color: #64748b; font-size: 11px; margin-left: 4px; }
.chat-deleted .chat-text { color: #64748b; font-style: italic; }
.chat-notice { color: #64748b; font-size: 12px; font-style: italic; text-align: center; }
.chat-empty { color: #64748b; font-style: italic; text-align: center; margin: auto; }
"""


@dataclass(frozen=True)
class Notice:
    """A line in the timeline that is not a message ("Ada joined the room")."""

    at: float
    text: str


def clock(timestamp: float) -> str:
    """``HH:MM`` in the server's (or the notebook kernel's) local time."""
    return time.strftime("%H:%M", time.localtime(timestamp))


def render_message(message: Message, *, me: str | None = None) -> str:
    """One message as HTML: author, time, text and its edited or deleted state."""
    classes = ["chat-entry", "chat-message"]
    if message.deleted:
        classes.append("chat-deleted")
    if me is not None and message.user_id == me:
        classes.append("chat-mine")
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(message.created))
    if message.deleted:
        text = "message deleted"
        edited = ""
    else:
        text = message.text
        edited = '<span class="chat-edited">(edited)</span>' if message.edited is not None else ""
    return (
        f'<div class="{" ".join(classes)}" data-id="{message.id}" '
        f'data-user-id="{html.escape(message.user_id)}">'
        f'<span class="chat-time" title="{stamp}">{clock(message.created)}</span>'
        f'<span class="chat-user">{html.escape(message.user_name)}</span>'
        f'<span class="chat-text">{html.escape(text)}</span>{edited}</div>'
    )


def render_notice(notice: Notice) -> str:
    return f'<div class="chat-entry chat-notice">{html.escape(notice.text)}</div>'


def render_timeline(
    messages: Iterable[Message],
    notices: Iterable[Notice] = (),
    *,
    me: str | None = None,
    empty: str = "No messages yet. Say hello!",
) -> str:
    """The whole timeline, oldest first on screen.

    The container is a reversed flex column, so the browser keeps it scrolled to the newest
    line without any script; the entries are therefore written newest first.
    """
    # (time, message id or -1 for a notice, markup): ids break ties between messages.
    entries: list[tuple[float, int, str]] = [
        (message.created, message.id, render_message(message, me=me)) for message in messages
    ]
    entries += [(notice.at, -1, render_notice(notice)) for notice in notices]
    if not entries:
        body = f'<div class="chat-empty">{html.escape(empty)}</div>'
    else:
        entries.sort(key=lambda entry: entry[:2], reverse=True)
        body = "".join(markup for _at, _id, markup in entries)
    return f'<div class="chat-timeline">{body}</div>'
