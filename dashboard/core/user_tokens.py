"""Signed, expiring user tokens: who a request speaks for, sans I/O.

A token is ``<payload>.<signature>``, both base64url without padding:

* payload: compact JSON ``{"sub": user_id, "exp": unix_seconds, "name"?: display_name,
  "guest"?: true, "addr"?: client_address}``;
* signature: HMAC-SHA256 of the payload's base64url text.

The HMAC key is not the app secret itself but ``HMAC(secret, purpose)``. Channel and sign-in
signatures (:mod:`.pusher_signatures`) are keyed with the raw secret, so no user token can
ever be replayed as a channel ``auth`` or the other way round; and two purposes (a bearer
token, an identity cookie) cannot stand in for each other either.

Tokens are not encrypted: the user id and name are readable by whoever holds the token.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import math
import re
import time
from dataclasses import dataclass

from .errors import AuthError, ValidationError

#: The purpose label of bearer tokens (``Authorization: Bearer <token>``).
USER_TOKEN_PURPOSE = "dashboard-user-token"
DEFAULT_TTL = 24 * 3600  # seconds
#: The cookie holding a visitor's chosen display name (set by ``POST /api/identity``). Its value
#: is a user token issued for its own purpose, so a cookie can never be replayed as a bearer
#: token, nor a bearer token planted as a cookie.
IDENTITY_COOKIE = "dashboard_user"
IDENTITY_COOKIE_PURPOSE = "dashboard-identity-cookie"
#: What a served page hands its browser so that the guest identity it made for this visit
#: becomes the browser's own (its identity cookie), stable across reloads: it is only ever
#: exchanged for that cookie (``POST /api/identity {"adopt": ...}``).
IDENTITY_ADOPT_PURPOSE = "dashboard-identity-adopt"
MAX_USER_ID_LENGTH = 128  # the presence ``user_id`` limit, so every id fits a presence channel
MAX_NAME_LENGTH = 128
# Far more than any real token; refuses absurd headers before any decoding work.
MAX_TOKEN_LENGTH = 4096

_B64URL_RE = re.compile(r"[A-Za-z0-9_-]+")
# C0, DEL and C1 controls: they would corrupt logs, headers and the roster's display.
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f-\x9f]")
#: Unicode's explicit bidirectional formatting characters (embeddings, overrides, isolates,
#: marks): in a name they can make it, and the text after it, read as something else.
_BIDI_CONTROL_RE = re.compile("[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
#: A channel name's characters (dashboard.core.channels).
_USER_ID_RE = re.compile(r"[A-Za-z0-9_\-=@,.;]+")


class InvalidUserId(ValidationError):
    """A user id or display name that is empty, too long or has control characters."""

    code = "invalid_user_id"


class UserTokenError(AuthError):
    """A user token that does not identify anyone (HTTP 401)."""

    code = "invalid_user_token"


class MalformedUserToken(UserTokenError):
    """Text that is not a user token at all."""

    code = "malformed_user_token"


class BadUserTokenSignature(UserTokenError):
    """A token that this secret (and purpose) did not sign, or that was altered."""

    code = "invalid_user_token_signature"


class ExpiredUserToken(UserTokenError):
    """A genuine token past its ``exp``."""

    code = "expired_user_token"


@dataclass(frozen=True)
class UserIdentity:
    """The user a request speaks for.

    Attributes:
        user_id: stable id, 1 to 128 characters, no control characters.
        name: the display name, when known.
        guest: whether the identity is self-asserted (a visitor who picked a name, or an
            anonymous page session) rather than a login or an operator-issued token; guests
            share some limits per client address.
        address: the client address the identity was issued to, when the server minted it
            for a browser it serves through loopback (its per-address limits count there).
    """

    user_id: str
    name: str | None = None
    guest: bool = False
    address: str | None = None

    @property
    def display_name(self) -> str:
        """``name``, or ``user_id`` when there is no name."""
        return self.name or self.user_id


def validate_user_id(user_id: object) -> str:
    """Return ``user_id`` if it is 1 to 128 characters of letters, digits and ``_ - = @ , . ;``:
    the characters of a channel name, since every user has a channel of their own,
    ``private-user-{id}`` (notifications, read state). ``ada``, ``ada@example.com`` and
    ``guest-1f2e`` are user ids; ``Ada Lovelace`` is a display name.

    Raises:
        InvalidUserId: otherwise.
    """
    user_id = _check_text(user_id, "user id", MAX_USER_ID_LENGTH)
    if not _USER_ID_RE.fullmatch(user_id):
        raise InvalidUserId(
            f"user id {user_id[:40]!r} may have only letters, digits and _ - = @ , . ; "
            "(it names the user's own channel; spaces belong in the display name)"
        )
    return user_id


def validate_name(name: object) -> str:
    """Return ``name`` (stripped) if it is a usable display name.

    Raises:
        InvalidUserId: when it is empty, longer than 128 characters, or has control or
            bidirectional formatting characters.
    """
    if isinstance(name, str):
        name = name.strip()
    name = _check_text(name, "name", MAX_NAME_LENGTH)
    if _BIDI_CONTROL_RE.search(name):
        # "\u202eada" shows as "ada" reversed, and can flip the text shown after it.
        raise InvalidUserId("name must not contain bidirectional control characters")
    return name


def _check_text(value: object, what: str, limit: int) -> str:
    if not isinstance(value, str):
        raise InvalidUserId(f"{what} must be a string, not {type(value).__name__}")
    if not value:
        raise InvalidUserId(f"{what} must not be empty")
    if len(value) > limit:
        raise InvalidUserId(f"{what} is {len(value)} characters long; the limit is {limit}")
    if _CONTROL_RE.search(value):
        raise InvalidUserId(f"{what} must not contain control characters")
    return value


def _key(secret: str, purpose: str) -> bytes:
    return hmac.new(secret.encode(), purpose.encode(), hashlib.sha256).digest()


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    # urlsafe_b64decode silently skips characters outside the alphabet; check them first so
    # that only one spelling of a token is ever accepted.
    if not _B64URL_RE.fullmatch(text):
        raise MalformedUserToken("user token is not base64url")
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise MalformedUserToken("user token is not base64url") from None
    # The decoder ignores the unused low bits of the last character: refuse such variants.
    if _b64encode(data) != text:
        raise MalformedUserToken("user token is not canonical base64url")
    return data


def _signature(secret: str, purpose: str, payload: str) -> bytes:
    return hmac.new(_key(secret, purpose), payload.encode("ascii"), hashlib.sha256).digest()


def issue_user_token(
    secret: str,
    user_id: str,
    name: str | None = None,
    *,
    ttl: float = DEFAULT_TTL,
    now: float | None = None,
    purpose: str = USER_TOKEN_PURPOSE,
    guest: bool = False,
    address: str | None = None,
) -> str:
    """Sign a token that identifies ``user_id`` until ``now + ttl``.

    Args:
        secret: the app secret.
        user_id: the user's stable id.
        name: an optional display name.
        ttl: lifetime in seconds, more than zero.
        now: Unix time in seconds; the current time when ``None``.
        purpose: what the token is for; verification must name the same purpose.
        guest: marks a self-asserted identity (see :attr:`UserIdentity.guest`).
        address: the client address it is issued to (see :attr:`UserIdentity.address`).

    Returns:
        The token, ASCII without spaces, safe in a header, a cookie or a URL.

    Raises:
        InvalidUserId: when ``user_id`` or ``name`` breaks the rules.
        ValueError: when ``ttl`` is not a positive finite number.
    """
    validate_user_id(user_id)
    if not (ttl > 0 and math.isfinite(ttl)):
        raise ValueError(f"ttl must be a finite number of seconds above 0, not {ttl!r}")
    issued = time.time() if now is None else now
    claims: dict[str, object] = {"sub": user_id, "exp": int(issued + ttl)}
    if name is not None:
        claims["name"] = validate_name(name)
    if guest:
        claims["guest"] = True
    if address is not None:
        claims["addr"] = _check_text(address, "address", MAX_NAME_LENGTH)
    text = json.dumps(claims, separators=(",", ":"), ensure_ascii=False)
    payload = _b64encode(text.encode("utf-8"))
    return f"{payload}.{_b64encode(_signature(secret, purpose, payload))}"


def verify_user_token(
    secret: str,
    token: object,
    *,
    now: float | None = None,
    purpose: str = USER_TOKEN_PURPOSE,
) -> UserIdentity:
    """Check a token made by :func:`issue_user_token` and say whom it identifies.

    Args:
        secret: the app secret.
        token: the token as received; any type, since it is untrusted.
        now: Unix time in seconds; the current time when ``None``.
        purpose: the purpose it must have been issued for.

    Returns:
        The identity in the token.

    Raises:
        MalformedUserToken: when it is not a token at all.
        BadUserTokenSignature: when the signature is wrong (another secret, purpose or edit).
        ExpiredUserToken: when it is genuine but expired.
    """
    if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_LENGTH:
        raise MalformedUserToken("user token is missing or too long")
    payload, dot, signature = token.partition(".")
    if not dot or not _B64URL_RE.fullmatch(payload) or not signature:
        raise MalformedUserToken("user token must look like '<payload>.<signature>'")
    given = _b64decode(signature)
    # The signature is checked before the payload is parsed: nothing unsigned is ever decoded.
    if not hmac.compare_digest(given, _signature(secret, purpose, payload)):
        raise BadUserTokenSignature("user token signature does not match")
    try:
        claims = json.loads(_b64decode(payload).decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise MalformedUserToken("user token payload is not JSON") from None
    if not isinstance(claims, dict):
        raise MalformedUserToken("user token payload is not a JSON object")
    exp, raw_name, address = claims.get("exp"), claims.get("name"), claims.get("addr")
    if not isinstance(exp, int) or isinstance(exp, bool):
        raise MalformedUserToken("user token has no integer 'exp'")
    try:
        user_id = validate_user_id(claims.get("sub"))
        name = None if raw_name is None else validate_name(raw_name)
        if address is not None:
            address = _check_text(address, "address", MAX_NAME_LENGTH)
    except InvalidUserId as exc:
        raise MalformedUserToken(f"user token carries a bad identity: {exc}") from None
    current = time.time() if now is None else now
    if current >= exp:
        raise ExpiredUserToken(f"user token expired {int(current - exp)} s ago")
    return UserIdentity(user_id, name, guest=claims.get("guest") is True, address=address)
