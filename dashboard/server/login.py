"""Panel's login page (``--basic-auth``), with what a shared host needs on top.

Panel's own :class:`~panel.auth.BasicLoginHandler` lets a caller try passwords as fast as the
server answers, compares them with ``==`` (its time depends on how much of the guess is
right), and takes any text as a login name. Here, the same page and cookie, but:

* attempts are limited per client address (:class:`~.limits.Limits`; with Redis, across every
  process of the cluster), answered like a wrong password ("Too many attempts ...") so the
  form keeps working;
* passwords are compared in constant time (:func:`hmac.compare_digest`);
* the page's images come from this server, not Panel's CDN (:class:`LocalAssets`);
* a login name must be a usable user id: 1 to 128 letters, digits and ``_ - = @ , . ;``
  (:func:`~dashboard.core.user_tokens.validate_user_id`), as everywhere else.

With one password for every name (``--basic-auth PASSWORD``), anyone who knows it may log in
as any name: the name is as self-chosen as a guest's. A users file
(``{"ada": "password", ...}``) gives each person their own.
"""

from __future__ import annotations

import hmac
import json
import math
from pathlib import Path
from typing import Any

import tornado.escape
from panel.auth import BasicAuthProvider, BasicLoginHandler
from panel.io.resources import LOCAL_DIST

from ..core.user_tokens import InvalidUserId, validate_user_id
from .base import MalformedOriginIsForeign
from .limits import RateLimiter, acquire


def read_credentials(basic_auth: str) -> str | dict[str, str]:
    """``basic_auth`` as Panel reads it: the path of a JSON file ``{"user": "password"}``,
    else one password for every user name.

    Raises:
        ValueError: a file that is not such a JSON object.
    """
    path = Path(basic_auth)
    if not path.is_file():
        return basic_auth
    users = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(users, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in users.items()
    ):
        raise ValueError(f'{basic_auth}: expected a JSON object {{"user": "password"}}')
    return users


class LoginHandler(MalformedOriginIsForeign, BasicLoginHandler):
    """``POST /login``: Panel's form, limited, constant-time and with checked names.

    A subclass per server binds :attr:`credentials` and :attr:`attempts`
    (:class:`LoginProvider` makes it).
    """

    credentials: str | dict[str, str] = {}
    attempts: RateLimiter

    def _validate(self, username: str, password: str) -> bool:
        credentials = self.credentials
        if isinstance(credentials, dict):
            # Compare with something even for an unknown name: the answer's time then says
            # nothing about which names exist.
            expected = credentials.get(username, "\0" * 32)
            known = username in credentials
        else:
            expected, known = credentials, True
        same = hmac.compare_digest(password.encode(), expected.encode())
        return known and same

    async def post(self) -> None:
        wait = await acquire(self.attempts, self.request.remote_ip or "")
        if wait:
            self._fail(f"Too many attempts; try again in {math.ceil(wait)} s.")
            return
        try:
            validate_user_id(self.get_argument("username", ""))
        except InvalidUserId as exc:
            self._fail(f"Invalid user name: {exc}.")
            return
        super().post()

    def _fail(self, message: str) -> None:
        self.redirect(f"{self.request.path}?error={tornado.escape.url_escape(message)}")


class LoginProvider(BasicAuthProvider):
    """Panel's basic auth, serving :class:`LoginHandler` for this server's credentials.

    Args:
        credentials: one password for every name, or ``{"user": "password"}``.
        attempts: login attempts per client address.
        **options: :class:`~panel.auth.BasicAuthProvider`'s (endpoints, templates).
    """

    def __init__(
        self, credentials: str | dict[str, str], attempts: RateLimiter, **options: Any
    ) -> None:
        # Before Panel's __init__, which asks for login_handler already.
        self._bound = {"credentials": credentials, "attempts": attempts}
        super().__init__(**options)

    @property
    def login_handler(self) -> type[LoginHandler]:
        bound = {
            **self._bound,
            "_login_endpoint": self._login_endpoint,
            "_login_template": LocalAssets(self._login_template),
        }
        return type("LoginHandler", (LoginHandler,), bound)


class LocalAssets:
    """A Panel login template rendered with Panel's images (logo, icon) from this server's
    copy of Panel's files instead of Panel's CDN: a login page must work offline, and
    tells no third party who opened it.

    Args:
        template: the Jinja template Panel would render.
    """

    def __init__(self, template: Any) -> None:
        self.template = template

    def render(self, **values: Any) -> str:
        # Relative to /login, so that a server under a path prefix finds them too.
        return str(self.template.render(**{**values, "PANEL_CDN": LOCAL_DIST}))
