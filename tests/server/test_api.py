"""Publish and health endpoints, and bad input: always a 4xx JSON answer, server stays up."""

import pytest

from tests.cursors import cursor_for
from tests.server.helpers import TOKEN, publish


async def test_health_reports_counts(server, http):
    async with http.get(f"{server.url}/api/health") as response:
        body = await response.json()
    assert response.status == 200
    assert body["status"] == "ok" and body["version"]
    assert body["connections"] == {"sse": 0, "pusher": 0} and body["channels"] == 0
    assert body["uptime_s"] >= 0


async def test_publish_answers_with_event_id(server, http):
    status, body = await publish(http, server, "metrics", "cpu", {"value": 1})
    assert status == 200
    assert body["id"] == cursor_for(["metrics"], server.hub.epoch, {"metrics": 1})


@pytest.mark.parametrize(
    "body, status, code",
    [
        (b"{", 400, "invalid_json"),
        (b"\xff\xfe", 400, "invalid_json"),
        (b"[]", 400, "invalid_body"),
        (b'{"event": "x"}', 400, "missing_field"),
        (b'{"channel": "a", "event": "x", "extra": 1}', 400, "unknown_field"),
        (b'{"channel": "a b", "event": "x"}', 400, "invalid_channel"),
        (b'{"channel": "a", "event": ""}', 400, "invalid_event"),
        (b'{"channel": "a", "event": "connected"}', 400, "invalid_event"),
        (
            b'{"channel": "a", "event": "x", "data": "' + b"y" * 11000 + b'"}',
            413,
            "payload_too_large",
        ),
        (b"x" * 100_000, 413, "body_too_large"),
        # A lone surrogate is refused by the one JSON parser (dashboard/core/json_input.py).
        (b'{"channel": "a", "event": "x", "data": "\\ud800"}', 400, "invalid_json"),
    ],
)
async def test_bad_publish_gets_json_4xx(server, http, body, status, code):
    async with http.post(
        f"{server.url}/api/publish", data=body, headers={"Authorization": f"Bearer {TOKEN}"}
    ) as response:
        answer = await response.json()
    assert (response.status, answer["error"]) == (status, code)
    assert answer["message"]
    status, _ = await publish(http, server, "still", "up", 1)
    assert status == 200


@pytest.mark.parametrize("header", [None, "Bearer wrong", "Basic dGVzdA==", "Bearer "])
async def test_publish_requires_the_token(server, http, header):
    headers = {"Authorization": header} if header else {}
    async with http.post(
        f"{server.url}/api/publish", json={"channel": "a", "event": "x"}, headers=headers
    ) as response:
        assert response.status == 401
        assert (await response.json())["error"] == "unauthorized"


@pytest.mark.parametrize(
    "query, code",
    [
        ("", "missing_channel"),
        ("channel=", "invalid_channel"),
        ("channel=a%20b", "invalid_channel"),
        ("channel=" + "x" * 200, "invalid_channel"),
        ("channel=a&last_event_id=nonsense", "invalid_last_event_id"),
    ],
)
async def test_bad_stream_requests_get_json_400(server, http, query, code):
    async with http.get(f"{server.url}/api/events?{query}") as response:
        assert response.status == 400
        assert (await response.json())["error"] == code


async def test_unknown_api_route_is_json_404(server, http):
    async with http.get(f"{server.url}/api/nothing") as response:
        assert response.status == 404
        assert (await response.json())["error"] == "not_found"


@pytest.mark.parametrize(
    "channel, status, error",
    [
        # Identifying oneself could help with a private channel (a rule may allow it;
        # tests/server/test_channel_policy.py and test_notifications_api.py cover that).
        ("private-team", 401, "no_identity"),
        ("presence-room", 403, "forbidden"),  # presence needs the socket, whoever asks
        ("private-user-1", 401, "no_identity"),
        ("private-notifications", 401, "no_identity"),
    ],
)
async def test_private_channels_are_not_served_over_plain_sse(server, http, channel, status, error):
    async with http.get(f"{server.url}/api/events?channel=public&channel={channel}") as response:
        assert response.status == status
        assert (await response.json())["error"] == error


async def test_health_counts_pusher_sockets(server, http):
    url = f"ws://127.0.0.1:{server.port}/app/{server.ctx.app.key}?protocol=7"
    async with http.ws_connect(url) as ws:
        assert (await ws.receive_json(timeout=5))["event"] == "pusher:connection_established"
        async with http.get(f"{server.url}/api/health") as response:
            assert (await response.json())["connections"] == {"sse": 0, "pusher": 1}


@pytest.mark.parametrize(
    "method, path",
    [("POST", "/api/publish"), ("GET", "/api/identity"), ("POST", "/pusher/auth")],
)
async def test_a_401_says_how_to_authenticate(server, http, method, path):
    # Tornado clears headers set before an error; the challenge must survive that.
    async with http.request(method, f"{server.url}{path}", json={}) as response:
        assert response.status == 401
        assert response.headers["WWW-Authenticate"] == 'Bearer realm="dashboard"'
        assert (await response.json())["message"]
