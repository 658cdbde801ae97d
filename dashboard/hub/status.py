"""``wait_open()`` for every stream and client that reports a connection status.

Kept out of :mod:`dashboard.core.connection`, which holds the status itself and stays free of
asyncio.
"""

from __future__ import annotations

import asyncio

from ..core.connection import ConnectionState, ConnectionStatus, StatusReporter


class OpenWaiter(StatusReporter):
    """:class:`StatusReporter` plus :meth:`wait_open`."""

    async def wait_open(self) -> None:
        """Return once the connection is open, at once if it is: from then on, every event
        published reaches this stream. (A stream connects when iteration starts, so iterate
        in a task first.) Bound it with ``asyncio.timeout`` if it may never open.

        Raises:
            ConnectionError: the stream was closed before it opened.
        """
        loop = asyncio.get_running_loop()
        opened: asyncio.Future[None] = loop.create_future()

        def settle(status: ConnectionStatus) -> None:
            if opened.done():
                return
            if status.state is ConnectionState.OPEN:
                opened.set_result(None)
            elif status.state is ConnectionState.CLOSED:
                opened.set_exception(ConnectionError("the stream closed before it opened"))

        def changed(status: ConnectionStatus) -> None:
            # The status may change on another thread (a client's own loop).
            loop.call_soon_threadsafe(settle, status)

        unwatch = self.watch_status(changed)
        try:
            settle(self.status)
            await opened
        finally:
            unwatch()
