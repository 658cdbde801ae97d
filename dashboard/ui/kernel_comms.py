"""A work-around for widget messages that overtake their ``comm_open`` (JupyterLab 4.4+ with
ipykernel 7), which leaves a notebook widget deaf to typing.

JupyterLab sends a widget output's ``comm_open`` on the kernel's main shell and, as soon as it
has a subshell for the comm's target, the comm's messages on that subshell. The two do not
wait for each other: the main shell handles the ``comm_open`` only when the cell it is running
lets go (and after every cell "Run All" queued, if it arrives between two cells), while the
subshell, a thread of its own, handles the messages at once. The kernel then logs
"No such comm" and drops them.

For a Panel output that is worse than one lost change. Panel's page sends a widget's changes
one message at a time and waits for the kernel's acknowledgement before sending the next
(``CommManager``); a dropped message is never acknowledged, so what is typed next, and the
Enter that would send it, stays in the page until some change comes more than 5 s later.
Seen in the JupyterLab tests (``tests/jupyter``): after "Run All", the chat's box or the AI
chat's question box ignored a typed message in about one run in four under load.

The fix: a ``comm_msg`` or ``comm_close`` for a comm the kernel does not know (yet) is held,
and handled, in arrival order, right after that comm's ``comm_open``. Later messages for a comm
with held ones queue behind them, so the comm sees its messages in the order the page sent
them. What is held is bounded: at most :data:`HELD_MAX` messages, each for at most
:data:`HELD_FOR` seconds; past either, the oldest are dropped with the kernel's usual warning.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

#: How many messages for not-yet-open comms are kept, in all.
HELD_MAX = 1000
#: Seconds a message waits for its ``comm_open`` before it is dropped: a cell may run long
#: while the page already sends its widgets' changes.
HELD_FOR = 600.0

Handler = Callable[[Any, Any, dict], None]  # ipykernel's shell handler: (stream, ident, msg)


def hold_early_comm_messages(kernel: Any) -> None:
    """Have ``kernel`` (an ipykernel ``Kernel``) hold comm messages that arrive before their
    ``comm_open``, as the module doc describes. Idempotent; on a kernel whose messages never
    overtake their open, nothing changes."""
    if getattr(kernel, "_dashboard_holds_early_comm_messages", False):
        return
    handlers = getattr(kernel, "shell_handlers", None)
    comms = getattr(getattr(kernel, "comm_manager", None), "comms", None)
    kinds = ("comm_open", "comm_msg", "comm_close")
    if (
        not isinstance(handlers, dict)
        or not isinstance(comms, dict)
        or not set(kinds) <= set(handlers)
    ):
        return  # not an ipykernel: nothing to guard
    early = EarlyCommMessages(comms, {kind: handlers[kind] for kind in kinds})
    handlers["comm_open"] = early.comm_open
    handlers["comm_msg"] = early.comm_msg
    handlers["comm_close"] = early.comm_close
    kernel._dashboard_holds_early_comm_messages = True


class EarlyCommMessages:
    """The shell handlers for ``comm_open``, ``comm_msg`` and ``comm_close`` in front of the
    kernel's own (``handlers``), for a kernel whose open comms are ``comms`` (comm id -> comm).

    Called from the main shell's thread and from subshell threads at once: one lock guards
    what is held; the kernel's handlers run outside it.
    """

    def __init__(
        self,
        comms: dict[str, Any],
        handlers: dict[str, Handler],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._comms = comms
        self._handlers = handlers
        self._clock = clock
        self._lock = threading.Lock()
        #: comm id -> the messages held for it, oldest first: (arrived, kind, stream, ident, msg)
        self._held: dict[str, deque[tuple[float, str, Any, Any, dict]]] = {}
        self._count = 0
        #: comm ids whose held messages a thread is handling now
        self._releasing: set[str] = set()

    @property
    def held(self) -> int:
        """How many messages are waiting for their ``comm_open``."""
        return self._count

    def comm_open(self, stream: Any, ident: Any, msg: dict) -> None:
        self._handlers["comm_open"](stream, ident, msg)
        self._release(_comm_id(msg))

    def comm_msg(self, stream: Any, ident: Any, msg: dict) -> None:
        self._arrive("comm_msg", stream, ident, msg)

    def comm_close(self, stream: Any, ident: Any, msg: dict) -> None:
        self._arrive("comm_close", stream, ident, msg)

    def _arrive(self, kind: str, stream: Any, ident: Any, msg: dict) -> None:
        comm_id = _comm_id(msg)
        with self._lock:
            now = self._clock()
            self._drop_expired(now)
            known = comm_id in self._comms
            if comm_id is None or (known and comm_id not in self._held):
                held = False
            else:
                self._held.setdefault(comm_id, deque()).append((now, kind, stream, ident, msg))
                self._count += 1
                if self._count > HELD_MAX:
                    self._drop_oldest()
                held = True
            # An open comm with held messages that nobody hands on (it was opened some other
            # way than by a comm_open): this message's thread hands them on.
            release = held and known and comm_id not in self._releasing
        if not held:
            self._handlers[kind](stream, ident, msg)
        elif release:
            self._release(comm_id)

    def _release(self, comm_id: str | None) -> None:
        """Handle what is held for ``comm_id``, in order, including messages that arrive
        meanwhile (they queue behind the held ones, see :meth:`_arrive`)."""
        if comm_id is None:
            return
        with self._lock:
            if comm_id in self._releasing:
                return  # another thread is handing them on, in order
            self._releasing.add(comm_id)
        try:
            while True:
                with self._lock:
                    queue = self._held.get(comm_id)
                    if not queue:
                        self._held.pop(comm_id, None)
                        return
                    _, kind, stream, ident, msg = queue.popleft()
                    self._count -= 1
                self._handlers[kind](stream, ident, msg)
        finally:
            with self._lock:
                self._releasing.discard(comm_id)

    def _drop_expired(self, now: float) -> None:
        for comm_id in list(self._held):
            queue = self._held[comm_id]
            expired = 0
            while queue and now - queue[0][0] > HELD_FOR:
                queue.popleft()
                expired += 1
            if expired:
                self._dropped(comm_id, expired, f"no comm_open within {HELD_FOR:.0f} s")
            if not queue:
                del self._held[comm_id]

    def _drop_oldest(self) -> None:
        comm_id = min(self._held, key=lambda key: self._held[key][0][0])
        queue = self._held[comm_id]
        queue.popleft()
        if not queue:
            del self._held[comm_id]
        self._dropped(comm_id, 1, f"more than {HELD_MAX} messages wait for their comm_open")

    def _dropped(self, comm_id: str, count: int, why: str) -> None:
        self._count -= count
        log.warning("No such comm: %s (dropped %d message(s): %s)", comm_id, count, why)


def _comm_id(msg: dict) -> str | None:
    content = msg.get("content") if isinstance(msg, dict) else None
    comm_id = content.get("comm_id") if isinstance(content, dict) else None
    return comm_id if isinstance(comm_id, str) else None
