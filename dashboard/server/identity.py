"""``/api/identity``: who am I, and (without a login) pick a display name.

Who a request speaks for is decided by :meth:`.access.AccessPolicy.authenticate`. A visitor
without a login picks a display name here and gets the identity cookie ``dashboard_user``: a
user token issued for its own purpose label, signed with the app secret. That keeps it
independent of the Tornado ``cookie_secret`` setting, which Panel only sets when its own auth
is configured, and means a cookie can never be used as a bearer token (or a bearer token be
planted as a cookie).
"""

from __future__ import annotations

import secrets
import time

from ..core.user_tokens import (
    IDENTITY_ADOPT_PURPOSE,
    IDENTITY_COOKIE,
    IDENTITY_COOKIE_PURPOSE,
    InvalidUserId,
    UserIdentity,
    UserTokenError,
    issue_user_token,
    validate_name,
    verify_user_token,
)
from .access import Access
from .base import BEARER_CHALLENGE, ApiError, ApiHandler
from .limits import take

COOKIE_NAME = IDENTITY_COOKIE
COOKIE_PURPOSE = IDENTITY_COOKIE_PURPOSE
COOKIE_TTL = 30 * 24 * 3600  # seconds; picking a name again after a month is no burden
#: Largest body of ``POST /api/identity``: a 128-character name, escaped, with room to spare.
NAME_BODY_LIMIT = 4096


def new_user_id() -> str:
    """A fresh id for an anonymous visitor, usable in a channel name (``private-user-{id}``)."""
    return f"guest-{secrets.token_hex(8)}"


class IdentityHandler(ApiHandler):
    """``GET /api/identity``: who am I; ``POST /api/identity {"name"}``: pick a display name;
    ``POST /api/identity {"adopt": token}``: keep the guest identity a served page made.

    A visitor who already has a ``dashboard_user`` cookie keeps their id and only changes
    name, so presence and ``private-user-{id}`` channels survive a rename. A first-time
    visitor of the served page is a guest the page made for the visit; the page adopts it
    (the token says which) so that a reload keeps the same id. New identities are limited
    per client address (:class:`~.limits.Limits`). A user identified by a bearer token or a
    login cannot pick another identity here (409); with a login configured, anonymous callers
    get 401 (guest naming is off).
    """

    access = {"GET": Access.OPEN, "POST": Access.OPEN}
    body_limit = NAME_BODY_LIMIT

    def get(self) -> None:
        user = self.caller.user
        if user is None:
            how = "log in" if self.ctx.policy.login else 'POST /api/identity {"name": ...}'
            raise ApiError(401, "no_identity", f"nobody: {how}", BEARER_CHALLENGE)
        self.write_json(_describe(user, self.caller.source))

    async def post(self) -> None:
        caller = self.caller
        if caller.source not in ("cookie", "anonymous"):
            raise ApiError(
                409, "identity_fixed", "this request is already identified by a login or token"
            )
        body = self.json_body()
        if isinstance(body, dict) and set(body) == {"adopt"}:
            identity = self._adopted(body["adopt"])
        elif isinstance(body, dict) and set(body) == {"name"}:
            identity = self._named(body["name"])
        else:
            raise ApiError(400, "invalid_input", 'send a JSON object {"name": "..."}')
        if caller.user is None:
            await take(
                self.ctx.rate_limits.new_guests, caller.address, "new names from this address"
            )
        self._set_cookie(identity)
        self.write_json(_describe(identity, "cookie"))

    def _named(self, raw: object) -> UserIdentity:
        try:
            name = validate_name(raw)
        except InvalidUserId as exc:
            raise self.validation_error(exc) from None
        user = self.caller.user
        return UserIdentity(user.user_id if user is not None else new_user_id(), name, guest=True)

    def _adopted(self, token: object) -> UserIdentity:
        if self.caller.user is not None:
            raise ApiError(409, "identity_fixed", "this browser has an identity already")
        try:
            adopted = verify_user_token(self.ctx.app.secret, token, purpose=IDENTITY_ADOPT_PURPOSE)
        except UserTokenError as exc:
            raise ApiError(400, exc.code, f"adopt: {exc}") from None
        return UserIdentity(adopted.user_id, adopted.name, guest=True)

    def _set_cookie(self, identity: UserIdentity) -> None:
        user_id, name = identity.user_id, identity.display_name
        value = issue_user_token(
            self.ctx.app.secret,
            user_id,
            name,
            ttl=COOKIE_TTL,
            purpose=COOKIE_PURPOSE,
            guest=True,
        )
        self.set_cookie(
            COOKIE_NAME,
            value,
            path="/",
            expires=time.time() + COOKIE_TTL,
            max_age=COOKIE_TTL,
            httponly=True,
            samesite="Lax",
            secure=self.request.protocol == "https",
        )


def _describe(user: UserIdentity, source: str) -> dict[str, object]:
    return {"user_id": user.user_id, "name": user.display_name, "source": source}
