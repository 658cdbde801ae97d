"""SSE load client for the benchmarks: many streams on one epoll loop, little work per byte.

Neither aiohttp nor asyncio protocols are cheap enough to read 1,000 streams at tens of thousands
of events per second on one core (asyncio alone costs a handle and a callback per read), so this
is a plain ``select.epoll`` loop over non-blocking sockets. It does not decode SSE fully
(:class:`dashboard.core.sse.SSEDecoder` is the reference decoder): each stream keeps the bytes
after its last blank line for the next read, counts complete event frames by their ``"seq":``
key (so the ``connected`` frame, heartbeats and HTTP chunk headers never count) and, on a sample
of streams, reads each frame's ``"t":`` send time for latency. The payload is
``{"seq": n, "t": unix_time, ...}``.
"""

from __future__ import annotations

import json
import re
import select
import socket
import sys
import time
from array import array
from collections.abc import Callable
from typing import Any

_SEQ = b'"seq":'
_SEND_TIME = re.compile(rb'"t":([0-9.]+)')
_HEAD_END = b"\r\n\r\n"
MAX_HEAD_BYTES = 16 * 1024
READ_SIZE = 256 * 1024


class Stream:
    """One ``GET`` event stream's parsing state."""

    __slots__ = ("sock", "timed", "tail", "in_body", "ready", "last_seq")

    def __init__(self, sock: socket.socket, timed: bool) -> None:
        self.sock = sock
        self.timed = timed  # whether this stream samples latency
        self.tail = b""
        self.in_body = False
        self.ready = False  # the first complete frame (``connected``) arrived
        self.last_seq = -1


class LoadClient:
    """Holds streams to ``http://host:port/path`` and reads them in :meth:`pump`.

    Attributes:
        recording: count frames and latencies only while this is true (the measured window).
        frames: event frames received while recording.
        latencies: receive time minus send time, in seconds, of the frames of every
            ``sample_every``-th stream (parsing them all would more than double the client's
            Python work per frame).
        closed: streams that ended or failed.
        last_data: ``time.monotonic()`` of the latest read on any stream.
    """

    #: How a tick event's sequence number and send time look in the received bytes.
    seq_marker = _SEQ
    send_time_pattern = _SEND_TIME

    def __init__(self, host: str, port: int, path: str, sample_every: int = 4) -> None:
        self.address = (host, port)
        self.request = (
            f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nAccept: text/event-stream\r\n\r\n"
        ).encode()
        self.sample_every = sample_every
        self.streams: dict[int, Stream] = {}
        self.poller = select.epoll()
        self.recording = False
        self.frames = 0
        self.latencies = array("d")
        self.closed = 0
        self.last_data = 0.0

    def connect(self, count: int, timeout: float) -> int:
        """Open ``count`` streams and wait for their first frames; returns how many are ready."""
        deadline = time.monotonic() + timeout
        for _ in range(count):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            sock = socket.create_connection(self.address, timeout=remaining)
            sock.sendall(self.request)
            sock.setblocking(False)
            timed = len(self.streams) % self.sample_every == 0
            self.streams[sock.fileno()] = Stream(sock, timed)
            self.poller.register(sock.fileno(), select.EPOLLIN)
            if len(self.streams) % 64 == 0:  # keep the server's accept backlog short
                self.pump(time.monotonic() + 0.01)
        while time.monotonic() < deadline and not all(s.ready for s in self.streams.values()):
            self.pump(min(deadline, time.monotonic() + 0.1))
        return sum(s.ready for s in self.streams.values())

    def low_seq(self) -> int:
        """The highest ``seq`` that every open stream has received."""
        return min((s.last_seq for s in self.streams.values()), default=-1)

    def pump(self, until: float, tick: Callable[[], None] | None = None) -> None:
        """Read streams until ``time.monotonic()`` reaches ``until``; call ``tick`` every 2 ms."""
        poll, streams = self.poller.poll, self.streams
        next_tick = 0.0
        while (now := time.monotonic()) < until:
            if tick is not None and now >= next_tick:
                tick()
                next_tick = now + 0.002
            ready = poll(min(0.002, until - now), 1024)
            if ready:
                self.last_data = now
            for fd, _ in ready:
                stream = streams[fd]
                try:
                    data = stream.sock.recv(READ_SIZE)
                except BlockingIOError:
                    continue
                except OSError:
                    data = b""
                if data:
                    self._feed(stream, data)
                else:
                    self._close(stream)

    #: Status lines that start the body; anything else closes the stream.
    ACCEPTED_STATUS: tuple[bytes, ...] = (b"HTTP/1.1 200", b"HTTP/1.0 200")

    def _take_head(self, stream: Stream, buf: bytes) -> bytes | None:
        """Consume the response head: the body bytes so far, or None (incomplete or refused)."""
        if stream.in_body:
            return buf
        head_end = buf.find(_HEAD_END)
        if head_end < 0:
            stream.tail = buf
            if len(buf) > MAX_HEAD_BYTES:
                self._close(stream)
            return None
        if not buf.startswith(self.ACCEPTED_STATUS):
            self._close(stream)
            return None
        stream.in_body = True
        return buf[head_end + 4 :]

    def _feed(self, stream: Stream, data: bytes) -> None:
        now = time.time() if stream.timed else 0.0
        body = self._take_head(stream, stream.tail + data if stream.tail else data)
        if body is None:
            return
        buf = body
        end = buf.rfind(b"\n\n")
        if end < 0:
            stream.tail = buf
            return
        complete, stream.tail = buf[: end + 2], buf[end + 2 :]
        stream.ready = True
        self._count(stream, complete, now)  # nothing for the connected frame or a heartbeat

    def _count(self, stream: Stream, complete: bytes, now: float) -> bool:
        """Record the tick events in ``complete`` (whole frames); False when there are none."""
        seq = self.seq_marker
        last = complete.rfind(seq)
        if last < 0:
            return False
        start = last + len(seq)
        stream.last_seq = int(complete[start : complete.index(b",", start)])
        if self.recording:
            self.frames += complete.count(seq)
            if stream.timed:
                sent = self.send_time_pattern.findall(complete)
                self.latencies.extend([now - float(t) for t in sent])
        return True

    def _close(self, stream: Stream) -> None:
        self.closed += 1
        fd = stream.sock.fileno()
        self.poller.unregister(fd)
        del self.streams[fd]
        stream.sock.close()

    def close(self) -> None:
        for stream in list(self.streams.values()):
            stream.sock.close()
        self.streams.clear()
        self.poller.close()


def percentile(values: array | list[float], q: float) -> float:
    """Nearest-rank percentile of ``values`` (``q`` in 0..100); NaN when empty."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered)) - 1))
    return ordered[rank]


def run_client(
    host: str, port: int, ack_port: int, path: str, emit: Callable[[dict[str, Any]], None]
) -> None:
    """The client process: obey JSON commands from stdin, answer through ``emit``.

    ``connect`` opens the streams; ``measure`` reads for warmup + seconds (recording only the
    seconds) + tail, then until the streams are quiet, reporting the highest ``seq`` all streams
    have received to ``ack_port`` every 2 ms when ``ack`` is set.
    """
    client = LoadClient(host, port, path)
    acks = socket.create_connection((host, ack_port), timeout=10)
    for line in sys.stdin.buffer:
        cmd = json.loads(line)
        if cmd["cmd"] == "connect":
            began = time.monotonic()
            connected = client.connect(cmd["count"], cmd["timeout"])
            emit({"connected": connected, "seconds": time.monotonic() - began})
        elif cmd["cmd"] == "measure":
            sent = -1

            def ack() -> None:
                nonlocal sent
                if (low := client.low_seq()) > sent:
                    acks.sendall(b"%d\n" % low)
                    sent = low

            tick = ack if cmd["ack"] else None
            client.pump(time.monotonic() + cmd["warmup"], tick)
            client.frames, client.latencies, closed = 0, array("d"), client.closed
            cpu, began, client.recording = time.process_time(), time.monotonic(), True
            client.pump(began + cmd["seconds"], tick)
            client.recording, elapsed = False, time.monotonic() - began
            cpu = time.process_time() - cpu
            # Read on until the publisher has stopped and the streams are quiet (bounded).
            client.pump(began + cmd["seconds"] + cmd["tail"], tick)
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline and time.monotonic() - client.last_data < 0.5:
                client.pump(time.monotonic() + 0.1, tick)
            emit(
                {
                    "frames": client.frames,
                    "elapsed": elapsed,
                    "p50_ms": 1000 * percentile(client.latencies, 50),
                    "p99_ms": 1000 * percentile(client.latencies, 99),
                    "cpu_pct": 100 * cpu / elapsed,
                    "lost": client.closed - closed,
                }
            )
        elif cmd["cmd"] == "quit":
            break
    client.close()
