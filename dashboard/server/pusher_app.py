"""The Pusher app a server speaks for: its credentials and connection timing."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

from ..store.credentials import check_secret

#: Local defaults, so a notebook or demo works without configuration. Neither is secret (the
#: key is public in every Pusher app); the secret never has a default.
# Numeric: the official server SDKs refuse any other app id before sending a request.
DEFAULT_APP_ID = "1"
DEFAULT_APP_KEY = "dashboard-key"


@dataclass(frozen=True)
class PusherApp:
    """One Pusher Channels app, served at ``/app/{key}``.

    Attributes:
        app_id: the id of the HTTP API paths (``/apps/{app_id}/...``).
        key: the public key clients connect with.
        secret: signs private and presence subscriptions, sign-ins and API requests; at
            least 16 characters (random when not given).
        activity_timeout: seconds without a frame from a client before the server pings it;
            advertised in ``pusher:connection_established`` (rounded up to whole seconds, as
            the protocol wants an integer).
        pong_timeout: seconds the server waits, after its ping, for any frame before closing
            the connection with 4201; half-open connections die within the sum of the two.
        client_event_rate: client events per second per connection (Pusher: 10).
        max_message_bytes: largest client frame answered normally; larger ones get a
            ``pusher:error`` 4301. Frames over four times this close the connection (1009).
        max_pending_writes: unfinished socket writes tolerated before a connection that does
            not read is closed with 4100 (over capacity; pusher-js reconnects after a back-off).
    """

    app_id: str = DEFAULT_APP_ID
    key: str = DEFAULT_APP_KEY
    secret: str = field(default_factory=lambda: secrets.token_hex(20), repr=False)
    activity_timeout: float = 120.0
    pong_timeout: float = 30.0
    client_event_rate: float = 10.0
    max_message_bytes: int = 10 * 1024
    max_pending_writes: int = 256

    def __post_init__(self) -> None:
        check_secret(self.secret)

    @property
    def advertised_activity_timeout(self) -> int:
        """``activity_timeout`` as the whole number of seconds sent to clients."""
        return max(1, int(-(-self.activity_timeout // 1)))
