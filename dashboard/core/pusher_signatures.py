"""HMAC-SHA256 signatures of the Pusher Channels protocol, sans I/O.

Three things are signed with the app secret, each as lower-case hex:

* a channel subscription: ``socket_id:channel[:channel_data]``, sent as ``"<key>:<hex>"``;
* a user sign-in: ``socket_id::user::user_data``, sent as ``"<key>:<hex>"``;
* an HTTP API request: ``METHOD\\npath\\nk=v&...``, sent as the ``auth_signature`` query parameter.

https://pusher.com/docs/channels/library_auth_reference/auth-signatures/
https://pusher.com/docs/channels/library_auth_reference/rest-api/#authentication

Signed strings are compared exactly as sent: ``channel_data`` and ``user_data`` are JSON text
produced by the app server (the ``pusher`` PyPI SDK uses ``json.dumps`` with its default
``", "`` separators), so decoding and re-encoding them would change the bytes and break the
signature. Every comparison is constant-time (:func:`hmac.compare_digest`).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping

from .channels import validate_channel
from .errors import AuthError, InvalidSocketId

AUTH_VERSION = "1.0"
MAX_TIMESTAMP_SKEW = 600  # seconds; the HTTP API reference's window
REQUIRED_AUTH_PARAMS = ("auth_key", "auth_timestamp", "auth_version", "auth_signature")

# ASCII digits only: ``\d`` would also accept e.g. Arabic-Indic digits.
_SOCKET_ID_RE = re.compile(r"[0-9]+\.[0-9]+")
_TIMESTAMP_RE = re.compile(r"[0-9]{1,20}")


class MissingAuthParams(AuthError):
    """An HTTP API request without ``auth_key``, ``auth_timestamp``, ... in its query."""

    code = "missing_auth_params"


class UnknownAppKey(AuthError):
    """An ``auth_key`` (or the key prefix of an ``auth`` string) that is not this app's."""

    code = "invalid_key"


class UnsupportedAuthVersion(AuthError):
    """An ``auth_version`` other than ``1.0``."""

    code = "invalid_auth_version"


class InvalidTimestamp(AuthError):
    """An ``auth_timestamp`` that is not an integer or too far from the server clock."""

    code = "invalid_timestamp"


class BodyMD5Mismatch(AuthError):
    """A request body whose ``body_md5`` is missing or does not match."""

    code = "invalid_body_md5"


class InvalidSignature(AuthError):
    """An ``auth_signature`` that the secret did not produce."""

    code = "invalid_signature"


def validate_socket_id(socket_id: object) -> str:
    """Return ``socket_id`` if it has the form ``<digits>.<digits>``.

    Raises:
        InvalidSocketId: otherwise.
    """
    if not isinstance(socket_id, str) or not _SOCKET_ID_RE.fullmatch(socket_id):
        raise InvalidSocketId(f"socket_id must look like '1234.5678', not {socket_id!r}")
    return socket_id


def _hmac_hex(secret: str, message: str) -> str:
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


def _same(a: str, b: str) -> bool:
    # Bytes, because compare_digest rejects non-ASCII str and ``auth`` comes from the client.
    return hmac.compare_digest(a.encode(), b.encode())


def _channel_auth(key: str, secret: str, socket_id: str, channel: str, data: str | None) -> str:
    message = f"{socket_id}:{channel}"
    # Like the pusher SDKs, an empty channel_data is not part of the signed string.
    if data:
        message += f":{data}"
    return f"{key}:{_hmac_hex(secret, message)}"


def sign_channel(
    key: str, secret: str, socket_id: str, channel: str, channel_data: str | None = None
) -> str:
    """Authorise ``socket_id`` to subscribe to a private or presence ``channel``.

    Args:
        key: the app key, which prefixes the result.
        secret: the app secret.
        socket_id: the socket the subscription is for.
        channel: the channel name.
        channel_data: for presence channels, the JSON text sent along, exactly as sent.

    Returns:
        The ``auth`` string, ``"<key>:<hex HMAC-SHA256>"``.

    Raises:
        InvalidSocketId: when ``socket_id`` is malformed.
        InvalidChannel: when ``channel`` is not a valid name.
    """
    validate_socket_id(socket_id)
    validate_channel(channel)
    return _channel_auth(key, secret, socket_id, channel, channel_data)


def verify_channel_auth(
    key: str,
    secret: str,
    socket_id: str,
    channel: str,
    auth: object,
    channel_data: str | None = None,
) -> bool:
    """Check the ``auth`` a client sent with ``pusher:subscribe``.

    Args:
        key: this app's key; an ``auth`` made for another key is rejected.
        secret: this app's secret.
        socket_id: the id of the socket that sent the subscription (not one the client names).
        channel: the channel being subscribed to.
        auth: the ``auth`` field as received; any type, since it is untrusted.
        channel_data: the ``channel_data`` string as received, verified byte for byte.

    Returns:
        Whether ``auth`` is the signature of exactly these values. Never raises on bad input.
    """
    if not isinstance(auth, str) or not isinstance(socket_id, str):
        return False
    expected = _channel_auth(key, secret, socket_id, channel, channel_data)
    return _same(auth, expected)


def sign_user(key: str, secret: str, socket_id: str, user_data: str) -> str:
    """Authenticate ``socket_id`` as the user described by ``user_data`` (``pusher:signin``).

    Args:
        key: the app key, which prefixes the result.
        secret: the app secret.
        socket_id: the socket signing in.
        user_data: JSON text with at least an ``id``, exactly as it will be sent.

    Returns:
        The ``auth`` string, ``"<key>:<hex HMAC-SHA256>"``.

    Raises:
        InvalidSocketId: when ``socket_id`` is malformed.
    """
    validate_socket_id(socket_id)
    return f"{key}:{_hmac_hex(secret, f'{socket_id}::user::{user_data}')}"


def verify_user_auth(
    key: str, secret: str, socket_id: str, user_data: object, auth: object
) -> bool:
    """Check the ``auth`` a client sent with ``pusher:signin``.

    Returns:
        Whether ``auth`` signs exactly ``user_data`` for ``socket_id`` with this key and secret.
    """
    if not isinstance(auth, str) or not isinstance(user_data, str):
        return False
    expected = f"{key}:{_hmac_hex(secret, f'{socket_id}::user::{user_data}')}"
    return _same(auth, expected)


def request_string_to_sign(method: str, path: str, params: Mapping[str, str]) -> str:
    """The text an HTTP API request signature covers.

    ``METHOD\\npath\\n`` then every query parameter but ``auth_signature``, keys lower-cased,
    sorted, joined as ``k=v&k=v`` and *not* URL-escaped.
    """
    items = sorted((k.lower(), v) for k, v in params.items() if k.lower() != "auth_signature")
    query = "&".join(f"{k}={v}" for k, v in items)
    return f"{method.upper()}\n{path}\n{query}"


def sign_request(secret: str, method: str, path: str, params: Mapping[str, str]) -> str:
    """Return the hex ``auth_signature`` of a request; see :func:`request_string_to_sign`."""
    return _hmac_hex(secret, request_string_to_sign(method, path, params))


def body_md5(body: bytes) -> str:
    """Hex MD5 of a raw request body, as sent in ``body_md5``."""
    # MD5 is what the protocol specifies; it is an integrity check under the HMAC, not a MAC.
    return hashlib.md5(body, usedforsecurity=False).hexdigest()


def signed_params(
    key: str,
    secret: str,
    method: str,
    path: str,
    params: Mapping[str, str],
    body: bytes,
    timestamp: float,
) -> dict[str, str]:
    """Add the authentication parameters to a request's query, as a server SDK does.

    Args:
        key: the app key.
        secret: the app secret.
        method: the HTTP method.
        path: the request path, e.g. ``/apps/3/events``.
        params: the other query parameters.
        body: the raw body; ``body_md5`` is added when it is not empty.
        timestamp: Unix time in seconds; truncated to an integer.

    Returns:
        A new dict: ``params`` plus ``auth_key``, ``auth_timestamp``, ``auth_version``,
        ``body_md5`` (when there is a body) and ``auth_signature``.
    """
    query = dict(params)
    query.update(auth_key=key, auth_timestamp=str(int(timestamp)), auth_version=AUTH_VERSION)
    if body:
        query["body_md5"] = body_md5(body)
    query["auth_signature"] = sign_request(secret, method, path, query)
    return query


def verify_request(
    key: str,
    secret: str,
    method: str,
    path: str,
    params: Mapping[str, str],
    body: bytes,
    now: float,
    max_skew: float = MAX_TIMESTAMP_SKEW,
) -> None:
    """Authenticate an HTTP API request, or say precisely why it fails.

    Args:
        key: this app's key.
        secret: this app's secret.
        method: the HTTP method.
        path: the request path, as the client signed it (no query string).
        params: the decoded query parameters, one value per key.
        body: the raw body.
        now: the server's Unix time in seconds.
        max_skew: how far ``auth_timestamp`` may be from ``now``, in seconds.

    Raises:
        MissingAuthParams: when an ``auth_*`` parameter is absent.
        UnknownAppKey: when ``auth_key`` is not ``key``.
        UnsupportedAuthVersion: when ``auth_version`` is not ``1.0``.
        InvalidTimestamp: when ``auth_timestamp`` is not an integer or too far from ``now``.
        BodyMD5Mismatch: when a non-empty body has no ``body_md5``, or any ``body_md5`` is wrong.
        InvalidSignature: when ``auth_signature`` does not match.
    """
    missing = [name for name in REQUIRED_AUTH_PARAMS if name not in params]
    if missing:
        raise MissingAuthParams(f"missing query parameter(s): {', '.join(missing)}")
    if not _same(params["auth_key"], key):
        raise UnknownAppKey("auth_key does not match this app's key")
    if params["auth_version"] != AUTH_VERSION:
        raise UnsupportedAuthVersion(
            f"auth_version must be {AUTH_VERSION!r}, not {params['auth_version']!r}"
        )
    stamp = params["auth_timestamp"]
    if not _TIMESTAMP_RE.fullmatch(stamp):
        raise InvalidTimestamp(f"auth_timestamp must be an integer, not {stamp!r}")
    if abs(now - int(stamp)) > max_skew:
        raise InvalidTimestamp(
            f"auth_timestamp {stamp} is not within {max_skew:g} s of the server time {now:.0f}"
        )
    # The pusher SDK sends body_md5 even for GET (the MD5 of b""), so check it whenever present.
    given_md5 = params.get("body_md5")
    if given_md5 is None:
        if body:
            raise BodyMD5Mismatch("body_md5 is required when the request has a body")
    elif not _same(given_md5, body_md5(body)):
        raise BodyMD5Mismatch("body_md5 does not match the request body")
    if not _same(params["auth_signature"], sign_request(secret, method, path, params)):
        raise InvalidSignature("auth_signature does not match the request")
