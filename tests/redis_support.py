"""Fixtures on the shared test Redis of :mod:`tests.redis_server`: a client, and a key prefix of
the test's own whose keys are deleted afterwards. Without a reachable Redis the test is skipped
on a laptop and fails under CI=true."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.redis_server import SHARED_REDIS_URL, delete_prefix, require_shared_redis, unique_prefix

REDIS_URL = SHARED_REDIS_URL


async def connect_or_skip() -> Any:
    """A ``redis.asyncio.Redis`` on the shared Redis, or skip (fail under CI) without one."""
    await require_shared_redis()
    import redis.asyncio as aioredis

    return aioredis.Redis.from_url(REDIS_URL)


@pytest.fixture
async def redis_client() -> AsyncIterator[Any]:
    client = await connect_or_skip()
    yield client
    await client.aclose()


@pytest.fixture
async def redis_prefix() -> AsyncIterator[str]:
    """A key prefix no other test uses; its keys are deleted after the test."""
    await require_shared_redis()
    prefix = unique_prefix()
    yield prefix
    await delete_prefix(REDIS_URL, prefix)
