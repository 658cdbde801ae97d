"""ChatRoom and its markup, driven against a real server with a real SQLite store."""

from __future__ import annotations

import asyncio
import re

import pytest

from dashboard.client.connection import UserConnection
from dashboard.core.user_tokens import issue_user_token
from dashboard.server import DashboardServer
from dashboard.store.base import MAX_TEXT_LENGTH, Message
from dashboard.ui import ChatRoom
from dashboard.ui.chat_render import Notice, render_message, render_timeline
from tests.waiting import until


def message(id: int = 1, **fields: object) -> Message:
    values: dict[str, object] = {
        "id": id,
        "room": "lobby",
        "user_id": "ada",
        "user_name": "Ada",
        "text": "hi",
        "created": 1_700_000_000.0 + id,
        "edited": None,
        "deleted": False,
    }
    values.update(fields)
    return Message(**values)  # type: ignore[arg-type]


# -- markup -----------------------------------------------------------------------------


def test_user_strings_never_become_markup():
    html = render_message(
        message(text="<script>alert(1)</script>", user_name="<img src=x>", user_id='a"b')
    )
    assert "<script>" not in html and "<img" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert 'data-user-id="a&quot;b"' in html


def test_edited_and_deleted_states_show():
    assert "(edited)" in render_message(message(edited=1_700_000_100.0))
    assert "(edited)" not in render_message(message())
    deleted = render_message(message(text="", deleted=True, edited=1.0))
    assert "chat-deleted" in deleted and "message deleted" in deleted and "(edited)" not in deleted


def test_timeline_is_written_newest_first_with_notices_in_time_order():
    html = render_timeline(
        [message(1, text="first"), message(2, text="second")],
        [Notice(1_700_000_001.5, "Bob joined #lobby")],
        me="ada",
    )
    order = re.findall(r"first|second|Bob joined", html)
    assert order == ["second", "Bob joined", "first"]  # the reversed column shows it upright
    assert html.count("chat-mine") == 2
    assert "Say hello" in render_timeline([])


# -- the component ----------------------------------------------------------------------


@pytest.fixture
def server(store_server):
    return store_server


@pytest.fixture
async def ada_room(connect_user):
    room = ChatRoom(connection=connect_user("ada"), room="lobby")
    yield room
    await room.stop()


@pytest.fixture
def bob(connect_user):
    return connect_user("bob")


async def test_shows_history_then_live_messages(server, ada_room, bob):
    await server.ctx.chat.post("lobby", "bob", "Bob", "from before")
    await ada_room.start()
    assert "from before" in ada_room.html
    bob_room = await bob.join_room("lobby")
    await bob_room.post("<b>live</b>")
    await until(lambda: "&lt;b&gt;live&lt;/b&gt;" in ada_room.html)
    await until(lambda: "Bob joined #lobby" in ada_room.html)


async def test_send_posts_and_clears_the_input(ada_room, bob):
    await ada_room.start()
    bob_room = await bob.join_room("lobby")
    ada_room.input.value_input = "hello from the input"
    sent = await ada_room.send()
    assert sent is not None and sent.user_name == "Ada"
    assert ada_room.input.value_input == "" and ada_room.error == ""
    await until(lambda: sent.id in bob_room.messages)
    assert await ada_room.send("   ") is None  # blank: nothing to send


async def test_enter_while_the_room_is_being_joined_sends_once_it_is(ada_room, monkeypatch):
    connection, join_room = ada_room.connection, ada_room.connection.join_room
    joining, go_on = asyncio.Event(), asyncio.Event()

    async def slow_join(*args, **kwargs):
        joining.set()
        await go_on.wait()
        return await join_room(*args, **kwargs)

    monkeypatch.setattr(connection, "join_room", slow_join)
    starting = asyncio.ensure_future(ada_room.start())
    await asyncio.wait_for(joining.wait(), 5)  # joining the lobby, not in it yet
    ada_room.input.value_input = "typed before the join finished"
    sending = asyncio.ensure_future(ada_room.send())
    await asyncio.sleep(0.05)
    assert not sending.done()  # waits for the room instead of dropping the text
    go_on.set()
    await starting
    sent = await asyncio.wait_for(sending, 5)
    assert sent is not None and sent.room == "lobby" and ada_room.input.value_input == ""


async def test_enter_before_start_keeps_the_text_and_says_why(ada_room):
    ada_room.input.value_input = "too early"
    assert await ada_room.send() is None
    assert ada_room.error.startswith("Not sent: not in a room")
    assert ada_room.input.value_input == "too early"


async def test_a_refused_message_keeps_the_text_and_says_why(ada_room):
    await ada_room.start()
    ada_room.input.value_input = "x" * 5000  # over the store's text limit
    assert await ada_room.send() is None
    assert ada_room.error.startswith("Not sent:")
    assert ada_room.input.value_input == "x" * 5000
    assert "Not sent" in ada_room.error_line.object


async def test_typing_in_the_input_shows_on_the_other_side(ada_room, bob):
    await ada_room.start()
    bob_room = await bob.join_room("lobby")
    bob_room_typists: list[str] = []
    bob_room.on_activity(lambda kind, user_id, name: bob_room_typists.append(f"{kind}:{name}"))
    ada_room.input.value_input = "h"
    await until(lambda: "typing:Ada" in bob_room_typists)

    await bob_room.typing()
    await until(lambda: ada_room.typing_indicator.text == "Bob is typing…")
    await bob_room.post("sent")
    await until(lambda: ada_room.typing_indicator.text == "")


async def test_switching_rooms_leaves_the_old_one(ada_room, bob):
    await ada_room.start()
    bob_room = await bob.join_room("lobby")
    ada_room.selector.options = [*ada_room.selector.options, "ops"]
    ada_room.selector.value = "ops"
    await until(lambda: ada_room.session is not None and ada_room.session.room == "ops")
    assert "You joined #ops" in ada_room.html and "ops" in ada_room.rooms
    await until(lambda: set(bob_room.members) == {"bob"})  # Ada left the lobby


@pytest.mark.parametrize("name", ["bad room", "Ops Room ✓", "r" * 200, "a/b", "<script>"])
async def test_an_invalid_room_name_is_refused_and_one_stays_in_the_room(ada_room, bob, name):
    await ada_room.start()
    await until(lambda: ada_room.session is not None)
    lobby = ada_room.session
    ada_room.new_room.value_input = name
    ada_room.new_room.param.trigger("enter_pressed")
    await until(lambda: ada_room.error.startswith(f"Cannot join #{name}: a room name is 1 to"))
    # Still in #lobby, shown as such, and the name is kept in the box to be corrected.
    assert ada_room.session is lobby and ada_room.room == "lobby"
    assert ada_room.selector.value == "lobby" and name not in ada_room.selector.options
    assert ada_room.input.placeholder == "Message #lobby"
    assert ada_room.new_room.value_input == name
    ada_room.input.value_input = "still here"
    assert (await ada_room.send()) is not None
    # Set from code, the same name is refused the same way.
    ada_room.room = name
    assert ada_room.room == "lobby" and ada_room.session is lobby
    assert ada_room.error.startswith(f"Cannot join #{name}:")


async def test_a_room_the_server_refuses_keeps_one_in_the_current_room(server, ada_room):
    await ada_room.start()
    await until(lambda: ada_room.session is not None)
    lobby = ada_room.session
    # A valid name the server cannot serve: its store is down, so the history read fails.
    await server.store.close()
    try:
        ada_room.room = "ops"
        await until(lambda: ada_room.error.startswith("Cannot join #ops: the message store is"))
    finally:
        await server.store.open()
    assert ada_room.session is lobby and ada_room.room == "lobby"
    assert ada_room.selector.value == "lobby"


async def test_a_new_room_appears_in_everyones_list(server, ada_room, connect_user):
    bobs_room = ChatRoom(connection=connect_user("bob"), room="lobby")
    try:
        await ada_room.start()
        await bobs_room.start()
        assert "design" not in bobs_room.selector.options
        ada_room.new_room.value_input = "design"
        ada_room.new_room.param.trigger("enter_pressed")
        await until(lambda: ada_room.session is not None and ada_room.session.room == "design")
        # A room exists once it holds a message.
        await ada_room.send("first words in #design")
        await until(lambda: "design" in bobs_room.selector.options)
        assert bobs_room.room == "lobby"  # listed, not joined
        # Only the first message announces it.
        published = server.hub.stats().published
        await ada_room.send("second words")
        await until(lambda: server.hub.stats().published == published + 1)
    finally:
        await bobs_room.stop()


async def test_a_message_over_the_limit_is_refused_with_its_length_not_cut(ada_room):
    await ada_room.start()
    await until(lambda: ada_room.session is not None)
    text = "x" * (MAX_TEXT_LENGTH + 1)
    assert ada_room.input.max_length > MAX_TEXT_LENGTH  # the browser does not cut it first
    ada_room.input.value_input = text
    assert await ada_room.send() is None
    assert ada_room.error == (
        f"Not sent: the message has {MAX_TEXT_LENGTH + 1:,} characters; "
        f"the limit is {MAX_TEXT_LENGTH:,}."
    )
    assert ada_room.input.value_input == text  # kept, to be shortened
    ada_room.input.value_input = text[:MAX_TEXT_LENGTH]
    assert await ada_room.send() is not None and ada_room.error == ""


async def test_a_server_without_chat_is_a_clear_error():
    srv = DashboardServer(port=0)  # no store: no rooms
    await srv.start()
    token = issue_user_token(srv.ctx.app.secret, "ada", "Ada")
    connection = UserConnection(srv.url, srv.ctx.app.key, token)
    try:
        room = ChatRoom(connection=connection)
        await room.start()
        assert room.error.startswith("Chat is unavailable")
    finally:
        await connection.aclose()
        await srv.stop()


def test_a_connection_is_required():
    with pytest.raises(TypeError, match="needs a connection"):
        ChatRoom()
