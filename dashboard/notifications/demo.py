"""Turns the demo's worst events into broadcast notifications, so a fresh dashboard shows some.

:class:`DemoNotifier` follows the ``alerts`` and ``deploys`` channels that
:class:`~dashboard.demo.DemoSource` publishes on and raises a notification for everyone when a
critical (or error) alert fires or a deploy fails, at most one per ``min_interval`` seconds:
the rest are dropped, not queued, so the inbox grows by at most 120 a hour.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from ..core.events import Event
from ..hub import Hub, Subscription
from .service import NotificationService

log = logging.getLogger("dashboard.notifications")

#: Alert severities worth a notification.
SEVERE = frozenset({"critical", "error"})


def demo_notification(event: Event) -> dict[str, Any] | None:
    """The notification (``notify`` keyword arguments) an ``alerts``/``deploys`` event earns,
    or ``None`` for one that does not deserve it."""
    data = event.data if isinstance(event.data, dict) else {}
    service = str(data.get("service", "?"))
    if event.channel == "alerts" and event.name == "alert" and data.get("severity") in SEVERE:
        return {
            "title": f"{str(data['severity']).capitalize()} alert on {service}",
            "message": str(data.get("message", ""))[:2000],
            "type": "error",
            "link": "/",
            "data": {"source": "demo", "severity": data["severity"], "service": service},
        }
    if event.channel == "deploys" and data.get("status") == "failed":
        version = str(data.get("version", "?"))
        return {
            "title": f"Deploy of {service} {version} failed",
            "message": f"started by {data.get('author', 'someone')}; the previous version "
            "keeps serving",
            "type": "warning",
            "link": "/",
            "data": {"source": "demo", "service": service, "version": version},
        }
    return None


class DemoNotifier:
    """Broadcasts a notification for severe demo events, at most one per ``min_interval`` s.

    Args:
        hub: where the demo publishes.
        service: where notifications go.
        min_interval: seconds between two notifications at least.

    Usage::

        notifier = DemoNotifier(hub, server.ctx.notifications)
        await notifier.start()
        ...
        await notifier.stop()
    """

    def __init__(
        self, hub: Hub, service: NotificationService, *, min_interval: float = 30.0
    ) -> None:
        self.hub = hub
        self.service = service
        self.min_interval = min_interval
        self.sent = 0
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Subscribe, then follow the demo channels in a task. Idempotent while running."""
        if self._task is not None and not self._task.done():
            return
        # The queue is small on purpose: a slow store makes this drop events, never grow.
        # Not counted: a Pusher client asking who listens on alerts must not see the server.
        subscription = await self.hub.subscribe(
            ["alerts", "deploys"], queue_size=100, counted=False
        )
        self._task = asyncio.get_running_loop().create_task(
            self._run(subscription), name="dashboard-demo-notifier"
        )

    async def stop(self) -> None:
        """Stop following; returns once the task has ended."""
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self, subscription: Subscription) -> None:
        last = float("-inf")
        async with subscription:
            async for event in subscription:
                now = time.monotonic()
                if now - last < self.min_interval:
                    continue
                kwargs = demo_notification(event)
                if kwargs is None:
                    continue
                last = now
                try:
                    await self.service.notify("*", **kwargs)
                except Exception:
                    # The demo must never take the server down; the next event may work.
                    log.exception("demo notification failed")
                    continue
                self.sent += 1
