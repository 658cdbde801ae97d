"""Network clients with reconnect (aiohttp only).

:class:`SSESubscription` reads any Server-Sent Events URL like a browser's EventSource;
:class:`HubEventStream` turns a hub server's stream into :class:`~dashboard.core.events.Event`
objects behind the same :class:`~dashboard.core.connection.EventStream` protocol as the
in-process :class:`dashboard.hub.HubStream`. :class:`PusherClient` speaks the Pusher protocol;
:class:`UserConnection` is one user's presence, chat rooms and inbox on a dashboard server;
:class:`RemoteChatProvider` asks a dashboard's model through ``/api/chat``.
"""

from .ai import RemoteChatProvider
from .api import APIError, DashboardAPI
from .chat import RoomSession
from .connection import UserConnection
from .pusher import PusherClient
from .pusher_channels import (
    Channel,
    PresenceChannel,
    PusherClosedError,
    PusherError,
    PusherEvent,
    SigninError,
    SubscriptionError,
    local_authorizer,
    local_user_authenticator,
)
from .sse import (
    SSEContentTypeError,
    SSEError,
    SSEHTTPError,
    SSEProtocolError,
    SSERetriesExhausted,
    SSESubscription,
)
from .stream import HubEventStream

__all__ = [
    "APIError",
    "Channel",
    "UserConnection",
    "DashboardAPI",
    "HubEventStream",
    "PresenceChannel",
    "PusherClient",
    "PusherClosedError",
    "PusherError",
    "PusherEvent",
    "RemoteChatProvider",
    "RoomSession",
    "SigninError",
    "SubscriptionError",
    "local_authorizer",
    "local_user_authenticator",
    "SSEContentTypeError",
    "SSEError",
    "SSEHTTPError",
    "SSEProtocolError",
    "SSERetriesExhausted",
    "SSESubscription",
]
