"""Who a request speaks for, and ``/api/identity`` where a visitor picks a display name.

:func:`current_user` looks, in order, at:

1. ``Authorization: Bearer <user token>`` (``dashboard token USER`` prints one). A token that
   fails to verify is a 401: a script with a stale token should hear so, not silently become
   anonymous.
2. Panel's own login (``--basic-auth``, OAuth): both store the user id in Tornado's secure
   cookie ``user`` (``panel/auth.py``), readable only when the app has a ``cookie_secret``.
3. Our cookie ``dashboard_user``, set by ``POST /api/identity {"name": ...}`` on a first visit.

The ``dashboard_user`` cookie is a user token issued for its own purpose label, signed with
the app secret. That keeps it independent of the Tornado ``cookie_secret`` setting, which
Panel only sets when its own auth is configured, and means a cookie can never be used as a
bearer token (or a bearer token be planted as a cookie).
"""

from __future__ import annotations

import secrets
import time

from ..core.user_tokens import (
    IDENTITY_COOKIE,
    IDENTITY_COOKIE_PURPOSE,
    InvalidUserId,
    UserIdentity,
    UserTokenError,
    issue_user_token,
    validate_name,
    verify_user_token,
)
from .base import BEARER_CHALLENGE, ApiError, ApiHandler

COOKIE_NAME = IDENTITY_COOKIE
COOKIE_PURPOSE = IDENTITY_COOKIE_PURPOSE
COOKIE_TTL = 30 * 24 * 3600  # seconds; picking a name again after a month is no burden
#: Panel's login cookie (``BasicAuthProvider`` and every OAuth provider).
PANEL_USER_COOKIE = "user"
PANEL_COOKIE_MAX_AGE_DAYS = 31  # Tornado's own default; Panel passes config.oauth_expiry


def current_user(handler: ApiHandler) -> UserIdentity | None:
    """The user ``handler``'s request speaks for, or ``None`` when anonymous.

    Raises:
        ApiError: 401 when a bearer token is sent but is not a valid user token.
    """
    secret = handler.ctx.app.secret
    scheme, _, token = handler.request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer":
        try:
            return verify_user_token(secret, token.strip())
        except UserTokenError as exc:
            raise ApiError(401, exc.code, str(exc), BEARER_CHALLENGE) from None
    panel_user = _panel_user(handler)
    if panel_user is not None:
        return panel_user
    cookie = handler.get_cookie(COOKIE_NAME)
    if cookie:
        try:
            return verify_user_token(secret, cookie, purpose=COOKIE_PURPOSE)
        except UserTokenError:
            # A stale or foreign cookie only means "pick a name again", not an error.
            return None
    return None


def require_user(handler: ApiHandler) -> UserIdentity:
    """:func:`current_user`, or a 401 JSON error that says how to identify oneself.

    Raises:
        ApiError: 401 when the request is anonymous (or its bearer token is invalid).
    """
    user = current_user(handler)
    if user is None:
        raise ApiError(
            401,
            "no_identity",
            'unidentified: log in, POST /api/identity {"name": ...}, '
            "or send Authorization: Bearer <user token>",
            BEARER_CHALLENGE,
        )
    return user


def _panel_user(handler: ApiHandler) -> UserIdentity | None:
    # get_secure_cookie raises without a cookie_secret, which Panel sets only with its auth.
    if not handler.application.settings.get("cookie_secret"):
        return None
    raw = handler.get_secure_cookie(PANEL_USER_COOKIE, max_age_days=PANEL_COOKIE_MAX_AGE_DAYS)
    if not raw:
        return None
    try:
        return UserIdentity(raw.decode("utf-8"))
    except UnicodeDecodeError:
        return None


def new_user_id() -> str:
    """A fresh id for an anonymous visitor, usable in a channel name (``private-user-{id}``)."""
    return f"guest-{secrets.token_hex(8)}"


class IdentityHandler(ApiHandler):
    """``GET /api/identity``: who am I; ``POST /api/identity {"name"}``: pick a display name.

    A visitor who already has a ``dashboard_user`` cookie keeps their id and only changes
    name, so presence and ``private-user-{id}`` channels survive a rename. A user identified
    by a bearer token or Panel's login cannot pick another identity here (409).
    """

    def get(self) -> None:
        user = current_user(self)
        if user is None:
            raise ApiError(
                401,
                "no_identity",
                'nobody: POST /api/identity {"name": ...} to pick a name',
                BEARER_CHALLENGE,
            )
        self.write_json(_describe(user, self._source()))

    def post(self) -> None:
        body = self.json_body()
        if not isinstance(body, dict) or "name" not in body:
            raise ApiError(400, "invalid_input", 'send a JSON object {"name": "..."}')
        try:
            name = validate_name(body["name"])
        except InvalidUserId as exc:
            raise self.validation_error(exc) from None
        user = current_user(self)
        if user is not None and self._source() != "cookie":
            raise ApiError(
                409, "identity_fixed", "this request is already identified by a login or token"
            )
        user_id = user.user_id if user is not None else new_user_id()
        identity = UserIdentity(user_id, name)
        value = issue_user_token(
            self.ctx.app.secret, user_id, name, ttl=COOKIE_TTL, purpose=COOKIE_PURPOSE
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
        self.write_json(_describe(identity, "cookie"))

    def _source(self) -> str:
        if self.request.headers.get("Authorization", "").lower().startswith("bearer"):
            return "token"
        if _panel_user(self) is not None:
            return "login"
        return "cookie"


def _describe(user: UserIdentity, source: str) -> dict[str, object]:
    return {"user_id": user.user_id, "name": user.display_name, "source": source}
