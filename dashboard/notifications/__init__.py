"""Per-user notification inboxes: commit to the store, then deliver live through the hub.

It sits above :mod:`dashboard.hub` and :mod:`dashboard.store` and below
:mod:`dashboard.server`, which turns it into the ``/api/notifications`` endpoints.
:func:`notify` raises one from anywhere: in-process with a service, or over HTTP.
"""

from __future__ import annotations

from ..core.channels import BROADCAST_CHANNEL
from ..store.notifications import (
    BROADCAST,
    NOTIFICATION_TYPES,
    Notification,
    NotificationPage,
    ReadAll,
    notification_from_json,
    notification_json,
)
from .send import notify
from .service import (
    NOTIFICATION_EVENT,
    READ_EVENT,
    NotificationService,
    notification_channel,
    user_channel,
)

__all__ = [
    "BROADCAST",
    "BROADCAST_CHANNEL",
    "NOTIFICATION_EVENT",
    "NOTIFICATION_TYPES",
    "READ_EVENT",
    "Notification",
    "NotificationPage",
    "NotificationService",
    "ReadAll",
    "notification_channel",
    "notification_from_json",
    "notification_json",
    "notify",
    "user_channel",
]
