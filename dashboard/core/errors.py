"""Typed errors for bad input. The server maps each to a 4xx JSON response."""

from __future__ import annotations


class DashboardError(Exception):
    """Base class for every error this package raises on purpose."""


class ValidationError(DashboardError, ValueError):
    """Input that breaks a documented rule (channel name, event name, payload, cursor).

    Attributes:
        code: a short machine-readable reason, e.g. ``"invalid_channel"``.
    """

    code = "invalid_input"


class InvalidChannel(ValidationError):
    """A channel name that is empty, too long or has characters outside the allowed set."""

    code = "invalid_channel"


class InvalidEventName(ValidationError):
    """An event name that is empty, too long, multi-line or reserved."""

    code = "invalid_event"


class InvalidPayload(ValidationError):
    """A payload that cannot be serialised to JSON."""

    code = "invalid_data"


class PayloadTooLarge(InvalidPayload):
    """A payload whose JSON encoding exceeds the size limit (HTTP 413)."""

    code = "payload_too_large"


class InvalidCursor(ValidationError):
    """A ``Last-Event-ID`` that this hub could never have issued."""

    code = "invalid_last_event_id"


class AuthError(DashboardError):
    """Credentials that do not check out: a bad signature, an unknown key, a stale timestamp.

    The server maps it to HTTP 401 (or a ``pusher:subscription_error`` on a socket).

    Attributes:
        code: a short machine-readable reason, e.g. ``"invalid_signature"``.
    """

    code = "unauthorized"


class InvalidSocketId(ValidationError):
    """A socket id that is not ``<digits>.<digits>``."""

    code = "invalid_socket_id"


class InvalidChannelData(ValidationError):
    """Presence ``channel_data`` that is not a JSON object with a usable ``user_id``."""

    code = "invalid_channel_data"


class BackendUnavailable(DashboardError):
    """The hub's shared backend (Redis) cannot be reached now; the request may be retried.

    The server answers HTTP 503 with ``Retry-After``; connected subscribers keep their
    streams and get what they missed once the backend is back.

    Attributes:
        code: ``"backend_unavailable"``.
        retry_after: seconds after which a retry makes sense.
    """

    code = "backend_unavailable"

    def __init__(self, message: str, retry_after: int = 1) -> None:
        super().__init__(message)
        self.retry_after = retry_after
