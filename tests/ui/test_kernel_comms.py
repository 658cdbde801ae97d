"""Widget messages that overtake their comm_open (dashboard/ui/kernel_comms.py).

In a real kernel: a subshell's comm messages for a comm whose ``comm_open`` waits on the busy
main shell, as JupyterLab sends them, are dropped ("No such comm") without the guard and
handled, in order, after the open with it. Then the bookkeeping on its own: order with
messages arriving meanwhile, the bounds, a comm opened some other way.
"""

from __future__ import annotations

import asyncio
import time
import uuid

from dashboard.ui import kernel_comms
from dashboard.ui.kernel_comms import EarlyCommMessages, hold_early_comm_messages

SETUP = """
from comm import get_comm_manager
got = []
def opened(comm, msg):
    comm.on_msg(lambda message: got.append(message["content"]["data"]["n"]))
    comm.on_close(lambda message: got.append("closed"))
get_comm_manager().register_target("early", opened)
"""
GUARD = """
from dashboard.ui.kernel_comms import hold_early_comm_messages
hold_early_comm_messages(get_ipython().kernel)
"""


async def execute(client, code: str) -> str:
    """Run ``code`` on the main shell; what it printed."""
    msg_id = client.execute(code)
    printed = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        message = await client.get_iopub_msg(timeout=30)
        if message["parent_header"].get("msg_id") != msg_id:
            continue
        if message["msg_type"] == "stream":
            printed.append(message["content"]["text"])
        elif message["msg_type"] == "error":
            raise AssertionError(message["content"]["evalue"])
        elif message["msg_type"] == "status" and message["content"]["execution_state"] == "idle":
            return "".join(printed).strip()
    raise AssertionError(f"no idle for {code!r}")


async def create_subshell(client) -> str:
    request = client.session.msg("create_subshell_request", {})
    client.control_channel.send(request)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        reply = await client.get_control_msg(timeout=30)
        if reply["parent_header"].get("msg_id") == request["header"]["msg_id"]:
            return reply["content"]["subshell_id"]
    raise AssertionError("no create_subshell_reply")


async def messages_while_the_open_waits(client, guarded: bool) -> str:
    """JupyterLab's order: the comm_open on the main shell, busy with a cell; three messages
    and a close on a subshell at once. What the comm's handler got."""
    await execute(client, SETUP + (GUARD if guarded else ""))
    subshell = await create_subshell(client)
    comm_id = str(uuid.uuid4())
    client.execute("import time; time.sleep(1.0)")  # the main shell is busy
    await asyncio.sleep(0.2)
    opening = {"comm_id": comm_id, "target_name": "early", "data": {}}
    client.shell_channel.send(client.session.msg("comm_open", opening))
    for content in [{"n": 1}, {"n": 2}, {"n": 3}]:
        message = client.session.msg("comm_msg", {"comm_id": comm_id, "data": content})
        message["header"]["subshell_id"] = subshell
        client.shell_channel.send(message)
    closing = client.session.msg("comm_close", {"comm_id": comm_id, "data": {}})
    closing["header"]["subshell_id"] = subshell
    client.shell_channel.send(closing)
    return await execute(client, "print(got)")


async def test_messages_that_overtake_their_comm_open_are_handled_after_it_in_order(real_kernel):
    assert await messages_while_the_open_waits(real_kernel, guarded=True) == "[1, 2, 3, 'closed']"


async def test_without_the_guard_the_kernel_drops_them(real_kernel):
    # What the guard is for: if this starts passing, the kernel no longer drops them.
    assert await messages_while_the_open_waits(real_kernel, guarded=False) == "[]"


# -- the bookkeeping, without a kernel ------------------------------------------------------


class FakeKernel:
    """The parts of an ipykernel ``Kernel`` the guard uses; its handlers record calls."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, object]] = []
        self.comm_manager = type("Manager", (), {})()
        self.comm_manager.comms = {}
        self.shell_handlers = {
            "comm_open": self._open,
            "comm_msg": lambda stream, ident, msg: self._record("msg", msg),
            "comm_close": lambda stream, ident, msg: self._record("close", msg),
        }

    def _open(self, stream, ident, msg) -> None:
        self.comm_manager.comms[msg["content"]["comm_id"]] = object()
        self._record("open", msg)

    def _record(self, kind: str, msg: dict) -> None:
        known = msg["content"]["comm_id"] in self.comm_manager.comms
        self.calls.append((kind, msg["content"].get("data", {}).get("n"), known))

    def send(self, kind: str, comm_id: str, n: int | None = None) -> None:
        self.shell_handlers[kind](None, [], {"content": {"comm_id": comm_id, "data": {"n": n}}})


def test_held_messages_are_handled_after_the_open_and_later_ones_go_straight_through():
    fake = FakeKernel()
    hold_early_comm_messages(fake)
    hold_early_comm_messages(fake)  # idempotent
    fake.send("comm_msg", "a", 1)
    fake.send("comm_msg", "a", 2)
    fake.send("comm_close", "a")
    assert fake.calls == []
    fake.send("comm_open", "a")
    fake.send("comm_msg", "b", 9)  # another comm's, still held
    assert fake.calls == [
        ("open", None, True),
        ("msg", 1, True),
        ("msg", 2, True),
        ("close", None, True),
    ]


def test_a_message_arriving_while_held_ones_are_handed_on_queues_behind_them():
    fake = FakeKernel()
    early = EarlyCommMessages(fake.comm_manager.comms, dict(fake.shell_handlers))
    original = early._handlers["comm_msg"]

    def handle_and_meanwhile_receive(stream, ident, msg):
        original(stream, ident, msg)
        if msg["content"]["data"]["n"] == 1:  # another thread's message arrives now
            early.comm_msg(None, [], {"content": {"comm_id": "a", "data": {"n": 3}}})

    early._handlers["comm_msg"] = handle_and_meanwhile_receive
    for n in (1, 2):
        early.comm_msg(None, [], {"content": {"comm_id": "a", "data": {"n": n}}})
    early.comm_open(None, [], {"content": {"comm_id": "a"}})
    assert [call[1] for call in fake.calls if call[0] == "msg"] == [1, 2, 3]
    assert early.held == 0


def test_a_comm_opened_from_the_kernel_side_gets_its_held_messages_with_the_next_one():
    fake = FakeKernel()
    hold_early_comm_messages(fake)
    fake.send("comm_msg", "k", 1)
    fake.comm_manager.comms["k"] = object()  # opened by the kernel, no comm_open handled
    fake.send("comm_msg", "k", 2)
    assert [call[1] for call in fake.calls] == [1, 2]


def test_what_is_held_is_bounded_in_count_and_age(monkeypatch, caplog):
    monkeypatch.setattr(kernel_comms, "HELD_MAX", 3)
    now = [0.0]
    fake = FakeKernel()
    early = EarlyCommMessages(fake.comm_manager.comms, fake.shell_handlers, lambda: now[0])
    for n in range(5):
        early.comm_msg(None, [], {"content": {"comm_id": "never", "data": {"n": n}}})
    assert early.held == 3
    assert "more than 3 messages wait" in caplog.text
    now[0] = kernel_comms.HELD_FOR + 1
    early.comm_msg(None, [], {"content": {"comm_id": "other", "data": {"n": 9}}})
    assert early.held == 1  # the three for "never" expired; the new one waits
    assert "no comm_open within" in caplog.text
    early.comm_open(None, [], {"content": {"comm_id": "never"}})
    assert [call[1] for call in fake.calls if call[0] == "msg"] == []


def test_messages_without_a_comm_id_and_kernels_without_comms_are_left_alone():
    seen: list[dict] = []
    handlers = {
        kind: lambda stream, ident, msg: seen.append(msg)
        for kind in ("comm_open", "comm_msg", "comm_close")
    }
    early = EarlyCommMessages({}, handlers)
    early.comm_msg(None, [], {"content": {}})  # the kernel's handler says what is wrong
    assert seen == [{"content": {}}] and early.held == 0
    hold_early_comm_messages(object())  # not an ipykernel: nothing to guard
