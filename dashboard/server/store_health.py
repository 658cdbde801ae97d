"""The store's part of ``GET /api/health``: answered at once, checked at most once a second.

``/api/health`` is open to anyone (a load balancer's check needs no login), so a request must
neither become a database round trip nor wait for one: a load balancer's probe typically
gives up after a second, and a database that does not answer takes the check's whole timeout.
So a caller gets the latest report at once, and a report older than ``max_age`` starts one
check in the background for the callers after it (stale-while-revalidate). Only the very
first report waits for its check; the server asks for it as it starts.
"""

from __future__ import annotations

import asyncio
import time

from ..store.base import Store


class StoreHealth:
    """:meth:`Store.health`, one check at a time, at most one per ``max_age`` seconds.

    Args:
        store: the server's store.
        max_age: seconds after which a report is checked again.
    """

    def __init__(self, store: Store, max_age: float = 1.0) -> None:
        self.store = store
        self.max_age = max_age
        self._report: dict[str, object] | None = None
        self._checked_at = 0.0
        self._check: asyncio.Future[dict[str, object]] | None = None

    async def report(self) -> dict[str, object]:
        """The store's health (see :meth:`Store.health`): the latest report, at most
        ``max_age`` seconds plus one check old."""
        stale = time.monotonic() - self._checked_at >= self.max_age
        if stale and self._check is None:
            self._check = asyncio.ensure_future(self._refresh())
        if self._report is not None:
            return self._report
        assert self._check is not None
        # Shielded: a caller that goes away must not cancel the others' check.
        return await asyncio.shield(self._check)

    async def _refresh(self) -> dict[str, object]:
        try:
            report = await self.store.health()
            self._report, self._checked_at = report, time.monotonic()
            return report
        finally:
            self._check = None
