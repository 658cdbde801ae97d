"""Panel components: live feeds and charts, chat, typing, presence, notifications, AI chat.

Every component takes a subscription, a connection or a provider, never a URL: the feeds a
:class:`StreamSource` (one subscription, shared per page), the chat, presence and notification
components a :class:`~dashboard.client.UserConnection`, the AI chat a provider. The same
components run against an in-kernel hub and a remote server alike.
"""

from .ai_chat import AIChat
from .chart import LiveChart
from .chat_room import ChatRoom
from .lifecycle import on_session_end
from .live_feed import LiveFeed, format_event
from .notebook import notebook_extension
from .notifications import NotificationCenter
from .presence import PresenceList
from .session import NamePicker
from .source import StreamSource
from .status import ConnectionBadge
from .typing import TypingIndicator

__all__ = [
    "AIChat",
    "ChatRoom",
    "ConnectionBadge",
    "LiveChart",
    "LiveFeed",
    "NamePicker",
    "NotificationCenter",
    "PresenceList",
    "StreamSource",
    "TypingIndicator",
    "format_event",
    "notebook_extension",
    "on_session_end",
]
