"""Hostile request bodies against every route that takes one, over raw sockets.

Every POST, PATCH and DELETE route gets a corpus of malformed bodies, sent with the credentials
that route accepts (so the body is what is judged, not the caller) and again without any. The
answer must be the exact 4xx the table names, as JSON ``{"error", "message"}``: never a 5xx, a
hang, or a connection dropped without an answer. Two allowances, both stated where they apply:

* a body over the limit, sent without ``Expect: 100-continue``, may see the connection closed
  once the 413 (or 401) is out: the server refuses to read what it will not use;
* Tornado's HTTP/1 parser refuses some framing itself (``Content-Length`` together with
  ``Transfer-Encoding``, an unknown transfer coding) with a bare ``400 Bad Request`` before
  any handler runs; that answer has no JSON body, and no handler could give it one.

Then the bounds that keep memory flat (a real ``dashboard serve`` process, measured with psutil)
and the WebSocket close codes of RFC 6455 at ``/app/{key}``.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import psutil
import pytest

from dashboard.ai import DemoProvider
from dashboard.core.pusher_signatures import signed_params
from dashboard.core.user_tokens import IDENTITY_COOKIE, IDENTITY_COOKIE_PURPOSE, issue_user_token
from dashboard.server import DashboardServer
from dashboard.server.limits import Limits
from tests.processes import dashboard_process
from tests.server.raw_wire import (
    CLOSE,
    TEXT,
    RawWebSocket,
    Reply,
    chunked,
    exchange,
    request_head,
    ws_frame,
)

SECRET = "hostile-input-secret-0123456789"
TOKEN = "hostile-input-publish-token"
GUEST_ID = "guest-00112233aabbccdd"
KB = 1024

# -- the routes --------------------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    """One method of one route, and what it takes.

    Attributes:
        credential: ``"publisher"`` (the publish token), ``"user"`` (a bearer user token),
            ``"guest"`` (the identity cookie) or ``"signed"`` (a Pusher request signature).
        limit: the largest body it reads, in bytes.
        valid: a body it accepts; ``None`` for a route that takes no body and ignores one
            within its limit (so a malformed one there is answered as if absent: 200).
        strict: whether a field it does not know is a 400 (else ignored, as Pusher does).
        typed: the fields of ``valid`` that must have its type (others take any JSON).
        text: where ``valid`` holds free text (a path of keys and indexes): where hostile
            text goes, so that only the parser stands between it and the route.
    """

    name: str
    method: str
    path: str
    credential: str
    limit: int
    valid: dict[str, Any] | None = None
    strict: bool = True
    typed: tuple[str, ...] = ()
    text: tuple[str | int, ...] = ("text",)


EVENT = {"name": "hostile", "data": "x", "channel": "hostile"}
ROUTES = [
    Route(
        "publish", "POST", "/api/publish", "publisher", 64 * KB,
        {"channel": "hostile", "event": "tick", "data": {"v": "x"}},
        typed=("channel", "event"), text=("data", "v"),
    ),
    Route(
        "notify", "POST", "/api/notifications", "publisher", 64 * KB,
        {"user": "ada", "title": "Hi", "message": "m", "type": "info"},
        typed=("user", "title", "message", "type"), text=("message",),
    ),
    Route(
        "identity", "POST", "/api/identity", "guest", 4 * KB, {"name": "Ada"},
        typed=("name",), text=("name",),
    ),
    Route(
        "ai_chat", "POST", "/api/chat", "user", 256 * KB,
        {"messages": [{"role": "user", "content": "hi"}]},
        typed=("messages",), text=("messages", 0, "content"),
    ),
    Route(
        "pusher_auth", "POST", "/pusher/auth", "user", 4 * KB,
        {"socket_id": "1.2", "channel_name": "private-user-ada"}, strict=False,
        typed=("socket_id", "channel_name"), text=("channel_name",),
    ),
    Route(
        "pusher_user_auth", "POST", "/pusher/user-auth", "user", 4 * KB,
        {"socket_id": "1.2"}, strict=False, typed=("socket_id",), text=("socket_id",),
    ),
    Route(
        "apps_events", "POST", "/apps/1/events", "signed", 256 * KB, EVENT, strict=False,
        typed=("name", "data", "channel"), text=("data",),
    ),
    Route(
        "apps_batch_events", "POST", "/apps/1/batch_events", "signed", 256 * KB,
        {"batch": [EVENT]}, strict=False, typed=("batch",), text=("batch", 0, "data"),
    ),
    Route(
        "room_post", "POST", "/api/rooms/lobby/messages", "user", 64 * KB, {"text": "hi"},
        typed=("text",),
    ),
    Route(
        "room_patch", "PATCH", "/api/rooms/lobby/messages/{message}", "user", 64 * KB,
        {"text": "edited"}, typed=("text",),
    ),
    Route("room_delete", "DELETE", "/api/rooms/lobby/messages/{message}", "user", 1 * KB),
    Route("notification_read", "POST", "/api/notifications/{notification}/read", "user", 64 * KB),
    Route("notifications_read_all", "POST", "/api/notifications/read-all", "user", 64 * KB),
]  # fmt: skip
BY_NAME = {route.name: route for route in ROUTES}


def test_the_table_names_every_route_that_takes_a_body():
    """A new POST/PUT/PATCH/DELETE route must be added to ROUTES (and so to the corpus)."""
    from dashboard.server.base import ApiHandler, NotFoundHandler, ServerContext
    from dashboard.server.routes import api_routes

    declared = set()
    for pattern, handler, _ in api_routes(ServerContext.__new__(ServerContext)):
        if isinstance(handler, type) and issubclass(handler, ApiHandler):
            if handler is NotFoundHandler:
                continue
            for method in handler.access:
                if method in ("POST", "PUT", "PATCH", "DELETE"):
                    declared.add((method, pattern))
    tabled = set()
    for route in ROUTES:
        pattern = route.path.replace("{message}", "([^/]+)").replace("{notification}", "([^/]+)")
        pattern = pattern.replace("/apps/1/", "/apps/([^/]+)/").replace("/lobby/", "/([^/]+)/")
        pattern = pattern.replace("/channels/c", "/channels/([^/]+)")
        pattern = pattern.replace("/channels/presence-c/", "/channels/([^/]+)/")
        tabled.add((route.method, pattern))
    assert declared == tabled


# -- the corpus --------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One hostile request body.

    Attributes:
        body: the bytes, or a function of the route (for bodies built from its valid one).
        framing: ``"length"`` (a true Content-Length), ``"chunked"``, ``"declared"`` (the
            ``content_length`` header below, whatever is sent), ``"absent"`` (no length at
            all), ``"expect"`` (a Content-Length with ``Expect: 100-continue``, and no body:
            a server that refuses must do so without asking for it), ``"short"`` (a length
            100 bytes over the body, then our half of the connection closes),
            ``"conflicting"`` (Content-Length and chunked together), ``"unknown_coding"``
            (``Transfer-Encoding: gzip``).
        status: the answer of a route that reads the body, when within its limit.
        only: the routes it applies to; all when empty.
    """

    name: str
    body: bytes | Callable[[Route], bytes]
    framing: str = "length"
    content_length: str | None = None
    status: int = 400
    only: frozenset[str] = frozenset()
    headers: tuple[tuple[str, str], ...] = ()

    def bytes_for(self, route: Route) -> bytes:
        return self.body(route) if callable(self.body) else self.body


def _valid(route: Route, **changes: Any) -> bytes:
    """The route's valid body (``{"text": "x"}`` for one that takes none), with ``changes``."""
    return json.dumps({**(route.valid or {"text": "x"}), **changes}).encode()


def _with_text(route: Route, value: object) -> dict[str, Any]:
    """A copy of the route's valid body with its free text (:attr:`Route.text`) = ``value``."""
    body = copy.deepcopy(route.valid or {"text": "x"})
    *parents, last = route.text
    node: Any = body
    for key in parents:
        node = node[key]
    node[last] = value
    return body


def _nested(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth - 1):
        value = [value]
    return value


def _text(value: str) -> Callable[[Route], bytes]:
    """The valid body with ``value`` as its free text, JSON-escaped: a lone surrogate
    travels as the ASCII escape ``\\udfff``, which only a parser turns into a surrogate."""
    return lambda route: json.dumps(_with_text(route, value)).encode()


def _raw_text(raw: bytes) -> Callable[[Route], bytes]:
    """The valid body with ``raw`` bytes (not UTF-8) as its free text."""
    marker = "HOSTILE-MARKER"
    return lambda route: (
        json.dumps(_with_text(route, marker)).encode().replace(marker.encode(), raw)
    )


def _number(literal: bytes) -> Callable[[Route], bytes]:
    """The valid body with the number ``literal`` as its free text."""
    marker = "HOSTILE-MARKER"
    return lambda route: (
        json.dumps(_with_text(route, marker)).encode().replace(b'"%s"' % marker.encode(), literal)
    )


FORM = (("Content-Type", "application/x-www-form-urlencoded"),)
AUTH_ROUTES = frozenset({"pusher_auth", "pusher_user_auth"})

CORPUS = [
    # Nesting: within every limit (so the parser judges it), and 100,000 levels (the size
    # limit judges it first, except on the 256 KB routes).
    Case("deep_array", b"[" * 1500 + b"]" * 1500),
    Case("deep_object", b'{"a":' * 600 + b"1" + b"}" * 600),
    Case("deep_array_100k", b"[" * 100_000),
    Case("deep_object_100k", b'{"a":' * 20_000),
    # Over 32 levels where the route takes any JSON (publish's data): only the depth limit refuses.
    Case(
        "nesting_over_32_in_text", lambda route: json.dumps(_with_text(route, _nested(32))).encode()
    ),
    Case("deep_object_unclosed", b'{"a":' * 800),
    # Numbers.
    Case("int_5000_digits", _number(b"9" * 5000)),
    Case("int_101_digits", _number(b"1" + b"0" * 100)),
    Case("float_1e999", _number(b"1e999")),
    Case("float_200_digits", _number(b"0." + b"1" * 200)),
    Case("nan", _number(b"NaN")),
    Case("infinity", _number(b"Infinity")),
    Case("minus_infinity", b"-Infinity"),
    # Text that is not text.
    Case("lone_surrogate_name", b'{"name": "\\udfff"}'),
    Case("bidi_override_name", b'{"name": "\\u202eada"}', only=("identity",)),
    Case("lone_surrogate_text", _text("\udfff")),
    Case("lone_high_surrogate_text", _text("a\ud800b")),
    Case("lone_surrogate_key", lambda route: _valid(route).replace(b"{", b'{"\\ud800": 1, ', 1)),
    Case("invalid_utf8", _raw_text(b"\xff\xfe")),
    Case("utf8_encoded_surrogate", _raw_text(b"\xed\xa0\x80")),
    Case("overlong_utf8", _raw_text(b"\xc0\xaf")),
    Case("nul_byte", b"\x00"),
    Case("utf8_bom", lambda route: b"\xef\xbb\xbf" + _valid(route)),
    Case("utf16_body", lambda route: _valid(route).decode().encode("utf-16")),
    # Not the document the route wants.
    Case("empty", b""),
    Case("whitespace", b" \r\n\t "),
    Case("null", b"null"),
    Case("array", b"[]"),
    Case("string", b'"str"'),
    Case("number", b"5"),
    Case("true", b"true"),
    Case("empty_object", b"{}"),
    Case("text_is_number", b'{"text": 5}'),
    Case("messages_is_string", b'{"messages": "x"}'),
    Case("trailing_garbage", lambda route: _valid(route) + b"garbage"),
    Case("two_documents", lambda route: _valid(route) * 2),
    Case("truncated", lambda route: _valid(route)[:-1]),
    Case("duplicate_key_object", b'{"text": "a", "text": {"a": 1}}'),
    # Size: over the limit by Content-Length (the body is sent too, and may be cut off once
    # the 413 is out), announced with Expect: 100-continue (nothing sent), and chunked.
    Case("oversize", lambda route: b" " * (route.limit + 1)),
    Case("oversize_expect_continue", lambda route: b" " * (route.limit + 1), framing="expect"),
    Case("chunked_oversize", lambda route: b" " * (route.limit + 64 * KB), framing="chunked"),
    Case("chunked_deep_array", b"[" * 1500 + b"]" * 1500, framing="chunked"),
    # Content-Length that is not one number (Tornado's own parser would refuse these later).
    Case("length_abc", b"{}", framing="declared", content_length="abc"),
    Case("length_negative", b"{}", framing="declared", content_length="-1"),
    Case("length_plus", b"{}", framing="declared", content_length="+2"),
    Case("length_list", b"{}", framing="declared", content_length="2, 3"),
    Case("length_hex", b"{}", framing="declared", content_length="0x2"),
    Case("length_huge", b"{}", framing="declared", content_length="9" * 40),
    # No length at all: the body is not part of the request (empty), whatever follows it.
    Case("length_absent", lambda route: _valid(route), framing="absent"),
    # A length the body never reaches, then the client's half of the connection closes.
    Case("length_exceeds_body", lambda route: _valid(route), framing="short"),
    # Framing Tornado's parser refuses before any handler (see the module docstring).
    Case("length_and_chunked", lambda route: _valid(route), framing="conflicting"),
    Case("transfer_encoding_gzip", lambda route: _valid(route), framing="unknown_coding"),
    # Form bodies where pusher-js sends them.
    Case("form_bad_socket_id", b"socket_id=%ff%fe&channel_name=private-user-ada", headers=FORM),
    Case("form_nul", b"socket_id=1.2%00&channel_name=private-user-ada%00", headers=FORM),
    Case("form_empty_pairs", b"&&=&==&=x", headers=FORM, only=AUTH_ROUTES),
    Case("form_bad_percent", b"socket_id=%zz&channel_name=%", headers=FORM),
    Case("form_raw_bytes", b"\xff\xfe=\xff&socket_id=\xff", headers=FORM),
    Case(
        "form_long_channel",
        b"socket_id=1.2&channel_name=private-" + b"a" * 3900,
        headers=FORM,
        only=frozenset({"pusher_auth"}),
    ),
    Case(
        "form_json_looking",
        b'socket_id={"a":1}&channel_name=[[[[[[',
        headers=FORM,
        only=frozenset({"pusher_auth"}),
    ),
]


def _type_confusions() -> list[Case]:
    """Each typed field of each route's valid body, replaced by a value of another type."""
    cases = []
    for route in ROUTES:
        for key in route.typed:
            assert route.valid is not None
            for label, value in (
                ("int", 5), ("float", 1.5), ("bool", True), ("null", None),
                ("list", []), ("object", {}), ("nested_list", [[{"a": [1]}]]),
            ):  # fmt: skip
                if label == "list" and isinstance(route.valid[key], list):
                    continue  # [] is a list: "messages_empty" and "batch_empty" cover it
                cases.append(
                    Case(
                        f"{key}_is_{label}",
                        lambda r, key=key, value=value: _valid(r, **{key: value}),
                        only=frozenset({route.name}),
                    )
                )
    return cases


#: Bodies only one route understands, wrong deeper down: (route, case, body, status).
DEEPER = [
    ("ai_chat", "message_is_int", {"messages": [5]}, 400),
    ("ai_chat", "role_is_object", {"messages": [{"role": {"x": 1}, "content": "hi"}]}, 400),
    ("ai_chat", "role_is_list", {"messages": [{"role": ["user"], "content": "hi"}]}, 400),
    ("ai_chat", "content_is_list", {"messages": [{"role": "user", "content": ["hi"]}]}, 400),
    ("ai_chat", "content_missing", {"messages": [{"role": "user"}]}, 400),
    ("ai_chat", "message_extra_field", {"messages": [{"role": "user", "content": "hi", "x": 1}]}, 400),
    ("ai_chat", "messages_empty", {"messages": []}, 400),
    ("apps_events", "channel_and_channels", {**EVENT, "channels": ["a"]}, 400),
    ("apps_events", "channels_is_string", {"name": "e", "data": "x", "channels": "a"}, 400),
    ("apps_events", "channels_of_int", {"name": "e", "data": "x", "channels": [5, {}]}, 400),
    ("apps_events", "channels_101", {"name": "e", "data": "x", "channels": ["a"] * 101}, 400),
    ("apps_events", "socket_id_is_int", {**EVENT, "socket_id": 5}, 400),
    ("apps_events", "socket_id_malformed", {**EVENT, "socket_id": "1.2.3"}, 400),
    ("apps_events", "info_is_int", {**EVENT, "info": 5}, 400),
    ("apps_events", "info_unknown", {**EVENT, "info": "nope"}, 400),
    ("apps_events", "data_over_10k", {**EVENT, "data": "x" * 11000}, 413),
    ("apps_batch_events", "batch_of_int", {"batch": [5]}, 400),
    ("apps_batch_events", "batch_event_without_channel", {"batch": [{"name": "e", "data": "x"}]}, 400),
    ("apps_batch_events", "batch_data_is_object", {"batch": [{**EVENT, "data": {"a": 1}}]}, 400),
    ("apps_batch_events", "batch_of_11", {"batch": [EVENT] * 11}, 400),
    ("apps_batch_events", "batch_is_object", {"batch": {"0": EVENT}}, 400),
    ("apps_batch_events", "batch_valid_then_bad", {"batch": [EVENT, 5]}, 400),
    ("notify", "link_javascript", {"title": "t", "link": "javascript:alert(1)"}, 400),
    ("notify", "link_is_int", {"title": "t", "link": 5}, 400),
    ("notify", "data_over_4k", {"title": "t", "data": {"a": "x" * 5000}}, 400),
    ("notify", "user_with_space", {"title": "t", "user": "a b"}, 400),
    ("publish", "channel_too_long", {"channel": "private-" + "x" * 300, "event": "e"}, 400),
]  # fmt: skip


CORPUS += _type_confusions()
CORPUS += [
    Case(name, json.dumps(body).encode(), only=frozenset({route}), status=status)
    for route, name, body, status in DEEPER
]
# A field the route does not know, next to a valid body: strict routes refuse it.
CORPUS.append(Case("unknown_field", lambda route: _valid(route, zzz_unknown=1)))


#: In an expected set: the connection may end without an answer (an unfinished request).
CLOSED = 0
#: Framing Tornado's HTTP/1 parser refuses with a bare 400 before any handler runs.
TORNADO_FRAMING = ("conflicting", "unknown_coding")


def expected(route: Route, case: Case, *, authenticated: bool) -> set[int]:
    """The status (or statuses) the route must answer ``case`` with."""
    body = case.bytes_for(route)
    if case.framing in TORNADO_FRAMING:
        # Tornado checks the framing as it starts on the body: a refused caller hears first.
        return {400} if authenticated else {400, 401}
    if case.framing == "short":
        # The body never ends: nothing can be judged, and the server must not wait forever.
        return {CLOSED, 400} if authenticated else {CLOSED, 401}
    if case.framing == "declared":
        assert case.content_length is not None
        if case.content_length.isdigit():  # a number, just a huge one
            return {413} if authenticated else {401, 413}
        # Not a number: refused as such, before identity (unauthenticated: 401 first).
        return {400} if authenticated else {400, 401}
    declared = len(body) if case.framing in ("length", "expect") else None
    if case.framing == "chunked":
        declared = None
    oversize = declared is not None and declared > route.limit
    streamed_oversize = case.framing == "chunked" and len(body) > route.limit
    if not authenticated:
        # Refused before the body is read: 401; over the limit, 413 may come first (a signed
        # route can only check its signature once the body is in).
        if oversize or streamed_oversize:
            return {401, 413}
        return {401}
    if oversize or streamed_oversize:
        return {413}
    if route.valid is None:
        return {200}  # no body is read: a malformed one is ignored like an absent one
    if case.name == "unknown_field" and not route.strict:
        return {200}
    if case.framing == "absent":
        return {400}  # no length: an empty body
    return {case.status}


def cases_for(route: Route) -> list[Case]:
    return [case for case in CORPUS if not case.only or route.name in case.only]


# -- the servers and requests ------------------------------------------------------------


@pytest.fixture
async def hostile_server(start_server) -> Callable[..., Any]:
    """``await hostile_server(login=False)``: a server with a store and known credentials."""

    async def start(*, login: bool = False) -> DashboardServer:
        return await start_server(
            token=TOKEN,
            app_secret=SECRET,
            ai=DemoProvider(delay=0),
            basic_auth="a-password-for-everyone" if login else None,
            # One user sends every case of a route: the per-user message limit is not what
            # this test is about (tests/server/test_rooms_api.py is).
            limits=Limits(messages_burst=100_000),
        )

    return start


async def _path_for(server: DashboardServer, route: Route) -> str:
    """The route's path, with a fresh message of ``ada`` and a notification for her."""
    path = route.path
    if "{message}" in path:
        assert server.ctx.chat is not None
        message = await server.ctx.chat.post("lobby", "ada", "Ada", "original")
        path = path.replace("{message}", str(message.id))
    if "{notification}" in path:
        assert server.ctx.notifications is not None
        notification = await server.ctx.notifications.notify("ada", "Unread")
        path = path.replace("{notification}", str(notification.id))
    return path


def _credentials(
    server: DashboardServer, route: Route, path: str, body: bytes
) -> tuple[str, list[tuple[str, str]]]:
    """``(path with query, headers)`` carrying the credential the route takes."""
    secret = server.ctx.app.secret
    if route.credential == "publisher":
        return path, [("Authorization", f"Bearer {server.token}")]
    if route.credential == "user":
        return path, [("Authorization", f"Bearer {issue_user_token(secret, 'ada', 'Ada')}")]
    if route.credential == "guest":
        cookie = issue_user_token(
            secret, GUEST_ID, "Guest", purpose=IDENTITY_COOKIE_PURPOSE, guest=True
        )
        return path, [("Cookie", f"{IDENTITY_COOKIE}={cookie}")]
    app = server.ctx.app
    params = signed_params(app.key, app.secret, route.method, path, {}, body, time.time())
    query = "&".join(f"{key}={value}" for key, value in params.items())
    return f"{path}?{query}", []


async def send(server: DashboardServer, route: Route, case: Case, *, authenticated: bool) -> Reply:
    path = await _path_for(server, route)
    body = case.bytes_for(route)
    headers: list[tuple[str, str]] = list(case.headers)
    if authenticated:
        # Without a length the server reads no body, so an empty one is what gets signed.
        signed = b"" if case.framing == "absent" else body
        path, credential = _credentials(server, route, path, signed)
        headers += credential
    parts: list[bytes] | bytes = body
    if case.framing in ("length", "expect"):
        headers.append(("Content-Length", str(len(body))))
        # Sent in 64 KB pieces while the answer is read: a server that refuses by the
        # length answers before most of it is sent, then closes.
        parts = [body[i : i + 64 * KB] for i in range(0, len(body), 64 * KB)]
    elif case.framing == "chunked":
        headers.append(("Transfer-Encoding", "chunked"))
        parts = chunked(body)
    elif case.framing == "declared":
        assert case.content_length is not None
        headers.append(("Content-Length", case.content_length))
    elif case.framing == "conflicting":  # the shape of request smuggling
        headers += [("Content-Length", str(len(body))), ("Transfer-Encoding", "chunked")]
        parts = chunked(body)
    elif case.framing == "unknown_coding":
        headers.append(("Transfer-Encoding", "gzip"))
    elif case.framing == "short":
        headers.append(("Content-Length", str(len(body) + 100)))
    if case.framing == "expect":
        headers.append(("Expect", "100-continue"))
        parts = []  # sent only after a 100 Continue, which must not come
    head = request_head(route.method, path, headers)
    return await exchange(server.port, head, parts, half_close=case.framing == "short")


def check(reply: Reply, statuses: set[int], case: Case | None = None) -> str | None:
    """``None`` when ``reply`` is one of ``statuses`` with the JSON error body; else why not."""
    framing = case.framing if case is not None else "length"
    if reply.status is None:
        if CLOSED in statuses and reply.outcome == "dropped":
            return None
        return f"no answer ({reply.outcome})"
    if reply.status not in statuses:
        return f"expected {sorted(statuses)}, got {reply}"
    if framing == "expect" and reply.informational:
        return f"sent {reply.informational} Continue for a body it refuses"
    if reply.framing_rejection and framing in TORNADO_FRAMING:
        return None  # Tornado's parser, before any handler: no JSON to be had
    if reply.status >= 400:
        try:
            payload = reply.json()
        except ValueError:
            return f"{reply.status} without a JSON body: {reply.body[:120]!r}"
        if not (isinstance(payload, dict) and set(payload) == {"error", "message"}):
            return f"{reply.status} body is not {{error, message}}: {payload!r}"
        if not reply.headers.get("content-type", "").startswith("application/json"):
            return f"{reply.status} is labelled {reply.headers.get('content-type')!r}"
    return None


async def _alive(server: DashboardServer) -> None:
    async with (
        aiohttp.ClientSession(headers={"Authorization": f"Bearer {server.token}"}) as http,
        http.get(f"{server.url}/api/health", timeout=aiohttp.ClientTimeout(total=5)) as response,
    ):
        assert response.status == 200


async def _valid_request_succeeds(server: DashboardServer, route: Route) -> None:
    """The route's valid body with the same credentials gets a 2xx: the corpus is judged by
    the body parser, not refused for its caller."""
    body = _valid(route) if route.valid is not None else b""
    case = Case("valid", body)
    reply = await send(server, route, case, authenticated=True)
    assert reply.status is not None and 200 <= reply.status < 300, f"{route.name}: {reply}"


@pytest.mark.parametrize("route", ROUTES, ids=lambda route: route.name)
async def test_hostile_bodies_with_valid_credentials_get_the_exact_4xx(hostile_server, route):
    server = await hostile_server()
    await _valid_request_succeeds(server, route)
    failures = []
    for case in cases_for(route):
        reply = await send(server, route, case, authenticated=True)
        problem = check(reply, expected(route, case, authenticated=True), case)
        if problem is not None:
            failures.append(f"{route.name} {case.name}: {problem}")
    await _alive(server)
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize(
    "mode, route",
    [("login", route) for route in ROUTES]
    # Without a login, POST /api/identity is open by design: anyone may pick a name.
    + [("guest", route) for route in ROUTES if route.name != "identity"],
    ids=lambda value: getattr(value, "name", value),
)
async def test_hostile_bodies_without_credentials_get_401(hostile_server, mode, route):
    server = await hostile_server(login=mode == "login")
    failures = []
    for case in cases_for(route):
        reply = await send(server, route, case, authenticated=False)
        problem = check(reply, expected(route, case, authenticated=False), case)
        if problem is not None:
            failures.append(f"{mode} {route.name} {case.name}: {problem}")
    await _alive(server)
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("authenticated", [True, False], ids=["user", "anonymous"])
@pytest.mark.parametrize("digit", ["\u00b2", "\u00b9", "1\u00b3"])
async def test_a_content_length_of_superscript_digits_is_a_400(
    hostile_server, authenticated, digit
):
    # str.isdigit() takes "²", which int() then refuses: it once was a 500.
    server = await hostile_server()
    route = BY_NAME["room_post"]
    case = Case("length_superscript", b"{}", framing="declared", content_length=digit)
    reply = await send(server, route, case, authenticated=authenticated)
    assert check(reply, {400} if authenticated else {400, 401}) is None, str(reply)


async def test_an_unserved_method_is_refused_before_its_body(hostile_server):
    # The GET-only Pusher API routes once declared POST: a body was invited, then a 405.
    server = await hostile_server()
    head = request_head(
        "POST", "/apps/1/channels", [("Content-Length", "200000"), ("Expect", "100-continue")]
    )
    reply = await exchange(server.port, head, deadline=2.0)
    assert reply.informational == [], "the server asked for a body it has no use for"
    assert reply.status == 405 and reply.headers.get("allow") == "GET", str(reply)


# -- memory: refused bodies are never read -----------------------------------------------

MB = 1024 * 1024


@contextlib.asynccontextmanager
async def serve_process(tmp_path: Path) -> AsyncIterator[tuple[int, psutil.Process]]:
    """``python -m dashboard serve`` as a user runs it; yields its port and its process."""
    env = {"DASHBOARD_TOKEN": TOKEN, "DASHBOARD_APP_SECRET": SECRET}
    args = ("--db", str(tmp_path / "x.sqlite3"), "--no-demo")
    async with dashboard_process(*args, env=env) as served:
        yield served.port, psutil.Process(served.pid)


class PeakRSS:
    """Samples a process's resident memory every few milliseconds; remembers the highest."""

    def __init__(self, process: psutil.Process) -> None:
        self.process = process
        self.peak = process.memory_info().rss
        self._task: asyncio.Future[None] | None = None

    async def _sample(self) -> None:
        while True:
            self.peak = max(self.peak, self.process.memory_info().rss)
            await asyncio.sleep(0.005)

    def __enter__(self) -> PeakRSS:
        self._task = asyncio.ensure_future(self._sample())
        return self

    def __exit__(self, *exc_info: object) -> None:
        assert self._task is not None
        self._task.cancel()
        self.peak = max(self.peak, self.process.memory_info().rss)


def huge_post(path: str, declared: int, headers: list[tuple[str, str]] = ()) -> bytes:
    return request_head("POST", path, [*headers, ("Content-Length", str(declared))])


async def flood(port: int, head: bytes) -> Reply:
    """Send ``head``, then 64 KB chunks until the server closes the connection, 5 s pass or
    the declared 90 MB are out: whatever comes first."""
    chunk = b"x" * (64 * KB)
    return await exchange(
        port,
        head,
        (chunk for _ in range(90 * MB // len(chunk))),
        keep_sending=True,
        send_for=5.0,
        deadline=10.0,
    )


async def test_huge_bodies_are_refused_unread_and_memory_stays_flat(tmp_path):
    token = issue_user_token(SECRET, "ada", "Ada")
    path = "/api/rooms/lobby/messages"
    async with serve_process(tmp_path) as (port, process):
        # Warm up the paths under test, so the baseline includes what they allocate once.
        for authorization in ([], [("Authorization", f"Bearer {token}")]):
            warm = await exchange(port, huge_post(path, 90 * MB, authorization))
            assert warm.status in (401, 413)
        baseline = process.memory_info().rss
        with PeakRSS(process) as rss:
            replies = await asyncio.gather(
                *(flood(port, huge_post(path, 90 * MB)) for _ in range(4))
            )
            authenticated = await flood(
                port, huge_post(path, 50 * MB, [("Authorization", f"Bearer {token}")])
            )
        for reply in replies:
            # Without Expect: 100-continue the client sends on; once the 401 is out the
            # server closes the connection instead of reading 90 MB it will not use.
            assert check(reply, {401}) is None, str(reply)
            assert reply.closed, "the server kept reading a refused body"
        assert check(authenticated, {413}) is None, str(authenticated)
        assert authenticated.closed, "the server kept reading a body over the limit"
        growth = rss.peak - baseline
        assert growth < 10 * MB, f"RSS grew by {growth / MB:.1f} MB"


# -- WebSocket close codes (RFC 6455) ----------------------------------------------------


async def _pusher_socket(server: DashboardServer) -> RawWebSocket:
    ws = await RawWebSocket.connect(server.port, f"/app/{server.ctx.app.key}?protocol=7")
    opcode, payload = await ws.recv()
    assert opcode == TEXT
    assert json.loads(payload)["event"] == "pusher:connection_established"
    return ws


PING = json.dumps({"event": "pusher:ping", "data": {}}).encode()


async def _closed_with(ws: RawWebSocket) -> int:
    """Read to the server's Close frame (no data frame may come first: failing the
    connection stops the application seeing the frame); answer it; wait for the TCP close."""
    opcode, payload = await ws.recv()
    assert opcode == CLOSE, f"expected a Close frame, got opcode {opcode}: {payload!r}"
    code = int.from_bytes(payload[:2], "big")
    await ws.send(ws_frame(CLOSE, payload[:2]))
    assert await asyncio.wait_for(ws.reader.read(), 5) == b""  # the server ends the TCP
    return code


@pytest.mark.parametrize(
    "frame, code",
    [
        pytest.param(ws_frame(TEXT, PING, masked=False), 1002, id="unmasked_text_1002"),
        pytest.param(ws_frame(TEXT, b"\xff\xfe"), 1007, id="invalid_utf8_1007"),
        pytest.param(ws_frame(TEXT, b'{"event": "pusher:ping", "\xed\xa0\x80": 1}'), 1007,
                     id="utf8_surrogate_1007"),
    ],
)  # fmt: skip
async def test_the_pusher_socket_fails_bad_frames_with_the_rfc_6455_code(
    hostile_server, frame, code
):
    server = await hostile_server()
    ws = await _pusher_socket(server)
    try:
        await ws.send(frame)
        assert await _closed_with(ws) == code
    finally:
        await ws.close()


async def test_a_masked_valid_frame_is_answered(hostile_server):
    server = await hostile_server()
    ws = await _pusher_socket(server)
    try:
        await ws.send(ws_frame(TEXT, PING))
        opcode, payload = await ws.recv()
        assert opcode == TEXT and json.loads(payload) == {"event": "pusher:pong", "data": {}}
    finally:
        await ws.close()


# -- edges a black-box probe found -------------------------------------------------------


async def test_edge_inputs_are_clear_refusals_not_500s(start_server):
    server = await start_server(basic_auth="a-password-for-everyone")
    async with aiohttp.ClientSession() as http:
        # A resume offset of 5000 digits: int() refuses it, and slowly.
        huge = f"{server.hub.epoch}|alerts:{'9' * 5000}"
        token = issue_user_token(server.ctx.app.secret, "ada")
        auth = {"Authorization": f"Bearer {token}"}
        async with http.get(
            f"{server.url}/api/events?channel=alerts", headers={**auth, "Last-Event-ID": huge}
        ) as response:
            assert (response.status, (await response.json())["error"]) == (
                400,
                "invalid_last_event_id",
            )
        # An Origin that urllib cannot split, on an API route, Panel's login and the socket.
        bad_origin = {"Origin": "http://[zz"}
        for path, data in (("/api/identity", b"{}"), ("/login", b"username=a&password=b")):
            async with http.post(server.url + path, data=data, headers=bad_origin) as response:
                assert response.status == 403, path
        url = f"ws://127.0.0.1:{server.port}/app/{server.ctx.app.key}?protocol=7"
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await http.ws_connect(url, headers={**auth, **bad_origin})
        assert refused.value.status == 403
        # A protocol version of 5000 digits: the Pusher error 4007, not a crash (1006).
        url = f"ws://127.0.0.1:{server.port}/app/{server.ctx.app.key}?protocol={'7' * 5000}"
        async with http.ws_connect(url, headers=auth) as ws:
            frame = json.loads(await ws.receive_str(timeout=5))
            assert (frame["event"], frame["data"]["code"]) == ("pusher:error", 4007)
