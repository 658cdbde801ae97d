"""One answer to "may this caller do this?" for every route, stream and socket.

Each handler declares what each of its methods needs (:class:`Access`); the
:class:`AccessPolicy` of the server decides who the caller is and whether that is enough,
before a byte of the request body is read (see :class:`~dashboard.server.base.ApiHandler`).
Which private and presence channels a user may follow is the policy's
:class:`~dashboard.core.channel_policy.ChannelPolicy`, asked by ``/api/events`` and
``/pusher/auth`` alike.

Who the caller is, in order:

1. ``Authorization: Bearer <token>``: the publish token (``DASHBOARD_TOKEN``), else a user
   token (``dashboard token USER``). A bearer that is neither is a 401: a script with a
   stale token should hear so, not silently become anonymous.
2. Panel's login (``--basic-auth``, OAuth): the secure cookie ``user`` Panel sets.
3. Without a login only: the identity cookie ``dashboard_user`` a visitor gets by picking a
   display name (``POST /api/identity``). With a login configured it is ignored, so a name
   can never stand in for a login.

The two modes:

* **No login** (the default): anyone who can reach the port may read public channels and
  pick a display name, which makes them a *guest*: an identified user whose identity is
  self-asserted. Guests share some limits per client address (:mod:`.limits`).
* **Login** (``--basic-auth``, OAuth): every route, stream and the Pusher socket need a
  logged-in user, a user token or, where a route says so, the publish token. Anonymous
  callers get 401; guest naming is off.

The Pusher HTTP API (``/apps/...``) is authenticated by its request signature instead
(:attr:`Access.SIGNED`), in both modes, as Pusher's own is.
"""

from __future__ import annotations

import enum
import hmac
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from ..core.channel_policy import ChannelPolicy
from ..core.channels import ChannelKind, channel_kind
from ..core.user_tokens import (
    IDENTITY_COOKIE,
    IDENTITY_COOKIE_PURPOSE,
    UserIdentity,
    UserTokenError,
    verify_user_token,
)
from .errors import BEARER_CHALLENGE, ApiError

#: Panel's login cookie (``BasicAuthProvider`` and every OAuth provider, ``panel/auth.py``).
PANEL_USER_COOKIE = "user"


class Access(enum.Enum):
    """What a route's method needs from its caller."""

    #: Anyone; with a login configured, any authenticated caller (user or publish token).
    OPEN = "open"
    #: An identified user: a login, a user token, or (without a login) a display-name cookie.
    USER = "user"
    #: The publish token, ``Authorization: Bearer <DASHBOARD_TOKEN>``.
    PUBLISHER = "publisher"
    #: A Pusher HTTP API signature over the body, which the handler checks once it has it.
    SIGNED = "signed"


class RequestView(Protocol):
    """What authentication reads of a request (a Tornado handler provides it)."""

    def header(self, name: str) -> str | None: ...

    def cookie(self, name: str) -> str | None: ...

    def login_cookie(self) -> str | None: ...

    @property
    def remote_ip(self) -> str: ...


@dataclass(frozen=True)
class Caller:
    """Who a request speaks for.

    Attributes:
        user: the identified user, or ``None``.
        publisher: whether it presented the publish token.
        source: how it was identified: ``"token"``, ``"publish_token"``, ``"login"``,
            ``"cookie"`` or ``"anonymous"``.
        address: the client address per-address limits count against: the one a
            server-minted token names (a page session speaking through loopback), else the
            connection's.
    """

    user: UserIdentity | None
    publisher: bool
    source: str
    address: str

    @property
    def guest(self) -> bool:
        """Whether the identity is self-asserted (see :attr:`UserIdentity.guest`)."""
        return self.user is not None and (self.source == "cookie" or self.user.guest)

    @property
    def ambient(self) -> bool:
        """Whether a browser sent the credential on its own (a cookie), so a foreign page
        could make it do so: what cross-site request forgery exploits."""
        return self.source in ("login", "cookie")


class AccessPolicy:
    """Authentication and authorization for one server.

    Args:
        secret: the app secret user tokens and identity cookies are signed with.
        publish_token: the bearer token of the publishing routes.
        login: whether a login (``--basic-auth``, OAuth) is configured.
        channels: who may follow which private and presence channels.
    """

    def __init__(
        self,
        *,
        secret: str,
        publish_token: str,
        login: bool = False,
        channels: ChannelPolicy | None = None,
    ) -> None:
        self.secret = secret
        self.publish_token = publish_token
        self.login = login
        self.channels = channels or ChannelPolicy()

    # -- who ---------------------------------------------------------------------------

    def authenticate(self, request: RequestView, access: Access = Access.OPEN) -> Caller:
        """Who ``request`` speaks for.

        Raises:
            ApiError: 401 for a bearer token that is neither the publish token nor a valid
                user token (on a :attr:`Access.PUBLISHER` route, anything but the publish
                token).
        """
        address = request.remote_ip
        scheme, _, credential = (request.header("Authorization") or "").partition(" ")
        if scheme.lower() == "bearer":
            credential = credential.strip()
            if hmac.compare_digest(credential.encode(), self.publish_token.encode()):
                return Caller(None, True, "publish_token", address)
            if access is Access.PUBLISHER:
                raise ApiError(401, "unauthorized", "invalid token", BEARER_CHALLENGE)
            try:
                user = verify_user_token(self.secret, credential)
            except UserTokenError as exc:
                raise ApiError(401, exc.code, str(exc), BEARER_CHALLENGE) from None
            return Caller(user, False, "token", user.address or address)
        login = request.login_cookie()
        if login:
            return Caller(UserIdentity(login), False, "login", address)
        cookie = None if self.login else request.cookie(IDENTITY_COOKIE)
        if cookie:
            try:
                named = verify_user_token(self.secret, cookie, purpose=IDENTITY_COOKIE_PURPOSE)
            except UserTokenError:
                pass  # a stale or foreign cookie only means "pick a name again"
            else:
                return Caller(named, False, "cookie", address)
        return Caller(None, False, "anonymous", address)

    def admit(self, caller: Caller, access: Access) -> None:
        """Refuse ``caller`` unless it may use a route that needs ``access``.

        Raises:
            ApiError: 401, with what would identify the caller.
        """
        if access is Access.SIGNED:
            return
        if access is Access.PUBLISHER:
            if not caller.publisher:
                raise ApiError(
                    401,
                    "unauthorized",
                    "send Authorization: Bearer <DASHBOARD_TOKEN>",
                    BEARER_CHALLENGE,
                )
            return
        # With a login, every route says the same thing to an anonymous caller.
        if self.login and caller.user is None and not caller.publisher:
            raise ApiError(401, "login_required", self._how_to_identify(), BEARER_CHALLENGE)
        if access is Access.USER and caller.user is None:
            raise ApiError(401, "no_identity", self._how_to_identify(), BEARER_CHALLENGE)

    def _how_to_identify(self) -> str:
        if self.login:
            return "log in, or send Authorization: Bearer <user token> (dashboard token USER)"
        return (
            'unidentified: POST /api/identity {"name": ...}, log in, '
            "or send Authorization: Bearer <user token>"
        )

    # -- which channels ----------------------------------------------------------------

    def check_channels(self, caller: Caller, channels: Iterable[str]) -> None:
        """Refuse unless ``caller`` may follow every one of ``channels``.

        Raises:
            ApiError: 401 when an anonymous caller asks for a protected channel (identifying
                could help), 403 when the policy refuses an identified one.
        """
        for channel in channels:
            if channel_kind(channel) is ChannelKind.PUBLIC:
                continue
            if caller.user is None:
                raise ApiError(
                    401,
                    "no_identity",
                    f"{channel} is not public: {self._how_to_identify()}",
                    BEARER_CHALLENGE,
                )
            if not self.channels.allows(caller.user, channel):
                raise ApiError(403, "forbidden", self.channels.refusal(caller.user, channel))
