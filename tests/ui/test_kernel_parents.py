"""ipykernel 7's main-shell parent race (dashboard/ui/kernel_parents.py), in a real kernel.

Two async cells are queued while comm messages reach the main shell around the first one's
end, as a widget page's do. Every cell must get its own ``status: idle`` and its own output:
without the guard, about one round in four gives the second cell's idle (and output) to the
first, and JupyterLab shows the second cell running for ever.
"""

from __future__ import annotations

import asyncio
import time

from dashboard.ui.kernel_parents import keep_cell_parents

ROUNDS = 15
SETUP = """
import asyncio
from comm import create_comm
channel = create_comm(target_name="race", data={})
channel.on_msg(lambda message: None)
"""
GUARD = """
from dashboard.ui.kernel_parents import keep_cell_parents
keep_cell_parents(get_ipython().kernel)
"""


async def drain(client, seconds: float = 0.1) -> None:
    while True:
        try:
            await client.get_iopub_msg(timeout=seconds)
        except Exception:  # queue.Empty: nothing more
            return


async def open_comm(client) -> str:
    client.execute(SETUP + GUARD)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        message = await client.get_iopub_msg(timeout=30)
        if message["msg_type"] == "comm_open":
            return message["content"]["comm_id"]
    raise AssertionError("the kernel opened no comm")


async def one_round(client, comm_id: str) -> dict[str, list[str]]:
    """Queue two cells, send comm messages around the first one's end; what each cell got."""
    first = client.execute("await asyncio.sleep(0.2)")
    second = client.execute("await asyncio.sleep(0.05); print('second')")
    started = time.monotonic()
    while time.monotonic() - started < 0.35:
        client.shell_channel.send(client.session.msg("comm_msg", {"comm_id": comm_id, "data": {}}))
        await asyncio.sleep(0.002)
    got: dict[str, list[str]] = {first: [], second: []}
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not all("idle" in kinds for kinds in got.values()):
        try:
            message = await client.get_iopub_msg(timeout=0.5)
        except Exception:
            continue
        parent = message["parent_header"].get("msg_id")
        if parent not in got:
            continue
        if message["msg_type"] == "status":
            got[parent].append(message["content"]["execution_state"])
        elif message["msg_type"] == "stream":
            got[parent].append(message["content"]["text"].strip())
    await drain(client)
    return {"first": got[first], "second": got[second]}


async def test_each_queued_cell_gets_its_own_idle_and_output(real_kernel):
    comm_id = await open_comm(real_kernel)
    await drain(real_kernel, 0.5)
    for _ in range(ROUNDS):
        got = await one_round(real_kernel, comm_id)
        assert got["first"].count("idle") == 1 and "second" not in got["first"], got
        assert got["second"].count("idle") == 1 and "second" in got["second"], got


class RecordingKernel:
    def __init__(self) -> None:
        self.parents: list[str] = []

    def set_parent(self, ident, parent, channel="shell"):
        self.parents.append(parent["header"]["msg_id"])


def request(msg_id: str, kind: str = "execute_request", **header: str) -> dict:
    return {"header": {"msg_id": msg_id, "msg_type": kind, **header}}


def test_the_main_shell_parent_never_goes_back_to_a_finished_cell():
    kernel = RecordingKernel()
    keep_cell_parents(kernel)
    keep_cell_parents(kernel)  # idempotent
    kernel.set_parent(b"", request("a"))
    kernel.set_parent(b"", request("c1", "comm_msg"))  # a comm, in its own context
    kernel.set_parent(b"", request("a"))  # put back while a still runs: fine
    kernel.set_parent(b"", request("b"))  # the next cell starts
    kernel.set_parent(b"", request("a"))  # a stale put-back: b stays
    kernel.set_parent(b"", request("s", subshell_id="x"))  # a subshell's cell: as asked
    kernel.set_parent(b"", request("a"), channel="control")  # the control channel: as asked
    assert kernel.parents == ["a", "c1", "a", "b", "b", "s", "a"]
