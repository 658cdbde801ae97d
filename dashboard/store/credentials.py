"""The server's own secrets: generated on first start, kept beside its database, never shared.

There is no built-in secret. A server started without ``DASHBOARD_APP_SECRET`` /
``DASHBOARD_TOKEN`` generates them once, with :mod:`secrets`, and keeps them in a JSON file
next to its database (``dashboard.sqlite3`` -> ``dashboard.secrets.json``), readable by its
owner only (mode 0600). User tokens, identity cookies and logins therefore survive a restart,
and ``dashboard token`` on the same machine signs with the same secret by reading that file.

The file is ``{"app_secret": ..., "publish_token": ..., "created": <unix seconds>}``:

* ``app_secret`` signs Pusher subscriptions and sign-ins, user tokens, the identity cookie
  and (through a derived key) Panel's login cookie;
* ``publish_token`` is the bearer token of ``POST /api/publish`` and ``/api/notifications``.

Two processes starting at once agree: the file is created whole with one atomic link, and the
loser reads the winner's file.
"""

from __future__ import annotations

import json
import os
import secrets
import stat
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from ..core.errors import DashboardError
from .errors import StoreError

#: Shortest app secret accepted; Pusher's own secrets are 20 hex digits.
MIN_SECRET_LENGTH: Final = 16
#: Secrets published in this project's history or documentation: never accepted.
WELL_KNOWN_SECRETS: Final = frozenset({"dashboard-secret"})
SECRETS_SUFFIX: Final = ".secrets.json"


class SecretsError(StoreError):
    """The secrets file is missing, unreadable, malformed or readable by others."""


class SecretsMissing(SecretsError):
    """There is no secrets file yet."""


class WeakSecret(DashboardError, ValueError):
    """A configured secret that is too short or publicly known."""


@dataclass(frozen=True)
class ServerSecrets:
    """What the server signs and checks with.

    Attributes:
        app_secret: the Pusher app secret (also the key of user tokens and cookies).
        publish_token: the bearer token that may publish and send notifications.
    """

    app_secret: str
    publish_token: str


def check_secret(secret: str, what: str = "the app secret") -> str:
    """Return ``secret`` if it may sign anything (or, as the publish token, authorize).

    Raises:
        WeakSecret: shorter than 16 characters, or one of the publicly known values.
    """
    if secret in WELL_KNOWN_SECRETS:
        raise WeakSecret(
            f"{what} {secret!r} is published in this project's history; choose your own "
            "(python -c 'import secrets; print(secrets.token_hex(20))')"
        )
    if len(secret) < MIN_SECRET_LENGTH:
        raise WeakSecret(
            f"{what} is {len(secret)} characters long; use at least {MIN_SECRET_LENGTH} "
            "(python -c 'import secrets; print(secrets.token_hex(20))')"
        )
    return secret


def secrets_path(database: str | Path) -> Path:
    """Where the secrets of the server using the SQLite file ``database`` live."""
    path = Path(database)
    return path.with_name(path.stem + SECRETS_SUFFIX)


def default_database() -> Path:
    """The database ``dashboard serve`` uses by default: ``$DASHBOARD_DB``, else
    ``$XDG_DATA_HOME/dashboard/dashboard.sqlite3`` (``~/.local/share/...``)."""
    configured = os.environ.get("DASHBOARD_DB")
    if configured:
        return Path(configured)
    data_home = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(data_home) / "dashboard" / "dashboard.sqlite3"


def local_secrets(database: str | Path | None = None) -> ServerSecrets:
    """The secrets a ``dashboard serve`` on this machine keeps beside ``database`` (by default
    :func:`default_database`): how local tools find the publish token and app secret.

    Raises:
        SecretsError: there are none there (no server ran with that database), or unusable.
    """
    return load_secrets(secrets_path(database or default_database()))


def generate() -> ServerSecrets:
    """Fresh random secrets (160 bits of app secret, 192 of publish token)."""
    return ServerSecrets(app_secret=secrets.token_hex(20), publish_token=secrets.token_urlsafe(24))


def load_secrets(path: Path) -> ServerSecrets:
    """Read the secrets file at ``path``.

    Raises:
        SecretsError: missing, unreadable, not owner-only, or not the expected JSON.
    """
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except FileNotFoundError:
        raise SecretsMissing(f"no secrets file at {path}") from None
    except OSError as exc:
        raise SecretsError(f"cannot read the secrets file {path}: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as file:
        mode = os.fstat(file.fileno()).st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise SecretsError(
                f"the secrets file {path} is readable by others (mode {stat.filemode(mode)}); "
                f"run: chmod 600 {path}"
            )
        raw = file.read(64 * 1024)
    try:
        data = json.loads(raw)
        loaded = ServerSecrets(str(data["app_secret"]), str(data["publish_token"]))
    except (ValueError, TypeError, KeyError):
        raise SecretsError(
            f"the secrets file {path} is not a JSON object with app_secret and publish_token; "
            "restore it, or delete it to generate new secrets (every token and login ends)"
        ) from None
    try:
        check_secret(loaded.app_secret)
    except WeakSecret as exc:
        raise SecretsError(f"{path}: {exc}") from None
    return loaded


def load_or_create_secrets(path: Path) -> ServerSecrets:
    """The secrets in ``path``; generated and written there (mode 0600) if it does not exist.

    Raises:
        SecretsError: the file exists but is unusable (see :func:`load_secrets`), or it cannot
            be created.
    """
    try:
        return load_secrets(path)
    except SecretsMissing:
        pass  # create it; another process may be doing the same, and one of us wins
    fresh = generate()
    body = json.dumps(
        {
            "app_secret": fresh.app_secret,
            "publish_token": fresh.publish_token,
            "created": int(time.time()),
        },
        indent=2,
    )
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as file:
                file.write(body + "\n")
                file.flush()
                os.fsync(file.fileno())
            os.link(temporary, path)  # atomic, and fails if another process got there first
        except FileExistsError:
            pass
        finally:
            temporary.unlink(missing_ok=True)
    except OSError as exc:
        raise SecretsError(f"cannot create the secrets file {path}: {exc.strerror}") from None
    return load_secrets(path)
