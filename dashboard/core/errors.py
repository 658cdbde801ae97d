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
