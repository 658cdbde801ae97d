"""Small JSON endpoints: publish into the hub, and report health."""

from __future__ import annotations

import time

from ..core.errors import ValidationError
from ..core.event_stream import single_cursor
from .access import Access
from .base import ApiError, ApiHandler


class PublishHandler(ApiHandler):
    """``POST /api/publish`` ``{"channel", "event", "data"}`` with the bearer token.

    Answers ``{"id", "channel", "event", "offset"}``; ``id`` is the event's stream cursor, usable
    as a ``Last-Event-ID`` for a stream of that channel alone.
    """

    access = {"POST": Access.PUBLISHER}

    async def post(self) -> None:
        body = self.json_body()
        if not isinstance(body, dict):
            raise ApiError(
                400, "invalid_body", 'body must be an object {"channel", "event", "data"}'
            )
        missing = [key for key in ("channel", "event") if key not in body]
        if missing:
            raise ApiError(400, "missing_field", f"missing field(s): {', '.join(missing)}")
        unknown = set(body) - {"channel", "event", "data"}
        if unknown:
            raise ApiError(400, "unknown_field", f"unknown field(s): {', '.join(sorted(unknown))}")
        try:
            event = await self.ctx.hub.publish(body["channel"], body["event"], body.get("data"))
        except ValidationError as exc:
            raise self.validation_error(exc) from None
        self.write_json(
            {
                "id": single_cursor(event),
                "channel": event.channel,
                "event": event.name,
                "offset": event.offset,
            }
        )


class HealthHandler(ApiHandler):
    """``GET /api/health``: liveness plus the numbers an operator looks at first.

    Open to anyone without a login; with one, to any authenticated caller (the publish
    token suits a load balancer's check). ``status`` is ``"degraded"`` (still HTTP 200: the
    process serves its connected clients) while the hub's backend or the store is down;
    ``backend`` says which backend and its state (for Redis: since when, reconnects, the last
    error), ``store`` which database and its state (``{"kind", "state", "latency_ms" |
    "last_error", ...}``, checked at most once a second; ``null`` without a store), and
    ``presence`` whether this process hears the cluster's roster changes (its listener
    reconnects on its own schedule, so it does not decide ``status``).
    """

    access = {"GET": Access.OPEN}

    async def get(self) -> None:
        stats = self.ctx.hub.stats()
        backend = self.ctx.hub.backend.health()
        checked = self.ctx.store_health
        store = await checked.report() if checked is not None else None
        healthy = backend.get("state") == "ok" and (store is None or store["state"] == "ok")
        self.write_json(
            {
                "status": "ok" if healthy else "degraded",
                "backend": backend,
                "store": store,
                "presence": self.ctx.presence.health(),
                "version": self.ctx.version,
                "uptime_s": round(time.time() - self.ctx.hub.started_at, 3),
                "epoch": self.ctx.hub.epoch,
                "connections": {
                    "sse": len(self.ctx.streams),
                    "pusher": len(self.ctx.pusher_sockets),
                },
                "subscribers": stats.subscribers,
                "channels": stats.channels,
                "published": stats.published,
                "ai": (
                    {"provider": ai.name, "model": ai.model, "label": ai.label}
                    if (ai := self.ctx.ai) is not None
                    else None
                ),
            }
        )
