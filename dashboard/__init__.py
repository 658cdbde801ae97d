"""A notebook-friendly real-time dashboard toolkit.

The names below are the public API (pinned by ``tests/test_exported_members.py``). The pure and
asyncio parts import eagerly; the ones that need aiohttp, Tornado or Panel load on first use, so
``from dashboard import SSEDecoder`` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .core.channel_policy import ChannelRule
from .core.connection import ConnectionState, ConnectionStatus, EventStream
from .core.cursor import Reset
from .core.errors import (
    DashboardError,
    InvalidChannel,
    InvalidCursor,
    InvalidEventName,
    InvalidPayload,
    PayloadTooLarge,
    ValidationError,
)
from .core.events import Event
from .core.history import HistoryLimits
from .core.sse import ServerSentEvent, SSEDecoder, encode_sse
from .core.user_tokens import UserIdentity
from .hub import Backend, Hub, HubStream, MemoryBackend, Subscription

__version__ = "0.1.0"

_LAZY = {
    "SSESubscription": "dashboard.client",
    "UserConnection": "dashboard.client",
    "PusherClient": "dashboard.client",
    "ChatRoom": "dashboard.ui",
    "PresenceList": "dashboard.ui",
    "TypingIndicator": "dashboard.ui",
    "NotificationCenter": "dashboard.ui",
    "AIChat": "dashboard.ui",
    "ChatMessage": "dashboard.ai",
    "DemoProvider": "dashboard.ai",
    "OpenAIProvider": "dashboard.ai",
    "ProviderError": "dashboard.ai",
    "provider_from_env": "dashboard.ai",
    "RemoteChatProvider": "dashboard.client",
    "notify": "dashboard.notifications",
    "HubEventStream": "dashboard.client",
    "DashboardServer": "dashboard.server",
    "Limits": "dashboard.server",
    "StreamSource": "dashboard.ui",
    "LiveFeed": "dashboard.ui",
    "LiveChart": "dashboard.ui",
    "ConnectionBadge": "dashboard.ui",
    "notebook_extension": "dashboard.ui",
    "create_dashboard": "dashboard.app",
    "DemoSource": "dashboard.demo",
    "Inbox": "dashboard.client.inbox",
    "RoomSession": "dashboard.client",
    "Viewer": "dashboard.ui.team",
    "WeakSecret": "dashboard.store.credentials",
}

if TYPE_CHECKING:
    from .ai import ChatMessage, DemoProvider, OpenAIProvider, ProviderError, provider_from_env
    from .app import create_dashboard
    from .client import (
        HubEventStream,
        PusherClient,
        RemoteChatProvider,
        RoomSession,
        SSESubscription,
        UserConnection,
    )
    from .client.inbox import Inbox
    from .demo import DemoSource
    from .notifications import notify
    from .server import DashboardServer, Limits
    from .store.credentials import WeakSecret
    from .ui import (
        AIChat,
        ChatRoom,
        ConnectionBadge,
        LiveChart,
        LiveFeed,
        NotificationCenter,
        PresenceList,
        StreamSource,
        TypingIndicator,
        notebook_extension,
    )
    from .ui.team import Viewer

__all__ = [
    "AIChat",
    "Backend",
    "ChatMessage",
    "ChatRoom",
    "ChannelRule",
    "ConnectionBadge",
    "ConnectionState",
    "ConnectionStatus",
    "DashboardError",
    "DashboardServer",
    "DemoProvider",
    "DemoSource",
    "Event",
    "EventStream",
    "HistoryLimits",
    "Hub",
    "HubEventStream",
    "HubStream",
    "Inbox",
    "InvalidChannel",
    "InvalidCursor",
    "InvalidEventName",
    "InvalidPayload",
    "Limits",
    "LiveChart",
    "LiveFeed",
    "MemoryBackend",
    "NotificationCenter",
    "OpenAIProvider",
    "PayloadTooLarge",
    "PresenceList",
    "ProviderError",
    "PusherClient",
    "RemoteChatProvider",
    "Reset",
    "RoomSession",
    "SSEDecoder",
    "SSESubscription",
    "ServerSentEvent",
    "StreamSource",
    "Subscription",
    "TypingIndicator",
    "UserConnection",
    "UserIdentity",
    "ValidationError",
    "Viewer",
    "WeakSecret",
    "create_dashboard",
    "encode_sse",
    "notebook_extension",
    "notify",
    "provider_from_env",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'dashboard' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
