"""``/apps/{app_id}/...``: the Pusher Channels HTTP API, so the official server SDKs publish here.

https://pusher.com/docs/channels/library_auth_reference/rest-api/

* ``POST /apps/{app_id}/events`` and ``POST /apps/{app_id}/batch_events`` publish into the hub,
  so Pusher sockets, SSE streams and in-process subscribers all receive the event;
* ``GET /apps/{app_id}/channels``, ``.../channels/{name}`` and ``.../channels/{name}/users``
  report occupancy (open subscriptions, :mod:`dashboard.hub.occupancy`) and presence members
  (:mod:`dashboard.hub.presence`): this process' when it is alone, every process' when a
  cluster shares Redis.

Every request is signed (:func:`~dashboard.core.pusher_signatures.verify_request`); a failure
is a 401 whose ``error`` says which check failed. Bounds, as Pusher's: ``data`` at most 10 KB
(413), 100 channels per event, 10 events per batch and a 256 KB body (400 / 413). A batch is
validated whole before any of it is published, so a bad event publishes nothing.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from ..core.channels import ChannelKind, channel_kind, validate_channel, validate_channels
from ..core.errors import AuthError, PayloadTooLarge, ValidationError
from ..core.events import validate_event_name
from ..core.pusher_signatures import validate_socket_id, verify_request
from .access import Access
from .base import ApiError, ApiHandler

MAX_CHANNELS_PER_EVENT = 100
MAX_BATCH_EVENTS = 10
MAX_DATA_BYTES = 10 * 1024
#: Room for 10 events of 10 KB each once JSON-escaped, and 100 channel names.
MAX_BODY_BYTES = 256 * 1024
#: The ``info`` attributes a request may ask for.
INFO_ATTRIBUTES = frozenset({"user_count", "subscription_count"})


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


# Python's json accepts NaN and Infinity; other JSON parsers (and SSE clients) do not.
_STRICT_JSON = json.JSONDecoder(parse_constant=_reject_constant)


def hub_data_json(data: str) -> str:
    """The hub payload (JSON text) for a Pusher ``data`` string.

    JSON text for an object, array, number, boolean or null is kept verbatim: SSE clients get
    the value and Pusher clients the exact string that was sent. Anything else, including a
    JSON *string* literal, is stored as a JSON string whose value is ``data``, because the
    Pusher frame unwraps stored strings
    (:func:`~dashboard.core.pusher_frames.event_data_string`) and would otherwise drop the
    quotes. Either way a Pusher client receives ``data`` byte for byte.
    """
    try:
        value = _STRICT_JSON.decode(data)
    except (ValueError, RecursionError):  # deep nesting is not worth a stack overflow
        value = data
    else:
        if not isinstance(value, str):
            return data
    return json.dumps(data, ensure_ascii=False)


@dataclass(frozen=True)
class Trigger:
    """One validated event of a publish request, ready for :meth:`Hub.publish_json`."""

    channels: tuple[str, ...]
    name: str
    data_json: str
    socket_id: str | None
    info: frozenset[str]


def parse_info(value: object) -> frozenset[str]:
    """The attributes of a comma-separated ``info`` value; unknown ones are a 400."""
    if value is None or value == "":
        return frozenset()
    if not isinstance(value, str):
        raise ApiError(400, "invalid_info", "info must be a comma-separated string")
    attributes = frozenset(part.strip() for part in value.split(",") if part.strip())
    unknown = attributes - INFO_ATTRIBUTES
    if unknown:
        raise ApiError(
            400,
            "invalid_info",
            f"unknown info attribute(s) {', '.join(sorted(unknown))}; "
            f"known: {', '.join(sorted(INFO_ATTRIBUTES))}",
        )
    return attributes


def parse_trigger(body: object, max_payload_bytes: int, *, batch_item: bool = False) -> Trigger:
    """Validate one event of ``/events`` (or, with ``batch_item``, of ``/batch_events``).

    Args:
        body: the decoded JSON object.
        max_payload_bytes: the hub's limit on the stored JSON, checked here so that a batch
            fails before anything is published.
        batch_item: batch events name one ``channel``; ``/events`` takes ``channels`` or
            ``channel``.

    Raises:
        ApiError: 400 for a malformed event, 413 for data over 10 KB.
    """
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_body", "an event must be a JSON object")
    for key in ("name", "data"):
        if key not in body:
            raise ApiError(400, "missing_field", f"missing field {key!r}")
    data = body["data"]
    if not isinstance(data, str):
        # The protocol carries data as a string; the SDKs JSON-encode values themselves.
        raise ApiError(400, "invalid_data", "data must be a string")
    try:
        encoded = data.encode("utf-8")
    except UnicodeEncodeError:
        # A lone surrogate (from a "\ud800" escape) cannot be written to any client as UTF-8.
        raise ApiError(400, "invalid_data", "data is not valid Unicode text") from None
    try:
        name = validate_event_name(body["name"])
        channels = _channels(body, batch_item)
        socket_id = body.get("socket_id")
        if socket_id is not None:
            socket_id = validate_socket_id(socket_id)
        size = len(encoded)
        if size > MAX_DATA_BYTES:
            raise PayloadTooLarge(f"data is {size} bytes; the limit is {MAX_DATA_BYTES}")
        data_json = hub_data_json(data)
        # Text stored as a JSON string gains quotes and escapes, so it can pass the check
        # above and still exceed the hub's limit (by default also 10 KB): 413, not a partial.
        stored = len(data_json.encode("utf-8"))
        if stored > max_payload_bytes:
            raise PayloadTooLarge(
                f"data is {stored} bytes once stored; the limit is {max_payload_bytes}"
            )
    except ValidationError as exc:
        raise ApiError(
            413 if isinstance(exc, PayloadTooLarge) else 400, exc.code, str(exc)
        ) from None
    return Trigger(channels, name, data_json, socket_id, parse_info(body.get("info")))


def _channels(body: dict[str, Any], batch_item: bool) -> tuple[str, ...]:
    if batch_item:
        if "channel" not in body:
            raise ApiError(400, "missing_field", "missing field 'channel'")
        return (validate_channel(body["channel"]),)
    if ("channels" in body) == ("channel" in body):
        raise ApiError(400, "missing_field", "give exactly one of 'channels' and 'channel'")
    if "channel" in body:
        return (validate_channel(body["channel"]),)
    names = body["channels"]
    if not isinstance(names, list):
        raise ApiError(400, "invalid_channels", "channels must be a list of channel names")
    if len(names) > MAX_CHANNELS_PER_EVENT:
        raise ApiError(
            400,
            "too_many_channels",
            f"{len(names)} channels; at most {MAX_CHANNELS_PER_EVENT} per event",
        )
    return validate_channels(names)


class PusherApiHandler(ApiHandler):
    """Base of the ``/apps/{app_id}/...`` handlers: app lookup, signature, body, attributes.

    The request signature covers the body, so it is checked once the body is in; a body over
    256 KB is refused by its ``Content-Length`` before that.
    """

    body_limit = MAX_BODY_BYTES

    def authenticate(self, app_id: str) -> dict[str, str]:
        """Check the app id and the request signature; return the query parameters.

        Raises:
            ApiError: 404 for another app, 413 for a body over 256 KB, 400 for a query that
                cannot be read, 401 (``error`` = the failed check's code) for bad credentials.
        """
        app = self.ctx.app
        if app_id != app.app_id:
            raise ApiError(404, "app_not_found", f"no app {app_id!r} on this server")
        body = self.body
        params: dict[str, str] = {}
        for key, values in self.request.query_arguments.items():
            if len(values) != 1:
                # The signature covers one value per key: which one would we trust?
                raise ApiError(400, "invalid_query", f"query parameter {key!r} is repeated")
            try:
                params[key] = values[0].decode("utf-8")
            except UnicodeDecodeError:
                raise ApiError(
                    400, "invalid_query", f"query parameter {key!r} is not UTF-8"
                ) from None
        try:
            # request.path is the path as sent, not unquoted: the SDKs sign it that way.
            verify_request(
                app.key,
                app.secret,
                self.request.method or "",
                self.request.path,
                params,
                body,
                time.time(),
            )
        except AuthError as exc:
            raise ApiError(401, exc.code, str(exc)) from None
        return params

    def body_object(self) -> dict[str, Any]:
        """The body as a JSON object; 400 for anything else."""
        body = self.json_body()
        if not isinstance(body, dict):
            raise ApiError(400, "invalid_body", "body must be a JSON object")
        return body

    async def attributes(
        self, channel: str, info: frozenset[str], count: int | None = None
    ) -> dict[str, int]:
        """The requested ``info`` attributes of ``channel``; ``user_count`` only on presence.

        ``count`` is the channel's subscription count when the caller has it already."""
        result: dict[str, int] = {}
        if "user_count" in info and channel_kind(channel) is ChannelKind.PRESENCE:
            result["user_count"] = await self.ctx.presence.user_count(channel)
        if "subscription_count" in info:
            if count is None:
                count = await self.ctx.occupancy.count(channel)
            result["subscription_count"] = count
        return result

    def channel_arg(self, name: str) -> str:
        try:
            return validate_channel(name)
        except ValidationError as exc:
            raise ApiError(400, exc.code, str(exc)) from None

    async def publish(self, triggers: list[Trigger]) -> None:
        hub = self.ctx.hub
        for trigger in triggers:
            for channel in trigger.channels:
                await hub.publish_json(
                    channel, trigger.name, trigger.data_json, socket_id=trigger.socket_id
                )


class EventsHandler(PusherApiHandler):
    """``POST /apps/{app_id}/events``: one event on up to 100 channels.

    Answers ``{}``, or ``{"channels": {name: attributes}}`` when the body asks for ``info``.
    """

    access = {"POST": Access.SIGNED}

    async def post(self, app_id: str) -> None:
        self.authenticate(app_id)
        trigger = parse_trigger(self.body_object(), self.ctx.hub.max_payload_bytes)
        await self.publish([trigger])
        if not trigger.info:
            self.write_json({})
            return
        self.write_json(
            {"channels": {ch: await self.attributes(ch, trigger.info) for ch in trigger.channels}}
        )


class BatchEventsHandler(PusherApiHandler):
    """``POST /apps/{app_id}/batch_events``: up to 10 events, all published or none.

    Answers ``{}``, or ``{"batch": [attributes, ...]}`` when any event asks for ``info``.
    """

    access = {"POST": Access.SIGNED}

    async def post(self, app_id: str) -> None:
        self.authenticate(app_id)
        batch = self.body_object().get("batch")
        if not isinstance(batch, list):
            raise ApiError(400, "invalid_batch", 'body must be {"batch": [event, ...]}')
        if len(batch) > MAX_BATCH_EVENTS:
            raise ApiError(
                400, "batch_too_large", f"{len(batch)} events; at most {MAX_BATCH_EVENTS}"
            )
        limit = self.ctx.hub.max_payload_bytes
        triggers = [parse_trigger(item, limit, batch_item=True) for item in batch]
        await self.publish(triggers)
        if not any(trigger.info for trigger in triggers):
            self.write_json({})
            return
        self.write_json({"batch": [await self.attributes(t.channels[0], t.info) for t in triggers]})


class ChannelsHandler(PusherApiHandler):
    """``GET /apps/{app_id}/channels?filter_by_prefix=&info=``: the occupied channels.

    ``info=user_count`` needs a ``presence-`` prefix filter, as on Pusher.
    """

    access = {"GET": Access.SIGNED}

    async def get(self, app_id: str) -> None:
        params = self.authenticate(app_id)
        prefix = params.get("filter_by_prefix", "")
        info = parse_info(params.get("info"))
        if "user_count" in info and not prefix.startswith("presence-"):
            raise ApiError(400, "invalid_info", "info=user_count needs filter_by_prefix=presence-")
        counts = await self.ctx.occupancy.channels()
        names = sorted(ch for ch in counts if ch.startswith(prefix))
        self.write_json(
            {"channels": {ch: await self.attributes(ch, info, counts[ch]) for ch in names}}
        )


class ChannelHandler(PusherApiHandler):
    """``GET /apps/{app_id}/channels/{name}?info=user_count,subscription_count``."""

    access = {"GET": Access.SIGNED}

    async def get(self, app_id: str, name: str) -> None:
        params = self.authenticate(app_id)
        channel = self.channel_arg(name)
        info = parse_info(params.get("info"))
        if "user_count" in info and channel_kind(channel) is not ChannelKind.PRESENCE:
            raise ApiError(400, "invalid_info", "user_count is only for presence channels")
        count = await self.ctx.occupancy.count(channel)
        result: dict[str, Any] = {"occupied": count > 0}
        result.update(await self.attributes(channel, info, count))
        self.write_json(result)


class ChannelUsersHandler(PusherApiHandler):
    """``GET /apps/{app_id}/channels/{name}/users``: ``{"users": [{"id"}]}``, presence only."""

    access = {"GET": Access.SIGNED}

    async def get(self, app_id: str, name: str) -> None:
        self.authenticate(app_id)
        channel = self.channel_arg(name)
        if channel_kind(channel) is not ChannelKind.PRESENCE:
            raise ApiError(400, "not_presence", f"{channel} is not a presence channel")
        members = await self.ctx.presence.members(channel)
        self.write_json({"users": [{"id": uid} for uid in members]})


def pusher_api_routes(kwargs: dict[str, Any]) -> list[tuple[str, Any, dict[str, Any]]]:
    """The HTTP API routes; ``kwargs`` is the handlers' ``{"ctx": ServerContext}``."""
    return [
        (r"/apps/([^/]+)/events", EventsHandler, kwargs),
        (r"/apps/([^/]+)/batch_events", BatchEventsHandler, kwargs),
        (r"/apps/([^/]+)/channels", ChannelsHandler, kwargs),
        (r"/apps/([^/]+)/channels/([^/]+)", ChannelHandler, kwargs),
        (r"/apps/([^/]+)/channels/([^/]+)/users", ChannelUsersHandler, kwargs),
    ]
