"""A work-around for ipykernel 7's main-shell parent race, which leaves cells at ``[*]``.

ipykernel 7 handles a comm message that reaches the main shell while an async cell runs
without waiting for the cell (``Kernel.shell_main``): it remembers the shell's parent request
(the running cell), dispatches the comm message, and then puts that parent back. When the cell
ends and the next queued cell starts meanwhile, "putting it back" makes the *finished* cell
the parent of the new one: the new cell's outputs and its ``status: idle`` go to the old cell,
and JupyterLab shows the new cell as running (``[*]``) for ever, its "Run All" never done.
Widgets make this common: a page sends comm messages on the main shell while it renders the
outputs of cells still running (before it has opened a subshell for them).

Measured with a real kernel and no widgets (``tests/ui/test_kernel_parents.py``): with comm
messages arriving as a cell ends, the next cell lost its idle status in 5 rounds of 20.

The fix: the main shell's parent never goes back to an older ``execute_request``. A request
to set it to one that started before the current one is taken as that stale put-back and
keeps the current one instead. Nothing else changes: comm messages, subshells and the
control channel set their parents as before.
"""

from __future__ import annotations

from collections import deque
from typing import Any

#: How many earlier execute requests are remembered as "older than the current one".
REMEMBERED = 256


def keep_cell_parents(kernel: Any) -> None:
    """Guard ``kernel.set_parent`` (an ipykernel ``Kernel``) against the stale put-back
    described in the module doc. Idempotent; harmless on a kernel without the race."""
    if getattr(kernel, "_dashboard_keeps_cell_parents", False):
        return
    set_parent = kernel.set_parent
    older: deque[str] = deque(maxlen=REMEMBERED)
    current: list[Any] = [None]  # (ident, parent, msg_id) of the newest execute request

    def set_parent_in_order(ident: Any, parent: Any, channel: str = "shell") -> None:
        header = parent.get("header", {}) if isinstance(parent, dict) else {}
        main_cell = (
            channel == "shell"
            and header.get("msg_type") == "execute_request"
            and not header.get("subshell_id")
        )
        if main_cell:
            msg_id = header.get("msg_id")
            newest = current[0]
            if newest is not None and msg_id in older:
                ident, parent = newest[0], newest[1]  # a finished cell put back: keep ours
            elif newest is None or msg_id != newest[2]:
                if newest is not None:
                    older.append(newest[2])
                current[0] = (ident, parent, msg_id)
        set_parent(ident, parent, channel)

    kernel.set_parent = set_parent_in_order
    kernel._dashboard_keeps_cell_parents = True
