"""UI events run where a Jupyter kernel runs them, and still reach the connection's loop.

In a kernel (ipykernel 7, JupyterLab 4) the cells run on the kernel's main loop, where the
notebook opens its connections, while widget messages (Enter, Send, buttons, selectors) are
handled on a *subshell* thread, inside a task of that thread's own loop. :func:`subshell`
reproduces that; :func:`plain_thread` is a host that runs callbacks on a thread with no loop at
all. Without the rule of :mod:`dashboard.ui.tasks` every test here fails: the work starts on the
subshell's loop ("Timeout context manager should be used inside a task", "attached to a
different loop") or finds no loop.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from dashboard.client import RemoteChatProvider
from dashboard.core.user_tokens import issue_user_token
from dashboard.ui import AIChat, ChatRoom, NotificationCenter
from dashboard.ui.tasks import BackgroundTasks, schedule
from tests.waiting import until

Host = Callable[[Callable[[], Any]], Awaitable[None]]


@pytest.fixture
async def subshell() -> AsyncIterator[Host]:
    """``await subshell(callback)``: call ``callback()`` as ipykernel's subshell does, inside a
    task of another thread's running loop, and wait until it returned."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="subshell", daemon=True)
    thread.start()

    async def call(callback: Callable[[], Any]) -> None:
        async def handle() -> None:
            callback()

        await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(handle(), loop))

    yield call
    loop.call_soon_threadsafe(loop.stop)
    await asyncio.to_thread(thread.join, 5)
    loop.close()


async def plain_thread(callback: Callable[[], Any]) -> None:
    """Call ``callback()`` on a thread where no loop runs."""
    await asyncio.to_thread(callback)


@pytest.fixture
def no_task_failures(caplog: pytest.LogCaptureFixture):
    """Fails the test if UI work failed in the background (it is logged, not raised)."""
    caplog.set_level(logging.ERROR, logger="dashboard")
    yield
    records = caplog.get_records("setup") + caplog.get_records("call")
    failures = [r.getMessage() for r in records if r.levelno >= logging.ERROR]
    assert failures == []


@pytest.fixture
async def ada_room(connect_user):
    room = ChatRoom(connection=connect_user("ada"), room="lobby")
    await room.start()
    yield room
    await room.stop()


# -- the rule itself ----------------------------------------------------------------------


async def test_schedule_runs_on_the_owning_loop_from_anywhere(subshell):
    owner = asyncio.get_running_loop()
    seen: list[tuple[bool, bool]] = []

    async def work() -> None:
        seen.append((asyncio.get_running_loop() is owner, asyncio.current_task() is not None))

    tasks = BackgroundTasks()
    await subshell(lambda: tasks.spawn(work(), owner))
    await plain_thread(lambda: tasks.spawn(work(), owner))
    owner.call_soon(lambda: tasks.spawn(work(), owner))  # on the loop, outside any task
    await until(lambda: len(seen) == 3)
    assert seen == [(True, True)] * 3
    await until(lambda: len(tasks) == 0)


async def test_without_an_owner_nor_a_loop_the_work_is_refused_not_leaked():
    async def work() -> None:
        raise AssertionError("never runs")

    coroutine = work()
    with pytest.raises(RuntimeError, match="no event loop"):
        await asyncio.to_thread(schedule, coroutine, None)
    assert coroutine.cr_frame is None  # closed: no "never awaited" warning


async def test_cancel_all_cancels_work_running_on_another_thread(subshell):
    owner = asyncio.get_running_loop()
    started = asyncio.Event()
    cancelled = asyncio.Event()

    async def forever() -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        finally:
            cancelled.set()

    tasks = BackgroundTasks()
    await subshell(lambda: tasks.spawn(forever(), owner))
    await asyncio.wait_for(started.wait(), 5)
    await subshell(tasks.cancel_all)
    await asyncio.wait_for(cancelled.wait(), 5)


# -- every component --------------------------------------------------------------------


@pytest.mark.parametrize("host", ["subshell", "plain_thread"])
async def test_enter_and_send_post_the_message(
    ada_room, connect_user, subshell, host, no_task_failures
):
    call: Host = subshell if host == "subshell" else plain_thread
    bob_room = await connect_user("bob").join_room("lobby")

    ada_room.input.value_input = "typed, then Enter"
    await call(lambda: ada_room.input.param.trigger("enter_pressed"))
    await until(lambda: any(m.text == "typed, then Enter" for m in bob_room.messages.values()))
    await until(lambda: ada_room.input.value_input == "")

    ada_room.input.value_input = "typed, then Send"
    await call(lambda: setattr(ada_room.send_button, "clicks", ada_room.send_button.clicks + 1))
    await until(lambda: any(m.text == "typed, then Send" for m in bob_room.messages.values()))
    assert ada_room.error == ""


async def test_typing_reaches_the_room(ada_room, connect_user, subshell, no_task_failures):
    bob_room = await connect_user("bob").join_room("lobby")
    seen: list[str] = []
    bob_room.on_activity(lambda kind, _user_id, name: seen.append(f"{kind}:{name}"))
    await subshell(lambda: setattr(ada_room.input, "value_input", "h"))
    await until(lambda: "typing:Ada" in seen)


async def test_a_new_room_is_created_and_joined_and_the_selector_switches_back(
    ada_room, subshell, no_task_failures
):
    def type_room() -> None:
        ada_room.new_room.value_input = "kernel-room"
        ada_room.new_room.param.trigger("enter_pressed")

    await subshell(type_room)
    await until(lambda: ada_room.session is not None and ada_room.session.room == "kernel-room")
    assert ada_room.error == "" and "kernel-room" in ada_room.selector.options
    await subshell(lambda: setattr(ada_room.selector, "value", "lobby"))
    await until(lambda: ada_room.session is not None and ada_room.session.room == "lobby")
    assert ada_room.error == ""


async def test_mark_read_and_mark_all_read_buttons(
    store_server, connect_user, subshell, no_task_failures
):
    service = store_server.ctx.notifications
    for n in range(3):
        await service.notify("ada", f"job {n} done")
    center = NotificationCenter(connection=connect_user("ada"), toasts=None)
    await center.start()
    other_tab = NotificationCenter(connection=connect_user("ada"), toasts=None)
    await other_tab.start()
    try:
        first = center.notifications[-1].id
        _row, _entry, button = center._rows[first]
        await subshell(lambda: setattr(button, "clicks", button.clicks + 1))
        await until(lambda: other_tab.unread == 2)  # the server has it
        assert center.unread == 2 and center.inbox is not None and center.inbox.items[first].read
        await subshell(lambda: setattr(center.mark_all, "clicks", center.mark_all.clicks + 1))
        await until(lambda: other_tab.unread == 0)
        assert center.unread == 0 and center.error == ""
    finally:
        await center.stop()
        await other_tab.stop()


@pytest.fixture
async def remote_chat(store_server):
    """An AIChat on a RemoteChatProvider connected on this test's loop (as a notebook cell
    connects it on the kernel's main loop); the server answers with the slow demo provider."""
    from dashboard.ai import DemoProvider

    store_server.ctx.ai = DemoProvider(delay=0.01)
    token = issue_user_token(store_server.ctx.app.secret, "ada", "Ada")
    provider = await RemoteChatProvider.connect(store_server.url, token)
    chat = AIChat(provider=provider)
    yield chat
    await chat.stop()
    await provider.aclose()


def press_enter(chat: AIChat, text: str) -> Callable[[], None]:
    # What ChatInterface does when Enter is pressed in its box.
    def enter() -> None:
        chat.interface.active_widget.value = text

    return enter


async def test_a_typed_question_is_answered_stopped_and_asked_again(
    remote_chat, subshell, no_task_failures
):
    chat = remote_chat
    box = chat.interface.active_widget
    await subshell(press_enter(chat, "What is this dashboard doing?"))
    async with asyncio.timeout(15):
        await until(lambda: chat.streaming, 10)
        await until(lambda: not chat.streaming, 15)
    assert len(chat.answer.split()) > 20 and chat.error == ""
    assert not box.disabled and box.value == ""

    await subshell(press_enter(chat, "How does an SSE stream resume after a reconnect?"))
    await until(lambda: chat.streaming and len(chat.answer.split()) >= 3, 10)
    stopped: list[bool] = []
    await subshell(lambda: stopped.append(chat.stop_answer()))  # the Stop button
    await until(lambda: not chat.streaming)
    kept = chat.answer
    assert stopped == [True] and kept and not kept.endswith(chat.cursor)
    await until(lambda: not box.disabled and not chat.interface.disabled)

    await subshell(press_enter(chat, "And presence?"))
    await until(lambda: chat.streaming, 10)
    await until(lambda: not chat.streaming, 15)
    assert len(chat.answer.split()) > 20 and chat.error == ""


async def test_stop_from_a_cell_unlocks_the_box_for_the_next_question(no_task_failures):
    """The notebook's own cells: send(), then stop_answer() from code, then type again."""
    from dashboard.ai import DemoProvider

    chat = AIChat(provider=DemoProvider(delay=0.01))
    for _ in range(3):  # Stop may land while Panel holds a chunk or while the reader waits
        chat.send("How does an SSE stream resume after a reconnect?")
        await until(lambda: chat.streaming and len(chat.answer.split()) >= 5, 10)
        assert chat.stop_answer()
        await chat.wait()
        assert not chat.streaming
        await until(lambda: not chat.interface.active_widget.disabled)
        await until(lambda: not chat.interface.disabled)
    assert len((await chat.ask("What is this dashboard doing?")).split()) > 20
