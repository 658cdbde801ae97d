"""``dashboard serve`` as a user runs it: a real process on a free loopback port."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

#: The last line ``dashboard serve`` prints once it is up (dashboard/cli.py).
LAST_STARTUP_LINE = "Access:"
ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class ServeProcess:
    """A running ``dashboard serve``.

    Attributes:
        url: its base URL.
        port: its port.
        pid: its process id (for psutil, or to send it a signal).
        startup: what it printed while starting, line by line.
    """

    url: str
    port: int
    pid: int
    startup: list[str]


@contextlib.asynccontextmanager
async def dashboard_process(
    *args: str, env: dict[str, str] | None = None, port: int | None = None
) -> AsyncIterator[ServeProcess]:
    """Run ``python -m dashboard serve --port N ARGS`` until the block ends (SIGTERM, then a
    bounded wait; a test may have signalled it already). ``env`` is added to this process's
    environment; ``port`` is a free one unless given (a restart reuses its predecessor's).
    Its output is read all along, so the access log never fills the pipe and blocks the
    server."""
    port = port or free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "dashboard", "serve", "--port", str(port), *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, **(env or {})}, cwd=ROOT,
    )  # fmt: skip
    assert process.stdout is not None
    startup: list[str] = []
    drain: asyncio.Future[None] | None = None
    try:
        while not startup or not startup[-1].startswith(LAST_STARTUP_LINE):
            line = (await asyncio.wait_for(process.stdout.readline(), 60)).decode()
            assert line, f"dashboard serve exited early: {''.join(startup)}"
            startup.append(line)
        drain = asyncio.ensure_future(_discard(process.stdout))
        yield ServeProcess(f"http://127.0.0.1:{port}", port, process.pid, startup)
    finally:
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):  # already gone (killed by the test)
                process.terminate()
        await asyncio.wait_for(process.wait(), 20)
        if drain is not None:
            await asyncio.wait_for(drain, 5)


async def _discard(stream: asyncio.StreamReader) -> None:
    while await stream.read(64 * 1024):
        pass
