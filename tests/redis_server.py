"""Redis for tests: the shared one (under a key prefix of the test's own), or a private
``redis-server`` that a test may kill, restart or flush without touching anyone else's data."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
from collections.abc import AsyncIterator

from tests.conftest import skip_or_fail
from tests.processes import free_port

#: The Redis that tests share, never flushed: each test uses (and deletes) its own prefix.
SHARED_REDIS_URL = os.environ.get("DASHBOARD_TEST_REDIS", "redis://127.0.0.1:6379/0")


def unique_prefix() -> str:
    return f"test-{secrets.token_hex(4)}:"


async def require_shared_redis() -> None:
    """Skip (fail under CI=true) when the shared Redis does not answer."""
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(SHARED_REDIS_URL)
    try:
        await client.ping()
    except Exception as exc:
        skip_or_fail(f"no Redis at {SHARED_REDIS_URL} ({exc}); set DASHBOARD_TEST_REDIS")
    finally:
        await client.aclose()


async def delete_prefix(url: str, prefix: str) -> None:
    """Delete every key under ``prefix`` (SCAN, never FLUSHDB: the database is shared)."""
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(url)
    try:
        keys = [key async for key in client.scan_iter(match=f"{prefix}*", count=1000)]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


class PrivateRedis:
    """A ``redis-server --save '' --appendonly no`` on a free loopback port, for this test only.

    :meth:`kill` is SIGKILL (everything it held is lost, as in a crash without persistence);
    :meth:`start` again brings it back, empty, on the same port.
    """

    def __init__(self) -> None:
        self.binary = shutil.which("redis-server")
        if self.binary is None:
            skip_or_fail("redis-server is not installed")
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        assert self.binary is not None
        self.process = await asyncio.create_subprocess_exec(
            self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "no", "--daemonize", "no", "--loglevel", "warning",
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        import redis.asyncio as aioredis

        client = aioredis.Redis.from_url(self.url)
        try:
            for _ in range(100):  # bounded: 5 s
                with contextlib.suppress(Exception):
                    if await client.ping():
                        return
                await asyncio.sleep(0.05)
            raise RuntimeError(f"redis-server on port {self.port} did not start")
        finally:
            await client.aclose()

    async def kill(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.kill()
            await asyncio.wait_for(self.process.wait(), 10)
        self.process = None


@contextlib.asynccontextmanager
async def private_redis() -> AsyncIterator[PrivateRedis]:
    server = PrivateRedis()
    await server.start()
    try:
        yield server
    finally:
        await server.kill()
