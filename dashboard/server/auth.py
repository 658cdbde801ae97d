"""The auth endpoints pusher-js calls before a private/presence subscription or a sign-in.

``POST /pusher/auth`` (pusher-js ``channelAuthorization``, its default endpoint) and
``POST /pusher/user-auth`` (``userAuthentication``, for ``pusher:signin``) sign only for the
user the request itself identifies (:mod:`.access`): the caller never names the user, so
nobody can obtain a signature that speaks for someone else. A channel is signed only when the
server's :class:`~dashboard.core.channel_policy.ChannelPolicy` lets that user in (the same
rule ``/api/events`` applies), so ``private-user-{id}`` is signed only for user ``{id}``, and
a private channel no rule names is refused.

pusher-js posts ``application/x-www-form-urlencoded`` (``socket_id=...&channel_name=...``);
a JSON object body is accepted too, for scripts.
"""

from __future__ import annotations

import json

from ..core.channels import ChannelKind, channel_kind, validate_channel
from ..core.errors import ValidationError
from ..core.pusher_signatures import sign_channel, sign_user, validate_socket_id
from ..core.user_tokens import UserIdentity
from .access import Access
from .base import ApiError, ApiHandler

#: Largest auth request body: a socket id and a 164-character channel name, with room to spare.
AUTH_BODY_LIMIT = 4096


def presence_channel_data(user: UserIdentity) -> str:
    """The ``channel_data`` signed for ``user`` on a presence channel.

    ``json.dumps`` with its default separators, as the ``pusher`` PyPI SDK writes it; the
    client sends this exact text back with its subscription.
    """
    return json.dumps({"user_id": user.user_id, "user_info": {"name": user.display_name}})


def signin_user_data(user: UserIdentity) -> str:
    """The ``user_data`` signed for ``user`` by ``pusher:signin``."""
    return json.dumps({"id": user.user_id, "user_info": {"name": user.display_name}})


class _AuthHandler(ApiHandler):
    """Reads the form or JSON body of an identified user (anonymous callers get 401 before
    their body is read: they learn nothing more)."""

    access = {"POST": Access.USER}
    body_limit = AUTH_BODY_LIMIT

    def fields(self) -> dict[str, str]:
        # A JSON object when it looks like one (curl -d labels JSON as a form), else a form.
        if self.body.lstrip().startswith(b"{"):
            body = self.json_body()
            if not isinstance(body, dict):
                raise ApiError(400, "invalid_input", "body must be a JSON object")
            return {k: v for k, v in body.items() if isinstance(v, str)}
        return self.form_body()

    def socket_id(self, fields: dict[str, str]) -> str:
        try:
            return validate_socket_id(fields.get("socket_id"))
        except ValidationError as exc:
            raise self.validation_error(exc) from None


class ChannelAuthHandler(_AuthHandler):
    """``POST /pusher/auth``: ``{"auth"}`` for private, ``{"auth", "channel_data"}`` for presence.

    Refused: no identity (401), a public or encrypted channel or bad input (400), a channel
    the policy does not let the caller into, such as another user's ``private-user-{id}``
    (403).
    """

    def post(self) -> None:
        user = self.user
        fields = self.fields()
        socket_id = self.socket_id(fields)
        try:
            channel = validate_channel(fields.get("channel_name"))
        except ValidationError as exc:
            raise self.validation_error(exc) from None
        kind = channel_kind(channel)
        if kind is ChannelKind.PUBLIC:
            raise ApiError(400, "public_channel", f"{channel} is public and needs no auth")
        if channel.startswith("private-encrypted-"):
            # pusher-js would also expect a shared_secret, which this server does not provide.
            raise ApiError(400, "unsupported_channel", "encrypted channels are not supported")
        policy = self.ctx.policy.channels
        if not policy.allows(user, channel):
            raise ApiError(403, "forbidden", policy.refusal(user, channel))
        app = self.ctx.app
        if kind is ChannelKind.PRESENCE:
            data = presence_channel_data(user)
            auth = sign_channel(app.key, app.secret, socket_id, channel, data)
            self.write_json({"auth": auth, "channel_data": data})
        else:
            self.write_json({"auth": sign_channel(app.key, app.secret, socket_id, channel)})


class UserAuthHandler(_AuthHandler):
    """``POST /pusher/user-auth``: ``{"auth", "user_data"}`` for ``pusher:signin``."""

    def post(self) -> None:
        user = self.user
        socket_id = self.socket_id(self.fields())
        data = signin_user_data(user)
        app = self.ctx.app
        self.write_json(
            {"auth": sign_user(app.key, app.secret, socket_id, data), "user_data": data}
        )
