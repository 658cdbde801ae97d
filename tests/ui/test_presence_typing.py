"""PresenceList and TypingIndicator: rendering, expiry on a real loop, and following a real
presence channel of a real DashboardServer through two real PusherClients."""

from __future__ import annotations

import asyncio
import html
import os
import pathlib
import re
import subprocess
import sys
import time
from collections.abc import Callable

import pytest

from dashboard.client import PresenceChannel, PusherClient, local_authorizer
from dashboard.core.typing import TYPING_TIMEOUT
from dashboard.server import DashboardServer
from dashboard.ui import PresenceList, TypingIndicator
from dashboard.ui.presence import (
    AVATAR_COLORS,
    MAX_ROWS,
    avatar_color,
    count_text,
    display_name,
    initials,
    render_presence,
)
from dashboard.ui.typing import render_typing

pytestmark = pytest.mark.timeout(30)

WAIT = 5.0
XSS = "<script>alert(1)</script>"
ROOT = pathlib.Path(__file__).resolve().parents[2]


async def wait_for(predicate: Callable[[], bool], timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


def user_ids(markup: str) -> list[str]:
    return [html.unescape(value) for value in re.findall(r'data-user-id="([^"]*)"', markup)]


# --- presence: pure helpers -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Ada Lovelace", "AL"),
        ("ada", "A"),
        ("ada byron lovelace", "AL"),
        ("  grace   hopper  ", "GH"),
        ("", "?"),
        ("   ", "?"),
        ("李小龙", "李"),
        ("李 小龙", "李小"),
        ("山田 太郎", "山太"),
        ("🦊", "🦊"),
        ("🦊 fox", "🦊F"),
        ("👍🏽 thumbs", "👍🏽T"),  # skin tone stays with its emoji
        ("👩‍💻 dev", "👩‍💻D"),  # ZWJ sequence stays whole
        ("🇫🇷 paris", "🇫🇷P"),  # a flag is two code points
        ("élodie Ño", "ÉÑ"),
        ("e\u0301lodie", "E\u0301"),  # combining accent kept with its letter
    ],
)
def test_initials(name, expected):
    assert initials(name) == expected


def test_avatar_color_is_stable_and_spread():
    assert avatar_color("u1") == avatar_color("u1")
    assert avatar_color("u1") in AVATAR_COLORS
    assert len({avatar_color(f"user-{i}") for i in range(200)}) >= len(AVATAR_COLORS) - 1


def test_avatar_color_is_the_same_in_another_process():
    # hash() is salted per process; the colour must not be, or it would change per page load.
    code = "from dashboard.ui.presence import avatar_color; print(avatar_color('ada'), end='')"
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONHASHSEED": "12345"},
    )
    assert result.stdout == avatar_color("ada")


@pytest.mark.parametrize(
    ("info", "expected"),
    [
        ({"name": "Ada"}, "Ada"),
        ({"name": "  Ada   Lovelace "}, "Ada Lovelace"),
        ({"name": ""}, "u1"),
        ({"name": 42}, "u1"),
        ({}, "u1"),
        (None, "u1"),
        ("Ada", "u1"),
        ({"name": "x" * 500}, "x" * 63 + "…"),
    ],
)
def test_display_name(info, expected):
    assert display_name("u1", info) == expected


@pytest.mark.parametrize(
    ("count", "text"), [(0, "0 people here"), (1, "1 person here"), (3, "3 people here")]
)
def test_count_text(count, text):
    assert count_text(count) == text


# --- presence: rendering ----------------------------------------------------------------------


def test_script_name_and_id_are_escaped():
    evil_id = '"><img src=x onerror=alert(1)>'
    markup = render_presence({evil_id: {"name": XSS}}, title=XSS)
    assert "<script>" not in markup and "<img" not in markup
    assert html.escape(XSS) in markup
    assert user_ids(markup) == [evil_id]


def test_me_first_with_you_then_by_name_case_insensitively():
    members = {
        "u1": {"name": "bob"},
        "u2": {"name": "Zed"},
        "u3": {"name": "ada"},
        "u4": {"name": "Carol"},
        "u5": None,
    }
    view = PresenceList(members=members, me="u2")
    assert user_ids(view.html) == ["u2", "u3", "u1", "u4", "u5"]
    assert view.html.count("(you)") == 1
    assert re.search(r'data-user-id="u2".*?Zed <span[^>]*>\(you\)', view.html)
    assert view.count == 5 and "5 people here" in view.html
    assert 'class="dashboard-presence"' in view.html


def test_one_person_and_avatars():
    view = PresenceList(members={"u1": {"name": "Ada Lovelace"}})
    assert "1 person here" in view.html and view.count == 1
    assert ">AL</span>" in view.html
    assert f"background:{avatar_color('u1')}" in view.html
    assert "(you)" not in view.html


def test_updates_when_members_change():
    view = PresenceList(members={"u1": {"name": "Ada"}}, me="u1", title="Room")
    view.members = {**view.members, "u2": {"name": "Bob"}}
    assert view.count == 2 and user_ids(view.html) == ["u1", "u2"]
    assert "Room" in view.html
    view.me = "u2"
    assert user_ids(view.html) == ["u2", "u1"]
    view.members = {}
    assert view.count == 0 and user_ids(view.html) == []


def test_rows_are_bounded():
    members = {f"u{i:04}": {"name": f"N{i:04}"} for i in range(MAX_ROWS + 7)}
    markup = render_presence(members)
    assert len(user_ids(markup)) == MAX_ROWS
    assert "and 7 more" in markup and f"{MAX_ROWS + 7} people here" in markup


# --- typing indicator -------------------------------------------------------------------------


def test_typing_render_escapes_and_keeps_its_place():
    assert render_typing("") == '<div class="dashboard-typing" aria-live="polite"></div>'
    indicator = TypingIndicator()
    assert indicator.timeout == TYPING_TIMEOUT
    indicator.typing("u1", XSS)
    assert "<script>" not in indicator.html
    assert html.escape(XSS) in indicator.html
    assert indicator.text == f"{XSS} is typing…"


def test_typing_without_a_loop():
    indicator = TypingIndicator(timeout=0.05)
    indicator.typing("u1", "Ada")
    indicator.typing("u2", "Bob")
    assert indicator.text == "Ada and Bob are typing…"
    indicator.typing("u3", "Cy")
    assert indicator.text == "3 people are typing…"
    time.sleep(0.1)
    assert indicator.text == "3 people are typing…"  # no timer without a loop...
    indicator.refresh()
    assert indicator.text == "" and indicator.html == render_typing("")  # ...refresh() does


def test_very_long_names_are_cut():
    indicator = TypingIndicator()
    indicator.typing("u1", "A" * 1000)
    assert len(indicator.text) < 60 and indicator.text.endswith("… is typing…")


async def test_typing_expires_by_itself():
    indicator = TypingIndicator(timeout=0.2)
    start = time.monotonic()
    indicator.typing("u1", "Ada")
    assert indicator.text == "Ada is typing…"
    await asyncio.sleep(0.1)
    indicator.typing("u2", "Bob")
    assert indicator.text == "Ada and Bob are typing…"
    await wait_for(lambda: indicator.text == "Bob is typing…", timeout=1.0)
    assert time.monotonic() - start >= 0.19
    await wait_for(lambda: indicator.text == "", timeout=1.0)
    assert time.monotonic() - start >= 0.29
    assert indicator._timer is None  # nothing left to wake up for


async def test_refresh_keeps_someone_typing():
    indicator = TypingIndicator(timeout=0.2)
    indicator.typing("u1", "Ada")
    for _ in range(4):
        await asyncio.sleep(0.1)
        indicator.typing("u1", "Ada")
        assert indicator.text == "Ada is typing…"
    await wait_for(lambda: indicator.text == "", timeout=1.0)


async def test_stopped_and_clear_act_at_once():
    indicator = TypingIndicator(timeout=5.0)
    indicator.typing("u1", "Ada")
    indicator.typing("u2", "Bob")
    indicator.stopped("u1")
    assert indicator.text == "Bob is typing…" and indicator.names == ["Bob"]
    indicator.stopped("u2")
    assert indicator.text == "" and indicator._timer is None
    indicator.typing("u3", "Cy")
    indicator.clear()
    assert indicator.text == "" and indicator._timer is None


async def test_shorter_timeout_applies_at_once():
    indicator = TypingIndicator(timeout=10.0)
    indicator.typing("u1", "Ada")
    indicator.timeout = 0.1
    await wait_for(lambda: indicator.text == "", timeout=1.0)


# --- following a real presence channel ---------------------------------------------------------


@pytest.fixture
async def server():
    srv = DashboardServer(port=0)
    await srv.start()
    yield srv
    await srv.stop()


async def test_follow_a_real_presence_channel(server):
    key, secret = server.ctx.app.key, server.ctx.app.secret
    host = f"127.0.0.1:{server.port}"
    ada = PusherClient(
        host, key, authorizer=local_authorizer(key, secret, "u-ada", {"name": "Ada"})
    )
    bob = PusherClient(host, key, authorizer=local_authorizer(key, secret, "u-bob", {"name": XSS}))
    carol = PusherClient(host, key, authorizer=local_authorizer(key, secret, "u-carol"))
    view = PresenceList()
    try:
        # Follow a channel whose subscription has not completed: the list catches up by itself.
        subscribing = asyncio.create_task(ada.subscribe("presence-dashboard"))
        await asyncio.sleep(0)  # subscribe() registers the channel before its first await
        channel = ada.channels["presence-dashboard"]
        assert isinstance(channel, PresenceChannel) and not channel.subscribed
        unfollow = view.follow(channel)
        assert view.count == 0
        assert await asyncio.wait_for(subscribing, WAIT) is channel
        await wait_for(lambda: view.count == 1)
        assert view.me == "u-ada"
        assert user_ids(view.html) == ["u-ada"] and "(you)" in view.html

        await asyncio.wait_for(bob.subscribe("presence-dashboard"), WAIT)
        await wait_for(lambda: view.count == 2)
        assert user_ids(view.html) == ["u-ada", "u-bob"]
        assert "2 people here" in view.html
        assert "<script>" not in view.html and html.escape(XSS) in view.html

        await asyncio.wait_for(bob.aclose(), WAIT)
        await wait_for(lambda: view.count == 1)
        assert user_ids(view.html) == ["u-ada"] and "1 person here" in view.html

        # Unfollowed: the channel still changes, the list no longer does.
        unfollow()
        await asyncio.wait_for(carol.subscribe("presence-dashboard"), WAIT)
        await wait_for(lambda: len(channel.members) == 2)
        assert view.count == 1 and user_ids(view.html) == ["u-ada"]
    finally:
        for client in (carol, bob, ada):
            await asyncio.wait_for(client.aclose(), WAIT)


async def test_follow_an_already_subscribed_channel_copies_it_now(server):
    key, secret = server.ctx.app.key, server.ctx.app.secret
    client = PusherClient(
        f"127.0.0.1:{server.port}",
        key,
        authorizer=local_authorizer(key, secret, "u1", {"name": "Ada Lovelace"}),
    )
    try:
        channel = await asyncio.wait_for(client.subscribe("presence-dashboard"), WAIT)
        view = PresenceList(members={"stale": None}, me="stale")
        view.follow(channel)
        assert view.me == "u1" and view.count == 1
        assert user_ids(view.html) == ["u1"] and ">AL</span>" in view.html
    finally:
        await asyncio.wait_for(client.aclose(), WAIT)
