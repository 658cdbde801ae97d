"""The ``dashboard`` command: serve the dashboard, publish or notify into it, tail any SSE stream.

Every failure a user can cause (a taken port, a bad URL, an unreachable server, a rejected
request) ends in one line on stderr and a non-zero exit status, never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from . import __version__
from .core.redact import redact_url
from .store.credentials import default_database

DEFAULT_URL = "http://127.0.0.1:5006"
DEMO_CHANNELS = ("metrics", "deploys", "alerts")


class CLIError(Exception):
    """A failure to report as one line."""


class _Parser(argparse.ArgumentParser):
    """argparse, with a usage error as one line like every other error (and argparse's exit
    status 2), pointing at the command's ``--help`` instead of printing the usage block."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:  # said by the command they were given to, not by `dashboard` itself
        command = parser.commands.get(args.command, parser)  # type: ignore[attr-defined]
        command.error(f"unrecognized arguments: {' '.join(unknown)}")
    try:
        return int(args.run(args) or 0)
    except CLIError as exc:
        print(f"dashboard: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`dashboard tail ... | head -3`): stop quietly, as cat does.
        # Python would report the pipe once more while flushing stdout at exit; point stdout
        # at /dev/null first.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, what a shell reports for a command killed by the pipe


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="dashboard", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"dashboard {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    parser.commands = commands.choices  # type: ignore[attr-defined]

    serve = commands.add_parser("serve", help="serve the dashboard and the realtime API")
    serve.add_argument("--port", type=int, default=5006, help="TCP port (default 5006)")
    serve.add_argument("--address", default="127.0.0.1", help="interface (default 127.0.0.1)")
    serve.add_argument(
        "--feed", metavar="URL", help="show an external SSE stream instead of the demo"
    )
    serve.add_argument("--no-demo", action="store_true", help="do not run the demo publisher")
    serve.add_argument(
        "--feed-token",
        default=os.environ.get("DASHBOARD_FEED_TOKEN") or None,
        metavar="TOKEN",
        help="a user token for a --feed server with a login (default: $DASHBOARD_FEED_TOKEN)",
    )
    serve.add_argument(
        "--allow-websocket-origin",
        action="append",
        default=[],
        metavar="HOST:PORT",
        help="another host:port (or *) whose pages may open the dashboard, /api/events and "
        "the Pusher socket (repeatable)",
    )
    _add_db(
        serve,
        "SQLite file, or postgresql://user:password@host:port/dbname URL shared by several "
        "processes, for chat rooms, messages and notifications; generated secrets are kept "
        "beside the file, or in the database",
    )
    serve.add_argument(
        "--basic-auth",
        default=os.environ.get("DASHBOARD_BASIC_AUTH") or None,
        metavar="PASSWORD|FILE",
        help="require Panel's login: one password for any user name, or a JSON file "
        '{"user": "password"}; the login name becomes the identity (default: '
        "$DASHBOARD_BASIC_AUTH, else no login)",
    )
    serve.add_argument(
        "--allow-channel",
        action="append",
        default=[],
        type=_channel_rule,
        metavar="PATTERN=USERS",
        help="let users into private/presence channels no built-in rule covers, e.g. "
        "'private-team-*=ada,bob' or 'presence-ops=*' (any identified user); repeatable",
    )
    serve.add_argument(
        "--frame-ancestors",
        default="'self'",
        metavar="SOURCES",
        help="who may frame the pages (CSP frame-ancestors; default \"'self'\", e.g. "
        "\"'none'\" or \"'self' https://intranet.example\")",
    )
    serve.add_argument(
        "--use-xheaders",
        action="store_true",
        help="behind a reverse proxy that sets X-Real-Ip/X-Forwarded-For and "
        "X-Forwarded-Proto, take the client's address and scheme from them",
    )
    serve.add_argument(
        "--redis",
        default=os.environ.get("DASHBOARD_REDIS_URL") or None,
        metavar="URL",
        help="share the hub with every process given the same Redis: redis://HOST:PORT/DB "
        "(history, offsets and events; see docs/redis.md; default: $DASHBOARD_REDIS_URL, "
        "else this process alone, in memory)",
    )
    serve.add_argument(
        "--redis-prefix",
        default=os.environ.get("DASHBOARD_REDIS_PREFIX") or "dashboard:",
        metavar="PREFIX",
        help="prefix of every Redis key and pub/sub channel (default: $DASHBOARD_REDIS_PREFIX, "
        "else %(default)s)",
    )
    serve.add_argument(
        "--presence-timeout",
        type=float,
        default=15.0,
        metavar="SECONDS",
        help="with --redis: the presence members of a process that crashed or lost Redis are "
        "removed everywhere within this time (default 15)",
    )
    serve.add_argument(
        "--model",
        default=None,
        help="the model behind /api/chat with OPENAI_API_KEY / OPENAI_BASE_URL set (default: "
        "$OPENAI_MODEL, else gpt-4o-mini); without either, an offline demo answers",
    )
    for flag, variable, fallback in (
        ("id", "ID", "1"),
        ("key", "KEY", "dashboard-key"),
        ("secret", "SECRET", "generated once and kept beside the database"),
    ):
        serve.add_argument(
            f"--app-{flag}",
            default=os.environ.get(f"DASHBOARD_APP_{variable}") or None,
            help=f"Pusher app {flag} (default: $DASHBOARD_APP_{variable}, else {fallback})",
        )
    serve.set_defaults(run=_serve)

    publish = commands.add_parser("publish", help="publish one event into a running dashboard")
    publish.add_argument("channel")
    publish.add_argument("event")
    publish.add_argument("data", help="the payload, as JSON")
    _add_url_and_token(publish)
    publish.set_defaults(run=_publish)

    notify = commands.add_parser("notify", help="send a notification to one user or everyone")
    notify.add_argument("title", metavar="TITLE", help="the notification's title")
    notify.add_argument("--message", default="", help="the longer text (default: none)")
    notify.add_argument(
        "--type", default="info", metavar="info|success|warning|error", help="default info"
    )
    notify.add_argument(
        "--user", default="*", metavar="ID|*", help="the recipient's user id, or * for everyone"
    )
    notify.add_argument("--link", help="an http(s) URL or a /path the notification points to")
    notify.add_argument("--data", help="extra data, as JSON")
    _add_url_and_token(notify)
    notify.set_defaults(run=_notify)

    tail = commands.add_parser("tail", help="print the events of any SSE endpoint, reconnecting")
    tail.add_argument("url", help="an SSE URL, or a dashboard base URL with --channel")
    tail.add_argument("--channel", action="append", default=[], help="channel (repeatable)")
    tail.add_argument("--last-event-id", help="resume after this event id")
    tail.add_argument("--json", action="store_true", help="print one JSON object per event")
    tail.add_argument(
        "--token",
        default=os.environ.get("DASHBOARD_USER_TOKEN") or None,
        help="a user token (dashboard token USER) for a server with a login or a private "
        "channel (default: $DASHBOARD_USER_TOKEN)",
    )
    tail.set_defaults(run=_tail)

    token = commands.add_parser("token", help="print a signed, expiring user token")
    token.add_argument("user", metavar="USER", help="the user id the token speaks for")
    token.add_argument("--name", help="display name (default: the user id)")
    token.add_argument(
        "--ttl", type=float, default=24 * 3600, help="lifetime in seconds (default 86400)"
    )
    token.add_argument(
        "--secret",
        help="app secret (default: $DASHBOARD_APP_SECRET, else the one `dashboard serve` keeps "
        "beside --db)",
    )
    _add_db(token)
    token.set_defaults(run=_token)
    return parser


def _add_db(
    command: argparse.ArgumentParser,
    what: str = "the server's database; its secrets are kept beside it",
) -> None:
    command.add_argument(
        "--db",
        # $DASHBOARD_DB as given: a Path would fold a URL's "//" into "/".
        default=os.environ.get("DASHBOARD_DB") or str(default_database()),
        metavar="PATH|URL",
        help=f"{what} (default: $DASHBOARD_DB, else %(default)s)",
    )


def _is_postgres(database: str) -> bool:
    return database.partition("://")[0].lower() in ("postgresql", "postgres")


def _shown_database(database: str) -> str:
    """``--db`` as the startup banner shows it: a URL's passwords replaced by ``***``."""
    return redact_url(database) if "://" in database else database


def _add_url_and_token(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--url",
        default=os.environ.get("DASHBOARD_URL") or DEFAULT_URL,
        help=f"dashboard URL (default: $DASHBOARD_URL, else {DEFAULT_URL})",
    )
    command.add_argument(
        "--token",
        help="publish token (default: $DASHBOARD_TOKEN, else the one a local `dashboard serve` "
        "keeps beside --db)",
    )
    _add_db(command)


def _channel_rule(text: str) -> Any:
    from .core.channel_policy import ChannelRule, InvalidChannelRule

    try:
        return ChannelRule.parse(text)
    except InvalidChannelRule as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _check_url(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise CLIError(f"{url!r} is not an http(s) URL")
    return url


# -- serve ------------------------------------------------------------------------------


def _serve(args: argparse.Namespace) -> int:
    if not 0 <= args.port <= 65535:
        raise CLIError(f"port {args.port} is out of range")
    if args.feed:
        args.feed, args.feed_channels = _feed(args.feed)
    if args.basic_auth:
        _check_basic_auth(args.basic_auth)
    if args.redis:
        _check_redis(args.redis, args.redis_prefix)
    if not args.presence_timeout > 0:
        raise CLIError(f"--presence-timeout {args.presence_timeout}: must be a positive number")
    return asyncio.run(_serve_async(args))


def _db_hint(database: str) -> str:
    if _is_postgres(database):
        return "check that PostgreSQL runs and the --db URL is right"
    return "choose another file with --db"


def _check_redis(url: str, prefix: str) -> None:
    try:
        from .hub.backends.redis import check_url
    except ImportError:
        raise CLIError("--redis needs the redis package: pip install 'dashboard[redis]'") from None
    try:
        check_url(url)
    except ValueError as exc:
        raise CLIError(f"--redis: {exc}") from None
    if not prefix or any(c.isspace() or c in "{}" for c in prefix):
        raise CLIError(f"--redis-prefix {prefix!r}: must be non-empty, without spaces or braces")


def _feed(url: str) -> tuple[str, tuple[str, ...]]:
    """Split ``--feed`` into the stream's URL and its channels. A dashboard's URL without
    ``channel`` parameters (``http://host:5006``, ``.../api/events``) means the demo channels,
    which the page shows; any other SSE URL is used as it is."""
    _check_url(url)
    parts = urllib.parse.urlsplit(url)
    query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    channels = tuple(value for key, value in query if key == "channel")
    if not channels and parts.path in ("", "/", "/api/events"):
        channels = DEMO_CHANNELS
    rest = urllib.parse.urlencode([(key, value) for key, value in query if key != "channel"])
    return urllib.parse.urlunsplit(parts._replace(query=rest)), channels


async def _check_feed(stream_url: str, headers: dict[str, str] | None) -> None:
    """Fail at once when the feed refuses the stream (a 4xx says why); only warn when it is
    unreachable now, since the page keeps retrying."""
    import aiohttp

    try:
        async with (
            aiohttp.ClientSession() as session,
            session.get(
                stream_url,
                headers={"Accept": "text/event-stream", **(headers or {})},
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=5, sock_read=5),
            ) as response,
        ):
            if response.status >= 400:
                message = _error_message(await response.content.read(2000))
                raise CLIError(f"--feed {stream_url}: {response.status}: {message}")
            kind = response.headers.get("Content-Type", "")
            if response.status != 200 or not kind.startswith("text/event-stream"):
                raise CLIError(
                    f"--feed {stream_url}: not an event stream ({response.status}, {kind!r})"
                )
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        print(f"# --feed {stream_url} is unreachable now ({exc}); the page keeps retrying")


def _check_basic_auth(value: str) -> None:
    """Refuse a login file that is missing or malformed, rather than let Panel take its path
    for the password."""
    path = Path(value)
    if path.is_file():
        try:
            users = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise CLIError(f"--basic-auth {value}: not a readable JSON file ({exc})") from None
        if not (
            isinstance(users, dict)
            and users
            and all(isinstance(k, str) and isinstance(v, str) for k, v in users.items())
        ):
            raise CLIError(f'--basic-auth {value}: expected a JSON object {{"user": "password"}}')
    elif value.endswith(".json") or os.sep in value:
        raise CLIError(f"--basic-auth {value}: no such file")


async def _serve_async(args: argparse.Namespace) -> int:
    from .ai import provider_from_env
    from .app import create_dashboard, session_viewer
    from .core.errors import BackendUnavailable
    from .demo import DemoSource
    from .hub import HubStream
    from .notifications.demo import DemoNotifier
    from .server import DashboardServer, PortInUse, freeze_startup_heap
    from .server.serve import hub_for
    from .store import StoreError
    from .store.credentials import WeakSecret

    hub = hub_for(args.redis, args.redis_prefix)

    def page() -> Any:
        viewer = session_viewer(server)
        if args.feed:
            from .client import HubEventStream

            stream: Any = HubEventStream(args.feed, args.feed_channels, headers=feed_headers)
        else:
            stream = HubStream(hub, DEMO_CHANNELS)
        return create_dashboard(stream, viewer=viewer)

    feed_headers = {"Authorization": f"Bearer {args.feed_token}"} if args.feed_token else None
    if args.feed:
        from .client.stream import events_url

        await _check_feed(str(events_url(args.feed, args.feed_channels)), feed_headers)
    try:
        ai = provider_from_env(args.model)
    except ValueError as exc:
        raise CLIError(str(exc)) from None
    try:
        server = DashboardServer(
            hub,
            page=page,
            port=args.port,
            address=args.address,
            token=os.environ.get("DASHBOARD_TOKEN") or None,
            websocket_origins=args.allow_websocket_origin,
            app_id=args.app_id,
            app_key=args.app_key,
            app_secret=args.app_secret,
            store=args.db,
            basic_auth=args.basic_auth,
            ai=ai,
            channel_rules=args.allow_channel,
            frame_ancestors=args.frame_ancestors,
            use_xheaders=args.use_xheaders,
            redis_url=args.redis,
            redis_prefix=args.redis_prefix,
            presence_timeout=args.presence_timeout,
        )
    except WeakSecret as exc:
        raise CLIError(f"{exc} (--app-secret, $DASHBOARD_APP_SECRET, $DASHBOARD_TOKEN)") from None
    except StoreError as exc:
        raise CLIError(f"{exc} ({_db_hint(args.db)})") from None
    try:
        await server.start()
    except (StoreError, OSError, BackendUnavailable) as exc:
        await server.stop()  # safe after a failed start; closes whatever was opened
        if isinstance(exc, BackendUnavailable):
            raise CLIError(f"{exc} (check --redis / $DASHBOARD_REDIS_URL)") from None
        if isinstance(exc, StoreError):
            raise CLIError(f"{exc} ({_db_hint(args.db)})") from None
        if isinstance(exc, PortInUse):
            raise CLIError(f"{exc.strerror}; pick another with --port") from None
        raise CLIError(f"cannot listen on {args.address}:{args.port}: {exc.strerror}") from None
    demo = None
    notifier = None
    if not args.feed and not args.no_demo:
        demo = DemoSource()
        await demo.start(hub)
        if server.ctx.notifications is not None:
            # Severe demo alerts and failed deploys become broadcasts, one per 30 s at most.
            notifier = DemoNotifier(hub, server.ctx.notifications)
            await notifier.start()
    freeze_startup_heap()

    print(f"Dashboard:  {server.url}/", flush=True)
    print(f"Events:     {server.url}/api/events?channel=metrics", flush=True)
    print(f"Database:   {_shown_database(args.db)}", flush=True)
    print(f"AI chat:    {ai.label} (POST /api/chat)", flush=True)
    if args.redis:
        from .hub.backends.redis import redact

        print(f"Hub:        shared through Redis {redact(args.redis)} (prefix {args.redis_prefix})")
    else:
        print("Hub:        this process alone (in memory; --redis URL to share it)")
    app = server.ctx.app
    print(f"Pusher:     ws://{server.url.split('://', 1)[1]}/app/{app.key}  app id {app.app_id}")
    if server.kept_secrets:
        # Where, never what: logs are read by more people than the secrets are meant for.
        kept = " and ".join(server.kept_secrets)
        owner_only = " (owner only)" if server.secrets_file else ""
        print(f"Secrets:    {kept} kept in {server.secrets_location}{owner_only}")
    if args.basic_auth:
        print("Access:     login required for every page, route, stream and socket")
    else:
        print("Access:     anyone who can reach this port (no login; see docs/security.md)")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    print("Shutting down.", flush=True)
    if demo is not None:
        await demo.stop()
    if notifier is not None:
        await notifier.stop()
    await server.stop()
    return 0


# -- publish ----------------------------------------------------------------------------


def _publish(args: argparse.Namespace) -> int:
    base = _check_url(args.url).rstrip("/")
    token = _publish_token(args)
    try:
        data = json.loads(args.data)
    except json.JSONDecodeError as exc:
        raise CLIError(f"DATA is not valid JSON: {exc}") from None
    body = {"channel": args.channel, "event": args.event, "data": data}
    answer = _post_json(base, "/api/publish", body, token)
    print(answer.get("id", answer))
    return 0


def _publish_token(args: argparse.Namespace) -> str:
    token = args.token or os.environ.get("DASHBOARD_TOKEN")
    if token:
        return str(token)
    secrets = _kept_secrets(args.db, "no token: pass --token or set DASHBOARD_TOKEN")
    return str(secrets.publish_token)


def _kept_secrets(database: str, missing: str) -> Any:
    """The secrets a local ``dashboard serve`` keeps beside ``database``; else a CLIError that
    starts with ``missing`` and says what was looked for."""
    from .store import StoreError
    from .store.credentials import local_secrets

    try:
        if _is_postgres(database):
            from .store.postgres import read_kept_secrets

            return read_kept_secrets(database)
        return local_secrets(database)
    except StoreError as exc:  # SecretsError, or an unusable --db URL
        raise CLIError(
            f"{missing} ({exc}; `dashboard serve --db {_shown_database(database)}` keeps it)"
        ) from None


def _post_json(base: str, path: str, body: Any, token: str) -> Any:
    """POST ``body`` as JSON with the publish token; the answer, or a one-line CLIError."""
    request = urllib.request.Request(
        f"{base}{path}",
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            answer = json.load(response)
    except urllib.error.HTTPError as exc:
        raise CLIError(f"{exc.code}: {_error_message(exc.read())}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise CLIError(f"cannot reach {base}: {reason}") from None
    return answer


# -- notify -----------------------------------------------------------------------------


def _notify(args: argparse.Namespace) -> int:
    base = _check_url(args.url).rstrip("/")
    token = _publish_token(args)
    body: dict[str, Any] = {
        "user": args.user,
        "type": args.type,
        "title": args.title,
        "message": args.message,
    }
    if args.link is not None:
        body["link"] = args.link
    if args.data is not None:
        try:
            body["data"] = json.loads(args.data)
        except json.JSONDecodeError as exc:
            raise CLIError(f"--data is not valid JSON: {exc}") from None
    answer = _post_json(base, "/api/notifications", body, token)
    print(answer.get("id", answer))
    return 0


def _error_message(body: bytes) -> str:
    try:
        return str(json.loads(body).get("message", body.decode(errors="replace")))
    except (ValueError, AttributeError):
        return body.decode(errors="replace")[:200]


# -- tail -------------------------------------------------------------------------------


def _tail(args: argparse.Namespace) -> int:
    url = _check_url(args.url)
    if args.channel:
        parts = urllib.parse.urlsplit(url)
        if parts.path in ("", "/"):
            url = url.rstrip("/") + "/api/events"
        query = urllib.parse.urlencode([("channel", name) for name in args.channel])
        url += ("&" if "?" in url else "?") + query
    return asyncio.run(_tail_async(url, args.last_event_id, args.json, args.token))


async def _tail_async(
    url: str, last_event_id: str | None, as_json: bool, token: str | None = None
) -> int:
    from .client import SSESubscription

    headers = {"Authorization": f"Bearer {token}"} if token else None
    subscription = SSESubscription(url, last_event_id=last_event_id, headers=headers)
    previous_error = None

    def report(status: Any) -> None:
        # Reconnects are worth a note on stderr; a fatal error is reported once, at the end.
        nonlocal previous_error
        if status.state.value == "closed":
            return
        if status.last_error and status.last_error != previous_error:
            previous_error = status.last_error
            print(f"# {status.state.value}: {status.last_error}", file=sys.stderr, flush=True)

    subscription.watch_status(report)
    try:
        async for event in subscription:
            if as_json:
                line = json.dumps({"event": event.event, "id": event.id, "data": event.data})
            else:
                line = f"{event.event}\t{event.id}\t{event.data}"
            print(line, flush=True)
    finally:
        await subscription.aclose()
    if subscription.fatal_error:
        raise CLIError(subscription.fatal_error)
    return 0


# -- token ------------------------------------------------------------------------------


def _token(args: argparse.Namespace) -> int:
    from .core.user_tokens import InvalidUserId, issue_user_token
    from .store.credentials import WeakSecret, check_secret

    secret = args.secret or os.environ.get("DASHBOARD_APP_SECRET") or None
    if secret is None:
        secret = _kept_secrets(
            args.db, "no secret: pass --secret or set DASHBOARD_APP_SECRET"
        ).app_secret
    try:
        check_secret(secret)
        token = issue_user_token(secret, args.user, args.name, ttl=args.ttl)
    except (InvalidUserId, WeakSecret) as exc:
        raise CLIError(str(exc)) from None
    except ValueError as exc:  # a ttl that is not a positive finite number
        raise CLIError(f"--ttl: {exc}") from None
    print(token)
    return 0
