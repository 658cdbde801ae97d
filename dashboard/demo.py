"""A built-in publisher of realistic-looking events, so a fresh dashboard has something to show.

Channels and payloads:

- ``metrics``: ``cpu`` (percent) and ``latency`` (milliseconds) per service, every ``interval``
  seconds, as random walks: ``{"service", "value", "unit"}``.
- ``deploys``: ``deploy`` every ``deploy_interval`` seconds, first ``started`` then, a few
  seconds later, ``succeeded`` or ``failed``: ``{"service", "version", "status", "author"}``.
- ``alerts``: ``alert`` now and then, and whenever latency spikes:
  ``{"severity", "service", "message"}``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from typing import Any

import param

from .core.errors import BackendUnavailable
from .hub.hub import Hub

logger = logging.getLogger(__name__)

CHANNELS = ("metrics", "deploys", "alerts")
SERVICES = ("api", "worker", "db")
AUTHORS = ("alice", "bob", "chen", "dana", "emeka")
_ALERT_MESSAGES = (
    "error rate above 2% for 5 minutes",
    "disk usage at 85%",
    "queue depth growing",
    "certificate expires in 7 days",
    "replica lag above 10 s",
)
#: Latency above which a critical alert fires (milliseconds).
LATENCY_ALERT_MS = 450.0


class DemoSource(param.Parameterized):
    """Publishes demo events on ``metrics``, ``deploys`` and ``alerts`` through a hub.

    Every tick sleeps ``interval`` seconds, so the rate is bounded; ``max_events`` bounds the
    total, for tests. Seed it for a reproducible sequence.

    Usage::

        demo = DemoSource(interval=0.5, seed=1)
        await demo.start(hub)
        ...
        await demo.stop()
    """

    interval = param.Number(
        default=1.0, bounds=(0.001, 3600.0), doc="Seconds between two rounds of metrics."
    )
    deploy_interval = param.Range(
        default=(10.0, 20.0), bounds=(0.0, 86400.0), doc="Seconds between deploys, drawn uniformly."
    )
    deploy_duration = param.Range(
        default=(2.0, 6.0), bounds=(0.0, 86400.0), doc="Seconds from a deploy's start to its end."
    )
    alert_probability = param.Number(
        default=0.03, bounds=(0.0, 1.0), doc="Chance per tick of a random warning alert."
    )
    failure_probability = param.Number(
        default=0.15, bounds=(0.0, 1.0), doc="Chance that a deploy fails."
    )
    seed = param.Integer(default=None, allow_None=True, doc="Random seed; None for a random one.")
    max_events = param.Integer(
        default=None, allow_None=True, bounds=(0, None), doc="Stop after this many events."
    )
    published = param.Integer(default=0, bounds=(0, None), doc="Events published so far.")

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self._rng = random.Random(self.seed)
        self._cpu = {service: self._rng.uniform(15, 45) for service in SERVICES}
        self._latency = {service: self._rng.uniform(40, 120) for service in SERVICES}
        self._versions = {service: [1, self._rng.randint(0, 9), 0] for service in SERVICES}
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def start(self, hub: Hub) -> None:
        """Start publishing to ``hub`` on the running loop. Idempotent while running."""
        if self.running:
            return
        self._task = asyncio.get_running_loop().create_task(self._run(hub), name="dashboard-demo")

    async def stop(self) -> None:
        """Stop publishing; returns once the publishing task has ended."""
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def wait(self) -> None:
        """Wait until publishing ends by itself (after ``max_events``)."""
        if self._task is not None:
            await asyncio.shield(self._task)

    # -- what is published -----------------------------------------------------------------

    def metrics(self) -> list[tuple[str, str, dict[str, Any]]]:
        """One round of metrics: a random-walk step of cpu and latency for every service."""
        rng = self._rng
        out: list[tuple[str, str, dict[str, Any]]] = []
        for service in SERVICES:
            cpu = self._cpu[service] + rng.gauss(0, 4) + (35 - self._cpu[service]) * 0.05
            self._cpu[service] = cpu = min(100.0, max(0.0, cpu))
            latency = self._latency[service] * rng.lognormvariate(0, 0.08)
            latency += (90 - latency) * 0.1
            if rng.random() < 0.01:
                latency *= rng.uniform(4, 8)  # the occasional spike
            self._latency[service] = latency = min(5000.0, max(1.0, latency))
            out.append(
                ("metrics", "cpu", {"service": service, "value": round(cpu, 1), "unit": "%"})
            )
            out.append(
                (
                    "metrics",
                    "latency",
                    {"service": service, "value": round(latency, 1), "unit": "ms"},
                )
            )
            if latency > LATENCY_ALERT_MS:
                message = f"p95 latency {latency:.0f} ms above {LATENCY_ALERT_MS:.0f} ms"
                out.append(("alerts", "alert", self._alert("critical", service, message)))
        if rng.random() < self.alert_probability:
            service = rng.choice(SERVICES)
            out.append(
                ("alerts", "alert", self._alert("warning", service, rng.choice(_ALERT_MESSAGES)))
            )
        return out

    def deploy_started(self, service: str) -> dict[str, Any]:
        version = self._versions[service]
        version[2] += 1
        return {
            "service": service,
            "version": ".".join(map(str, version)),
            "status": "started",
            "author": self._rng.choice(AUTHORS),
        }

    def deploy_finished(self, started: dict[str, Any]) -> dict[str, Any]:
        failed = self._rng.random() < self.failure_probability
        return {**started, "status": "failed" if failed else "succeeded"}

    @staticmethod
    def _alert(severity: str, service: str, message: str) -> dict[str, Any]:
        return {"severity": severity, "service": service, "message": message}

    # -- the loop ----------------------------------------------------------------------------

    async def _run(self, hub: Hub) -> None:
        loop = asyncio.get_running_loop()
        next_deploy = loop.time() + self._rng.uniform(*self.deploy_interval)
        running_deploy: tuple[float, dict[str, Any]] | None = None
        while True:
            batch = self.metrics()
            now = loop.time()
            if running_deploy is not None and now >= running_deploy[0]:
                batch.append(("deploys", "deploy", self.deploy_finished(running_deploy[1])))
                running_deploy = None
            if running_deploy is None and now >= next_deploy:
                started = self.deploy_started(self._rng.choice(SERVICES))
                batch.append(("deploys", "deploy", started))
                running_deploy = (now + self._rng.uniform(*self.deploy_duration), started)
                next_deploy = now + self._rng.uniform(*self.deploy_interval)
            for channel, event, data in batch:
                if self.max_events is not None and self.published >= self.max_events:
                    return
                try:
                    await hub.publish(channel, event, data)
                except BackendUnavailable:
                    continue  # Redis is down (the backend says so once): skip, keep going
                except Exception:
                    logger.exception("demo publish failed; stopping")
                    return
                self.published += 1
            await asyncio.sleep(self.interval)
