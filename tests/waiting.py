"""Polling for a condition that another task or process makes true, with a deadline."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

WAIT = 5.0  # seconds: generous for a loaded CI machine, short enough to fail fast


async def until(predicate: Callable[[], object], timeout: float = WAIT) -> None:
    """Return once ``predicate()`` is true; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)
