"""WebSocket fan-out benchmark: one publisher, N Pusher WebSocket subscribers on loopback.

Run ``python benchmarks/ws_fanout.py --subscribers 1000 --seconds 10``. Its last line reads::

    ws_fanout: ours=<deliveries/s> baseline=<deliveries/s> ratio=<r> p99_ms=<ms> rss_kb_per_conn=<kb>

The method is ``fanout.py``'s, whose processes, phases and reports this script reuses; only the
transport differs:

* ours: the real :class:`~dashboard.server.serve.DashboardServer` (no page); clients connect
  to ``/app/{key}?protocol=7`` and send ``pusher:subscribe``, and events go through
  ``hub.publish`` to :mod:`dashboard.server.pusher_ws` exactly as in production.
* baseline: a bare Tornado application with one ``WebSocketHandler`` that answers the
  handshake with ``pusher:connection_established``, a subscribe with
  ``pusher_internal:subscription_succeeded``, keeps a set of subscribed connections and, per
  event, calls ``write_message(frame)`` on each (with TCP_NODELAY). The frame is built with
  :func:`dashboard.core.pusher_frames.hub_event_frame`, so both send the same bytes; neither
  compresses (the client asks for no extension). It has no hub, queues, history, activity
  checks or write bounds, and does not import Panel.

The clients (``_ws_load.py``) do the WebSocket handshake and framing by hand on the SSE
client's epoll loop. RSS per connection is (server RSS with N idle subscribed connections - RSS
before they connected) / N.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import time
from typing import Any

import fanout
import tornado.httpserver
import tornado.netutil
import tornado.web
import tornado.websocket
from _ws_load import run_client
from fanout import CHANNEL, EVENT, HOST, Acks, GcPauses, _emit, publish_phase

from dashboard.core.events import Event, encode_payload
from dashboard.core.pusher_frames import (
    connection_established,
    hub_event_frame,
    subscription_succeeded,
)
from dashboard.hub import Hub

APP_KEY, APP_SECRET = "bench-key", "bench-secret-0123456789"
PATH = f"/app/{APP_KEY}?protocol=7"
VARIANTS = ("ours", "baseline")

# -- inside a server process --------------------------------------------------------------------


class _BareSocket(tornado.websocket.WebSocketHandler):
    """Greets, subscribes on any ``pusher:subscribe``, and stays until the client leaves."""

    def initialize(self, sockets: set[_BareSocket]) -> None:
        self.sockets = sockets

    def open(self, *args: str, **kwargs: str) -> None:
        self.set_nodelay(True)
        self.write_message(connection_established(f"{id(self)}.{id(self.sockets)}", 120))

    def on_message(self, message: str | bytes) -> None:
        if isinstance(message, str) and '"pusher:subscribe"' in message:
            self.sockets.add(self)
            self.write_message(subscription_succeeded(CHANNEL))

    def on_close(self) -> None:
        self.sockets.discard(self)


class Baseline:
    """The least a Tornado WebSocket server can do: write each frame to every subscriber."""

    def __init__(self) -> None:
        self.epoch = Hub().epoch
        self.sockets: set[_BareSocket] = set()
        self.offset = 0

    async def start(self) -> int:
        app = tornado.web.Application([(r"/app/([^/]+)", _BareSocket, {"sockets": self.sockets})])
        sockets = tornado.netutil.bind_sockets(0, HOST)
        self.server = tornado.httpserver.HTTPServer(app)
        self.server.add_sockets(sockets)
        return int(sockets[0].getsockname()[1])

    async def publish(self, payload: dict[str, Any]) -> None:
        self.offset += 1
        data_json = encode_payload(payload)
        frame = hub_event_frame(
            Event(CHANNEL, EVENT, data_json, self.offset, self.epoch, time.time())
        )
        for socket in tuple(self.sockets):
            try:
                socket.write_message(frame)
            except tornado.websocket.WebSocketClosedError:
                self.sockets.discard(socket)

    async def stop(self) -> None:
        self.server.stop()


async def serve_main(variant: str, payload: int) -> None:
    target = (
        fanout.Ours(app_key=APP_KEY, app_secret=APP_SECRET) if variant == "ours" else Baseline()
    )
    port = await target.start()
    acks, gc_pauses = Acks(), GcPauses()
    ack_server = await asyncio.start_server(acks.handle, HOST, 0)
    _emit({"port": port, "ack_port": ack_server.sockets[0].getsockname()[1], "pid": os.getpid()})
    seq = 0
    async for cmd in fanout._commands():
        if cmd["cmd"] == "warm":  # so lazily created state (the channel, caches) predates the RSS
            for _ in range(10):
                await target.publish({"seq": seq, "t": time.time(), "pad": "x" * payload})
                seq += 1
            _emit({})
        elif cmd["cmd"] == "rss":
            gc.collect()
            _emit({"rss_kb": fanout._rss_kb()})
        elif cmd["cmd"] == "publish":
            seq = await publish_phase(target, acks, gc_pauses, seq, cmd)
    ack_server.close()
    await target.stop()


# -- the orchestrating process ------------------------------------------------------------------


class Child(fanout.Child):
    """:class:`fanout.Child`, running this script instead of ``fanout.py``."""

    SCRIPT = __file__


def run_benchmark(args: argparse.Namespace) -> None:
    fanout.run_benchmark(args, child=Child, unit="connection", label="ws_fanout")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    fanout.add_arguments(parser, unit="connections")
    args = parser.parse_args()
    if args.serve:
        serve = lambda: asyncio.run(serve_main(args.serve, args.payload))  # noqa: E731
        fanout._child(args.cpu, serve, args.profile_to)
    elif args.client:
        port, ack_port = args.client
        client = lambda: run_client(HOST, port, ack_port, PATH, _emit)  # noqa: E731
        fanout._child(args.cpu, client, args.profile_to)
    else:
        if not 0 < args.subscribers <= 5000 or not 0 < args.seconds <= 600 or args.rate <= 0:
            parser.error("need 0 < subscribers <= 5000, 0 < seconds <= 600 and rate > 0")
        run_benchmark(args)


if __name__ == "__main__":
    main()
