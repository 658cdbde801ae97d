"""The one event type of the hub, and the rules for what may be published.

Payloads are serialised to JSON exactly once, when they are published; every transport reuses
that text (and caches its own framing on the event) instead of encoding per subscriber.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from .channels import validate_channel
from .errors import InvalidEventName, InvalidPayload, PayloadTooLarge

DEFAULT_MAX_PAYLOAD_BYTES = 10 * 1024
#: The offset of an event that is relayed, never stored (:attr:`Event.transient`).
TRANSIENT = 0
MAX_EVENT_NAME_LENGTH = 200

#: Names the SSE stream uses for its own control events; publishers cannot use them.
CONTROL_EVENTS = frozenset({"connected", "reset"})
_RESERVED_PREFIXES = ("pusher:", "pusher_internal:")


@dataclass(frozen=True, slots=True)
class Event:
    """One published event, as stored in history and handed to subscribers.

    Attributes:
        channel: the channel it was published on.
        name: the event name (SSE ``event:`` field).
        data_json: the payload as compact JSON text, encoded once at publish time.
        offset: position in the channel; strictly increasing, starting at 1. ``0`` for a
            *transient* event (a client event), relayed to the subscribers of the moment but
            never stored, so it has no place in history and no resume position.
        epoch: names the channel's history the offset belongs to; offsets are comparable only
            within one epoch (a channel whose history was lost starts a new one).
        published_at: Unix time in seconds.
        socket_id: the Pusher socket that sent it (a client event, or an HTTP publish naming
            ``socket_id``); that socket is not sent its own event. ``None`` otherwise.
        user_id: the sender's user id, for a client event on a presence channel.
    """

    channel: str
    name: str
    data_json: str
    offset: int
    epoch: str
    published_at: float
    # Transport encodings of this event (e.g. its SSE frame), filled lazily by the transports
    # so that fan-out to N subscribers encodes once. Not part of the event's identity.
    frames: dict[str, bytes] = field(default_factory=dict, compare=False, repr=False, hash=False)
    socket_id: str | None = None
    user_id: str | None = None

    @property
    def transient(self) -> bool:
        """Whether the event was relayed without being stored (see :attr:`offset`)."""
        return self.offset == TRANSIENT

    @property
    def data(self) -> Any:
        """The payload, decoded from :attr:`data_json`."""
        return json.loads(self.data_json)

    def envelope_json(self) -> str:
        """JSON text of ``{"channel", "event", "epoch", "offset", "published_at", "data"}``.

        Built by concatenation so the payload text is reused as is. Epochs are base64url, so
        they need no escaping.
        """
        return (
            f'{{"channel":{json.dumps(self.channel)},"event":{json.dumps(self.name)},'
            f'"epoch":"{self.epoch}","offset":{self.offset},'
            f'"published_at":{self.published_at!r},"data":{self.data_json}}}'
        )


def validate_event_name(name: object) -> str:
    """Return ``name`` if publishers may use it.

    Raises:
        InvalidEventName: when empty, too long, multi-line, or reserved.
    """
    if not isinstance(name, str):
        raise InvalidEventName(f"event must be a string, not {type(name).__name__}")
    if not name:
        raise InvalidEventName("event must not be empty")
    if len(name) > MAX_EVENT_NAME_LENGTH:
        raise InvalidEventName(f"event name is longer than {MAX_EVENT_NAME_LENGTH} characters")
    if any(c in name for c in "\r\n\x00"):
        raise InvalidEventName("event name must not contain line breaks or NUL")
    if name in CONTROL_EVENTS or name.startswith(_RESERVED_PREFIXES):
        raise InvalidEventName(f"event name {name!r} is reserved")
    return name


def encode_payload(data: Any, max_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES) -> str:
    """Serialise ``data`` to compact JSON and enforce the size limit.

    Raises:
        InvalidPayload: when ``data`` is not JSON-serialisable (NaN and infinities included).
        PayloadTooLarge: when the UTF-8 encoding exceeds ``max_bytes``.
    """
    try:
        text = json.dumps(data, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidPayload(f"data is not JSON-serialisable: {exc}") from None
    return check_payload_size(text, max_bytes)


def check_payload_size(data_json: str, max_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES) -> str:
    """Return ``data_json`` if its UTF-8 encoding fits in ``max_bytes``.

    Raises:
        InvalidPayload: when it holds unpaired surrogates, which no transport can encode.
        PayloadTooLarge: when it does not fit.
    """
    try:
        size = len(data_json.encode("utf-8"))
    except UnicodeEncodeError:
        raise InvalidPayload("data contains unpaired surrogates (not valid Unicode)") from None
    if size > max_bytes:
        raise PayloadTooLarge(f"data is {size} bytes; the limit is {max_bytes}")
    return data_json


def validate_publication(
    channel: object, name: object, data: Any, max_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES
) -> tuple[str, str, str]:
    """Check a publish request; returns ``(channel, name, data_json)``."""
    return validate_channel(channel), validate_event_name(name), encode_payload(data, max_bytes)
