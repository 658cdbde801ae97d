"""The store's part of /api/health: cached a second, one check at a time, never a 500."""

from __future__ import annotations

import asyncio
import time

from dashboard.server.store_health import StoreHealth
from dashboard.store import SQLiteStore


class CountingStore(SQLiteStore):
    """Counts pings; each takes ``delay`` seconds."""

    def __init__(self, *args, delay: float = 0.0, **kwargs):
        super().__init__(*args, **kwargs)
        self.pings = 0
        self.delay = delay

    async def ping(self) -> None:
        self.pings += 1
        await asyncio.sleep(self.delay)
        await super().ping()


async def test_concurrent_requests_share_one_check_and_a_report_is_reused_for_max_age(tmp_path):
    async with CountingStore(tmp_path / "db.sqlite3", delay=0.05) as store:
        health = StoreHealth(store, max_age=0.3)
        reports = await asyncio.gather(*(health.report() for _ in range(50)))
        assert store.pings == 1 and all(report["state"] == "ok" for report in reports)
        await health.report()
        assert store.pings == 1  # still fresh
        await asyncio.sleep(0.35)
        await health.report()
        await asyncio.sleep(0.1)  # the check it started
        assert store.pings == 2


async def test_only_the_first_caller_waits_for_a_slow_database(tmp_path):
    # A load balancer's probe gives up after a second or so: a database that does not
    # answer must not make /api/health slow.
    async with CountingStore(tmp_path / "db.sqlite3", delay=0.5) as store:
        health = StoreHealth(store, max_age=0.1)
        assert (await health.report())["state"] == "ok"  # the first waits for the first check
        await asyncio.sleep(0.15)
        for _ in range(20):
            started = time.monotonic()
            await health.report()
            assert time.monotonic() - started < 0.05
            await asyncio.sleep(0.05)
        assert 2 <= store.pings <= 4  # one check at a time, in the background


async def test_a_caller_that_goes_away_does_not_cancel_the_others_check(tmp_path):
    async with CountingStore(tmp_path / "db.sqlite3", delay=0.1) as store:
        health = StoreHealth(store)
        leaving = asyncio.ensure_future(health.report())
        staying = asyncio.ensure_future(health.report())
        await asyncio.sleep(0.02)
        leaving.cancel()
        assert (await staying)["state"] == "ok" and store.pings == 1


async def test_health_endpoint_reports_the_store(tmp_path, http):
    from dashboard.server import DashboardServer

    server = DashboardServer(port=0, store=SQLiteStore(tmp_path / "db.sqlite3"))
    await server.start()
    try:
        async with http.get(f"{server.url}/api/health") as response:
            body = await response.json()
        assert body["status"] == "ok"
        assert body["store"]["kind"] == "sqlite" and body["store"]["state"] == "ok"
        assert body["store"]["file"] == "db.sqlite3" and str(tmp_path) not in str(body)
    finally:
        await server.stop()
