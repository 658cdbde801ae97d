"""Which channels ``GET /api/events`` may stream to the request's identity.

Public channels to anyone. Of the protected ones, only the two notification channels, which
need no signature because the request's own identity (bearer user token, Panel login or the
identity cookie, see :func:`.identity.current_user`) says who may read them:

* ``private-user-{id}``: to user ``{id}`` only (403 for anyone else);
* ``private-notifications``: to any identified user.

Every other private channel and every presence channel stays refused (403): they need a
signed subscription (the Pusher socket). An anonymous request for a notification channel is
a 401, so a client knows that identifying itself would help.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..core.channels import (
    BROADCAST_CHANNEL,
    USER_CHANNEL_PREFIX,
    ChannelKind,
    channel_kind,
    server_only,
)
from .base import ApiError, ApiHandler
from .identity import require_user


def check_stream_channels(handler: ApiHandler, channels: Sequence[str]) -> None:
    """Refuse the stream unless the request may read every one of ``channels``.

    Raises:
        ApiError: 403 for a channel this stream never serves or another user's channel;
            401 for an anonymous request (or a bad bearer token) asking for its own channel.
    """
    identity_bound = []
    for name in channels:
        if channel_kind(name) is ChannelKind.PUBLIC:
            continue
        if server_only(name):  # the notification channels
            identity_bound.append(name)
            continue
        # Private and presence channels need a signed subscription, which this endpoint
        # cannot check: refuse rather than leak them.
        raise ApiError(
            403,
            "forbidden",
            f"channel {name!r} is private; this stream serves public channels and the "
            "caller's own notification channels only",
        )
    if not identity_bound:
        return
    user = require_user(handler)
    own = USER_CHANNEL_PREFIX + user.user_id
    for name in identity_bound:
        if name != BROADCAST_CHANNEL and name != own:
            raise ApiError(403, "forbidden", f"{name} belongs to another user")
