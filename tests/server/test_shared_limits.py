"""Rate limits hold across processes sharing Redis: N servers allow what one would.

Two real servers (one event loop, two ports, one Redis prefix), one user alternating between
them: the burst is shared, the 429 names the limit, and another user is unaffected. With Redis
gone, each server limits on its own rather than failing the request. Login attempts and new
guest names, as an attacker spreading them over two ``dashboard serve`` processes would.
"""

from __future__ import annotations

import time
from urllib.parse import unquote_plus

import aiohttp
import pytest

from dashboard.ai import DemoProvider
from dashboard.core.user_tokens import issue_user_token
from dashboard.hub.redis_limits import RedisRateLimiter
from dashboard.server import DashboardServer
from dashboard.server.limits import Limits
from tests.processes import dashboard_process
from tests.redis_server import SHARED_REDIS_URL, delete_prefix, require_shared_redis, unique_prefix
from tests.redis_support import REDIS_URL

SECRET = "shared-limits-secret-0123456789"
ASK = {"messages": [{"role": "user", "content": "hello"}]}


@pytest.fixture
async def pair(redis_client, redis_prefix):
    limits = Limits(chat_per_minute=6, chat_burst=3)
    servers = [
        DashboardServer(
            port=0,
            app_secret=SECRET,
            limits=limits,
            ai=DemoProvider(delay=0),
            redis_url=REDIS_URL,
            redis_prefix=redis_prefix,
        )
        for _ in range(2)
    ]
    for server in servers:
        await server.start()
    yield servers
    for server in servers:
        await server.stop()


async def chat(http, server, user="ada"):
    token = issue_user_token(SECRET, user, user.title())
    headers = {"Authorization": f"Bearer {token}"}
    async with http.post(f"{server.url}/api/chat", json=ASK, headers=headers) as response:
        await response.read()
        return response.status, dict(response.headers)


async def test_the_chat_burst_is_shared_by_every_process(http, pair):
    a, b = pair
    statuses = [(await chat(http, server))[0] for server in (a, b, a)]
    assert statuses == [200, 200, 200]  # the burst of 3, spent on two processes
    status, headers = await chat(http, b)
    assert status == 429 and int(headers["Retry-After"]) >= 1
    assert (await chat(http, a))[0] == 429
    assert (await chat(http, b, "bob"))[0] == 200  # per user


async def test_gcra_allows_the_burst_then_the_rate(redis_client, redis_prefix):
    limiter = RedisRateLimiter(redis_client, "t", rate=10, burst=2, prefix=redis_prefix)
    assert [await limiter.acquire("k") for _ in range(2)] == [0, 0]
    wait = await limiter.acquire("k")
    assert 0 < wait <= 0.1  # one interval of 1/10 s at most
    assert await limiter.acquire("other") == 0
    key = f"{redis_prefix}limit:t:k"
    assert 0 < await redis_client.pttl(key) <= 300  # gone once the bucket is full again


async def test_without_redis_each_process_limits_on_its_own(redis_prefix):
    import redis.asyncio as aioredis

    unreachable = aioredis.Redis(port=1, socket_connect_timeout=0.2)
    limiter = RedisRateLimiter(unreachable, "t", rate=0.01, burst=2, prefix=redis_prefix)
    started = time.monotonic()
    assert [await limiter.acquire("k") for _ in range(2)] == [0, 0]
    assert await limiter.acquire("k") > 0
    assert time.monotonic() - started < 2  # one failed attempt, then local until it retries
    await unreachable.aclose()


async def test_password_guesses_and_new_guests_spread_over_processes_share_one_limit(tmp_path):
    await require_shared_redis()
    prefix = unique_prefix()
    users = tmp_path / "users.json"
    users.write_text('{"ada": "the-right-password"}')
    args = ("--no-demo", "--redis", SHARED_REDIS_URL, "--redis-prefix", prefix)
    limits = Limits()  # the defaults, which `dashboard serve` uses
    try:
        async with (
            dashboard_process(*args, "--basic-auth", str(users)) as a,
            dashboard_process(*args, "--basic-auth", str(users)) as b,
            aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http,
        ):
            refused = []
            for n in range(limits.login_burst + 1):
                server = (a, b)[n % 2]
                guess = {"username": "ada", "password": f"guess-{n}"}
                async with http.post(
                    f"{server.url}/login", data=guess, allow_redirects=False
                ) as response:
                    refused.append(
                        "Too many attempts" in unquote_plus(response.headers["Location"])
                    )
            # One process would allow the whole burst to each: 2 x login_burst guesses.
            assert refused == [False] * limits.login_burst + [True]
    finally:
        await delete_prefix(SHARED_REDIS_URL, prefix)
    prefix = unique_prefix()
    args = ("--no-demo", "--redis", SHARED_REDIS_URL, "--redis-prefix", prefix)
    try:
        async with (
            dashboard_process(*args) as a,
            dashboard_process(*args) as b,
            aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http,
        ):
            statuses = []
            for n in range(limits.new_guests_burst + 1):
                server = (a, b)[n % 2]
                async with http.post(
                    f"{server.url}/api/identity", json={"name": f"Guest {n}"}
                ) as response:
                    statuses.append(response.status)
            assert statuses == [200] * limits.new_guests_burst + [429]
    finally:
        await delete_prefix(SHARED_REDIS_URL, prefix)
