"""Pusher Channels protocol 7 frames, sans I/O: parse what clients send, build what servers send.

https://pusher.com/docs/channels/library_auth_reference/pusher-websockets-protocol/

Every frame is a JSON object ``{"event", "channel"?, "data"?}``. pusher-js sends ``data`` as
plain JSON (an object for ``pusher:`` events, any value for ``client-`` events). The server
double-encodes ``data`` (a JSON string) for ``pusher:connection_established``,
``pusher_internal:*`` and channel events, and sends an object for ``pusher:error``,
``pusher:signin_success`` and ``pusher:subscription_error``, as the protocol document and soketi
do; pusher-js decodes a string ``data`` and keeps an object as is. Builders return JSON text,
so a frame is encoded once and written to any number of sockets.
"""

from __future__ import annotations

import contextlib
import enum
import json
import re
from dataclasses import dataclass
from typing import Any

from .channels import validate_channel
from .errors import DashboardError, InvalidChannel, InvalidChannelData
from .events import Event
from .websocket_frames import text_frame

DEFAULT_MAX_FRAME_BYTES = 10 * 1024
MAX_EVENT_NAME_LENGTH = 200
MAX_USER_ID_LENGTH = 128
MAX_USER_INFO_BYTES = 1024
CLIENT_EVENT_PREFIX = "client-"
#: pusher-js subscribes to ``#server-to-user-{user_id}`` right after ``pusher:signin_success``.
SERVER_TO_USER_PREFIX = "#server-to-user-"


class PusherErrorCode(enum.IntEnum):
    """Close codes and ``pusher:error`` codes of the protocol.

    4000-4099: do not reconnect; 4100-4199: reconnect after backing off; 4200-4299: reconnect
    at once; 4300-4399: other errors.
    """

    APP_DOES_NOT_EXIST = 4001
    APP_DISABLED = 4003
    OVER_CONNECTION_QUOTA = 4004
    PATH_NOT_FOUND = 4005
    INVALID_VERSION_FORMAT = 4006
    UNSUPPORTED_PROTOCOL_VERSION = 4007
    NO_PROTOCOL_VERSION = 4008
    UNAUTHORIZED = 4009
    OVER_CAPACITY = 4100
    GENERIC_RECONNECT = 4200
    PONG_NOT_RECEIVED = 4201
    CLOSED_AFTER_INACTIVITY = 4202
    CLIENT_EVENT_REJECTED = 4301


class ProtocolError(DashboardError):
    """A client frame the server cannot act on; answer it with :func:`error`.

    Attributes:
        code: the ``pusher:error`` code: 4301 ("client event rejected"; soketi also sends it
            for oversize client events) for an oversize frame, ``None`` (JSON ``null``, the
            code is optional) for a malformed one, which the protocol gives no code.
        message: a one-line description for the client.
    """

    def __init__(self, code: int | None, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class PusherFrame:
    """One frame received from a client.

    Attributes:
        event: the event name, e.g. ``pusher:subscribe`` or ``client-typing``.
        channel: the channel it concerns: the top-level ``channel``, or for
            ``pusher:subscribe`` / ``pusher:unsubscribe`` the ``channel`` inside ``data``.
        data: ``data`` decoded; for ``pusher:`` events a JSON-encoded string is decoded too.
        raw_data: ``data`` as text, exactly as sent: the string itself when ``data`` was a
            JSON string, else the JSON text of the value. ``None`` when absent. Relay this,
            not a re-encoding of ``data``.
        user_id: the sender's user id, for the server to set on presence client events.
    """

    event: str
    channel: str | None = None
    data: Any = None
    raw_data: str | None = None
    user_id: str | None = None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


# NaN and Infinity are not JSON; a strict decoder keeps them out of relayed data.
_DECODER = json.JSONDecoder(parse_constant=_reject_constant)
_encode = json.JSONEncoder(separators=(",", ":"), allow_nan=False).encode
_WS = re.compile(r"[ \t\n\r]*")


def _skip_ws(text: str, pos: int) -> int:
    match = _WS.match(text, pos)
    return match.end() if match else pos


def _value_spans(text: str) -> dict[str, tuple[int, int]]:
    """Map each key of a top-level JSON object (already known valid) to its value's span."""
    spans: dict[str, tuple[int, int]] = {}
    pos = _skip_ws(text, 0) + 1  # past "{"
    while True:
        pos = _skip_ws(text, pos)
        if text[pos] == "}":
            return spans
        key, pos = _DECODER.raw_decode(text, pos)
        start = _skip_ws(text, _skip_ws(text, pos) + 1)  # past ":"
        _, pos = _DECODER.raw_decode(text, start)
        spans[key] = (start, pos)  # a repeated key keeps its last value, as json.loads does
        pos = _skip_ws(text, pos)
        if text[pos] == ",":
            pos += 1


def _channel(name: object, where: str) -> str:
    if name is None:
        raise ProtocolError(None, f"{where} is required")
    try:
        return validate_channel(name)
    except InvalidChannel as exc:
        raise ProtocolError(None, f"{where}: {exc}") from None


def server_to_user_id(channel: str) -> str | None:
    """The user id of a ``#server-to-user-{user_id}`` channel name, else ``None``."""
    if channel.startswith(SERVER_TO_USER_PREFIX):
        return channel[len(SERVER_TO_USER_PREFIX) :]
    return None


def _subscription_channel(name: object, where: str) -> str:
    # Not a channel name by the usual rules (the "#"), but pusher-js sends it after a sign-in.
    if isinstance(name, str) and name.startswith(SERVER_TO_USER_PREFIX):
        _channel(name[len(SERVER_TO_USER_PREFIX) :], where)
        return name
    return _channel(name, where)


def _check_strings(
    event: str, data: dict[str, Any], names: tuple[str, ...], required: bool
) -> None:
    for name in names:
        if (required or data.get(name) is not None) and not isinstance(data.get(name), str):
            raise ProtocolError(None, f"{event} data.{name} must be a string")


def is_client_event(event: str) -> bool:
    """Whether ``event`` is a client event (``client-`` prefix), relayed to other subscribers."""
    return event.startswith(CLIENT_EVENT_PREFIX)


def parse_client_frame(text: str, max_bytes: int = DEFAULT_MAX_FRAME_BYTES) -> PusherFrame:
    """Parse and check one WebSocket text message from a client.

    Args:
        text: the message.
        max_bytes: the largest accepted UTF-8 size of the whole message.

    Returns:
        The frame. ``pusher:subscribe`` and ``pusher:unsubscribe`` have a valid ``channel``
        (or ``#server-to-user-{valid name}``, see :func:`server_to_user_id`) and ``data`` as
        a dict (``auth`` and ``channel_data`` strings when present); ``pusher:signin`` has
        string ``auth`` and ``user_data``; ``client-`` events have a valid ``channel``.
        Other events are returned for the caller to accept or ignore.

    Raises:
        ProtocolError: for an oversize, binary or malformed frame (see its ``code``).
    """
    if not isinstance(text, str):
        raise ProtocolError(None, "binary frames are not supported")
    # len() first: a str has at least one UTF-8 byte per character, so this bound is free.
    if len(text) > max_bytes or len(text.encode("utf-8", "surrogatepass")) > max_bytes:
        raise ProtocolError(
            PusherErrorCode.CLIENT_EVENT_REJECTED, f"frame is larger than {max_bytes} bytes"
        )
    try:
        message = _DECODER.decode(text)
    except (ValueError, RecursionError) as exc:  # RecursionError: absurdly deep nesting
        raise ProtocolError(None, f"frame is not valid JSON: {exc}") from None
    if not isinstance(message, dict):
        raise ProtocolError(None, f"frame must be a JSON object, not {type(message).__name__}")
    event = message.get("event")
    if not isinstance(event, str) or not event:
        raise ProtocolError(None, "frame needs a non-empty string event")
    if len(event) > MAX_EVENT_NAME_LENGTH:
        raise ProtocolError(None, f"event name is longer than {MAX_EVENT_NAME_LENGTH} characters")

    data = message.get("data")
    raw_data: str | None = None
    if isinstance(data, str):
        raw_data = data
        if event.startswith("pusher:"):
            # Some clients double-encode pusher: data like the server does; accept both.
            with contextlib.suppress(ValueError, RecursionError):
                data = _DECODER.decode(data)
    elif "data" in message:
        start, end = _value_spans(text)["data"]
        raw_data = text[start:end]

    channel = message.get("channel")
    if channel is not None:
        channel = _channel(channel, "channel")
    if event in ("pusher:subscribe", "pusher:unsubscribe"):
        if not isinstance(data, dict):
            raise ProtocolError(None, f"{event} data must be an object")
        channel = _subscription_channel(data.get("channel"), f"{event} data.channel")
        _check_strings(event, data, ("auth", "channel_data"), required=False)
    elif event == "pusher:signin":
        if not isinstance(data, dict):
            raise ProtocolError(None, f"{event} data must be an object")
        _check_strings(event, data, ("auth", "user_data"), required=True)
    elif is_client_event(event) and channel is None:
        raise ProtocolError(None, f"client event {event!r} needs a channel")
    return PusherFrame(event=event, channel=channel, data=data, raw_data=raw_data)


def parse_channel_data(text: object) -> tuple[str, Any]:
    """Read a presence subscription's ``channel_data``: ``{"user_id", "user_info"?}``.

    Args:
        text: the ``channel_data`` string as received (after its signature was verified).

    Returns:
        ``(user_id, user_info)``: a numeric ``user_id`` becomes its decimal string, as
        JavaScript's ``String()`` would; ``user_info`` is ``None`` when absent.

    Raises:
        InvalidChannelData: when it is not a JSON object, ``user_id`` is missing, not a
            non-empty string or integer, longer than 128 characters, or ``user_info`` is more
            than 1 KB of JSON.
    """
    if not isinstance(text, str):
        raise InvalidChannelData("channel_data must be a JSON string")
    try:
        value = _DECODER.decode(text)
    except (ValueError, RecursionError):
        raise InvalidChannelData("channel_data is not valid JSON") from None
    if not isinstance(value, dict):
        raise InvalidChannelData("channel_data must be a JSON object")
    if "user_id" not in value:
        raise InvalidChannelData("channel_data has no user_id")
    raw_id = value["user_id"]
    # bool is an int subclass, and floats would print differently here and in JavaScript.
    if isinstance(raw_id, int) and not isinstance(raw_id, bool):
        user_id = str(raw_id)
    elif isinstance(raw_id, str) and raw_id:
        user_id = raw_id
    else:
        raise InvalidChannelData("channel_data user_id must be a non-empty string or an integer")
    if len(user_id) > MAX_USER_ID_LENGTH:
        raise InvalidChannelData(
            f"user_id is {len(user_id)} characters long; the limit is {MAX_USER_ID_LENGTH}"
        )
    user_info = value.get("user_info")
    info_json = json.dumps(user_info, separators=(",", ":"), ensure_ascii=False)
    size = len(info_json.encode("utf-8", "surrogatepass"))
    if size > MAX_USER_INFO_BYTES:
        raise InvalidChannelData(
            f"user_info is {size} bytes of JSON; the limit is {MAX_USER_INFO_BYTES}"
        )
    return user_id, user_info


# --- frames the server sends -------------------------------------------------------------


def _internal(name: str, channel: str, data: Any) -> str:
    # pusher_internal: data is double-encoded: a JSON string holding JSON.
    return _encode({"event": f"pusher_internal:{name}", "channel": channel, "data": _encode(data)})


_PING = _encode({"event": "pusher:ping", "data": {}})
_PONG = _encode({"event": "pusher:pong", "data": {}})


def connection_established(socket_id: str, activity_timeout: int) -> str:
    """``pusher:connection_established``; ``activity_timeout`` is in seconds."""
    data = {"socket_id": socket_id, "activity_timeout": activity_timeout}
    return _encode({"event": "pusher:connection_established", "data": _encode(data)})


def error(message: str, code: int | None = None) -> str:
    """``pusher:error`` with ``{"message", "code"}``; the connection stays open."""
    code = None if code is None else int(code)
    return _encode({"event": "pusher:error", "data": {"message": message, "code": code}})


def ping() -> str:
    """``pusher:ping``; the client answers ``pusher:pong``."""
    return _PING


def pong() -> str:
    """``pusher:pong``, the answer to ``pusher:ping``."""
    return _PONG


def subscription_succeeded(channel: str, presence: dict[str, Any] | None = None) -> str:
    """``pusher_internal:subscription_succeeded``; ``{}`` as data unless ``presence`` is given.

    ``presence`` is :meth:`~dashboard.core.presence.PresenceRoster.snapshot`'s result,
    ``{"presence": {"ids", "hash", "count"}}``.
    """
    return _internal("subscription_succeeded", channel, presence if presence is not None else {})


def subscription_error(
    channel: str, status: int, message: str, error_type: str = "AuthError"
) -> str:
    """``pusher:subscription_error`` with ``{"type", "error", "status"}``.

    That is the shape pusher-js emits itself when its auth endpoint fails; soketi sends it with
    ``status`` 401 for a bad signature and ``error_type`` ``"LimitReached"`` for limits.
    """
    data = {"type": error_type, "error": message, "status": status}
    return _encode({"event": "pusher:subscription_error", "channel": channel, "data": data})


def member_added(channel: str, user_id: str, user_info: Any) -> str:
    """``pusher_internal:member_added``: a user's first socket joined the presence channel."""
    return _internal("member_added", channel, {"user_id": user_id, "user_info": user_info})


def member_removed(channel: str, user_id: str) -> str:
    """``pusher_internal:member_removed``: a user's last socket left the presence channel."""
    return _internal("member_removed", channel, {"user_id": user_id})


def signin_success(user_data: str) -> str:
    """``pusher:signin_success``, echoing the signed ``user_data`` string verbatim."""
    return _encode({"event": "pusher:signin_success", "data": {"user_data": user_data}})


def channel_event(channel: str, event: str, data_str: str, user_id: str | None = None) -> str:
    """A channel event, built once and sent unchanged to every subscriber.

    ``data_str`` is the data as published (or a client event's ``raw_data``), sent as a string;
    ``user_id`` is the sender's, for a client event on a presence channel.
    """
    frame = {"event": event, "channel": channel, "data": data_str}
    if user_id is not None:
        frame["user_id"] = user_id
    return _encode(frame)


_EVENT_WS_FRAME = "pusher-ws"
_EVENT_FRAME = "pusher"


def event_data_string(data_json: str) -> str:
    """The ``data`` string a Pusher client receives for a payload stored as ``data_json``.

    A JSON string value is sent as the string itself, anything else as its JSON text;
    pusher-js then JSON-parses the string when it can, so ``{"a": 1}`` arrives as an object
    and ``"hello"`` as ``hello``, just as from a Pusher server SDK that triggers them.
    """
    if data_json.startswith('"'):
        decoded = _DECODER.decode(data_json)
        if isinstance(decoded, str):
            return decoded
    return data_json


def hub_event_ws_frame(event: Event) -> bytes:
    """:func:`hub_event_frame` wrapped in its WebSocket frame, built once per event."""
    frame = event.frames.get(_EVENT_WS_FRAME)
    if frame is None:
        frame = event.frames[_EVENT_WS_FRAME] = text_frame(hub_event_frame(event))
    return frame


def hub_event_frame(event: Event) -> bytes:
    """The UTF-8 frame of a hub event, built once and cached in ``event.frames``.

    Carries ``user_id`` when the event has one (a client event on a presence channel).
    """
    frame = event.frames.get(_EVENT_FRAME)
    if frame is None:
        text = channel_event(
            event.channel, event.name, event_data_string(event.data_json), event.user_id
        )
        # ASCII: the encoder escapes everything else.
        frame = event.frames[_EVENT_FRAME] = text.encode()
    return frame
