"""Real PostgreSQL for the tests: the machine's server, and private ones a test may kill.

``DASHBOARD_TEST_POSTGRES`` names the server the suite uses (default: trust auth as
``postgres`` on 127.0.0.1:5432). Each run gets a fresh database with a random name, dropped
at the end; each store test gets its own schema in it (``search_path`` in the URL), so tests
never see each other's rows and cost no ``CREATE DATABASE`` each.

A test that stops PostgreSQL starts its own with :class:`PrivatePostgres`: ``initdb`` and
``pg_ctl`` from ``/usr/lib/postgresql/*/bin`` on a free loopback port in a temporary directory.
PostgreSQL refuses to run as root, so under root the binaries run as the ``postgres`` user
(``runuser``), which owns the directory.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

from tests.processes import free_port

SERVER_URL = os.environ.get("DASHBOARD_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/")


def with_database(url: str, dbname: str, schema: str | None = None) -> str:
    """``url`` pointing at ``dbname``, with ``search_path`` set to ``schema`` if given."""
    parts = urllib.parse.urlsplit(url)
    query = urllib.parse.parse_qsl(parts.query)
    if schema is not None:
        query.append(("options", f"-csearch_path={schema}"))
    return urllib.parse.urlunsplit(
        parts._replace(path="/" + dbname, query=urllib.parse.urlencode(query))
    )


def unavailable_reason() -> str | None:
    """Why the suite's PostgreSQL cannot be used here, or ``None`` when it can."""
    try:
        import psycopg
    except ImportError:
        return "psycopg is not installed (pip install -e '.[postgres]')"
    try:
        psycopg.connect(SERVER_URL, connect_timeout=3).close()
    except psycopg.Error as exc:
        return f"no PostgreSQL at {SERVER_URL} ({' '.join(str(exc).split())[:120]})"
    return None


@contextlib.contextmanager
def scratch_database(url: str = SERVER_URL) -> Iterator[str]:
    """A new, empty database on ``url``'s server, dropped (with its sessions) afterwards."""
    import psycopg

    name = f"dashboard_test_{secrets.token_hex(4)}"
    with psycopg.connect(url, autocommit=True, connect_timeout=5) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield with_database(url, name)
    finally:
        with psycopg.connect(url, autocommit=True, connect_timeout=5) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def create_schema(database_url: str) -> str:
    """A new schema in ``database_url``'s database; its name."""
    import psycopg

    name = f"t_{secrets.token_hex(6)}"
    with psycopg.connect(database_url, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'CREATE SCHEMA "{name}"')
    return name


def _bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}")) or [shutil.which(name) or ""]
    if not found[-1]:
        raise FileNotFoundError(f"{name} not found in /usr/lib/postgresql/*/bin or on PATH")
    return found[-1]


class PrivatePostgres:
    """A PostgreSQL server of the test's own, which it may stop and start again.

    Attributes:
        port: its loopback TCP port.
        url: a URL of its ``postgres`` database (trust auth, user ``postgres``).
    """

    def __init__(self) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix="dashboard-pg-"))
        self.data = self.directory / "data"
        self.port = free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        self._user: list[str] = []
        if os.geteuid() == 0:
            # PostgreSQL will not run as root; the postgres user owns the directory instead.
            account = pwd.getpwnam("postgres")
            os.chown(self.directory, account.pw_uid, account.pw_gid)
            self._user = ["runuser", "-u", "postgres", "--"]

    def _run(self, *command: str, timeout: float = 60) -> None:
        subprocess.run(
            [*self._user, *command], check=True, capture_output=True, timeout=timeout, text=True
        )

    def init(self) -> PrivatePostgres:
        """``initdb`` (trust auth, user ``postgres``), then :meth:`start`."""
        self._run(
            _bin("initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust",
            "--no-sync", "-E", "UTF8", "--locale=C",
        )  # fmt: skip
        return self.start()

    def start(self) -> PrivatePostgres:
        """Start the server and wait until it accepts connections."""
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.directory} "
            "-c fsync=off -c shared_buffers=16MB -c max_connections=40"
        )
        self._run(
            _bin("pg_ctl"), "-D", str(self.data), "-o", options, "-w", "-t", "60",
            "-l", str(self.directory / "log"), "start",
        )  # fmt: skip
        return self

    def stop(self, mode: str = "immediate") -> None:
        """Stop the server (``immediate``: like a crash, no checkpoint; or ``fast``)."""
        self._run(_bin("pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    def destroy(self) -> None:
        """Stop the server if it runs and delete its files."""
        with contextlib.suppress(subprocess.CalledProcessError):
            self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)
