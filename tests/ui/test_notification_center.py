"""NotificationCenter and its markup, against a real server with a real SQLite store."""

from __future__ import annotations

import pytest
from panel.io.notifications import NotificationArea

from dashboard.client.connection import UserConnection
from dashboard.core.user_tokens import issue_user_token
from dashboard.server import DashboardServer
from dashboard.server.pusher_ws import close_all
from dashboard.store.notifications import Notification
from dashboard.ui.notification_render import (
    relative_time,
    render_badge,
    render_notification,
    safe_link,
    toast_text,
)
from dashboard.ui.notifications import NotificationCenter
from tests.waiting import until


def notification(**fields: object) -> Notification:
    values: dict[str, object] = {
        "id": 1,
        "user": "ada",
        "type": "info",
        "title": "Deploy finished",
        "message": "",
        "link": None,
        "data": None,
        "created": 1_700_000_000.0,
        "read": False,
    }
    values.update(fields)
    return Notification(**values)  # type: ignore[arg-type]


# -- markup -----------------------------------------------------------------------------


def test_nothing_in_a_notification_becomes_markup():
    html = render_notification(
        notification(title="<script>x()</script>", message="<img src=x onerror=y()>")
    )
    assert "<script>" not in html and "<img" not in html
    assert "&lt;script&gt;" in html and "&lt;img" in html
    assert "&lt;b&gt;" in toast_text(notification(title="<b>bold</b>"))


@pytest.mark.parametrize(
    "link, shown",
    [
        ("https://ci.example.com/run/1", True),
        ("/apps/deploys", True),
        ("javascript:alert(1)", False),
        ("//evil.example.com", False),
        ("data:text/html,<b>", False),
        # Stored before links were judged as a browser parses them: http://evil.example/x.
        ("/\\evil.example/x", False),
        (" javascript:alert(1)", False),
        (None, False),
    ],
)
def test_only_web_links_and_same_site_paths_are_links(link, shown):
    assert (safe_link(link) is not None) is shown
    assert ("<a href" in render_notification(notification(link=link))) is shown


def test_a_link_is_rendered_as_judged():
    html = render_notification(notification(link='https://x.example/"><b>'))
    assert 'href="https://x.example/%22%3E%3Cb%3E"' in html and "<b>" not in html


@pytest.mark.parametrize(
    "age, text",
    [
        (0, "just now"),
        (44, "just now"),
        (90, "2 min ago"),
        (7200, "2 h ago"),
        (3 * 86400, "3 d ago"),
    ],
)
def test_relative_time(age, text):
    assert relative_time(1000.0, now=1000.0 + age) == text


def test_read_and_unread_entries_and_the_badge_differ():
    assert "notice-unread" in render_notification(notification())
    assert "notice-read" in render_notification(notification(read=True))
    assert 'data-count="0"' in render_badge(0) and ">99+<" in render_badge(150)


# -- the component ----------------------------------------------------------------------


@pytest.fixture
def server(store_server):
    return store_server


@pytest.fixture
async def centers(connect_user):
    made: list[NotificationCenter] = []

    async def make(user_id: str) -> NotificationCenter:
        center = NotificationCenter(connection=connect_user(user_id), toasts=NotificationArea())
        await center.start()
        made.append(center)
        return center

    yield make
    for center in made:
        await center.stop()


def toasts(center: NotificationCenter) -> list[str]:
    return [toast.message for toast in center.toasts.notifications]


async def test_stored_then_live_each_toasted_once(server, centers):
    service = server.ctx.notifications
    await service.notify("ada", "while you were away", type="warning")
    await service.notify("bob", "not for ada")
    ada = await centers("ada")
    assert [n.title for n in ada.notifications] == ["while you were away"]
    assert ada.unread == 1 and toasts(ada) == []  # waiting ones are listed, not toasted

    await service.notify("*", "deploy <b>failed</b>", "api v2", type="error")
    await until(lambda: ada.unread == 2)
    assert toasts(ada) == ["deploy &lt;b&gt;failed&lt;/b&gt;: api v2"]
    assert ada.toasts.notifications[0].notification_type == "error"
    assert 'data-count="2"' in ada.badge.object

    close_all(server.ctx)  # every socket reconnects; the inbox re-reads
    await service.notify("ada", "after the reconnect")
    await until(lambda: len(toasts(ada)) == 2)
    assert toasts(ada)[-1] == "after the reconnect"
    await until(lambda: ada.unread == 3)  # the badge renders a moment after the toast


async def test_marking_read_reaches_the_users_other_sessions(server, centers):
    service = server.ctx.notifications
    for n in range(3):
        await service.notify("ada", f"job {n} done", type="success")
    tab1, tab2 = await centers("ada"), await centers("ada")
    first = tab1.notifications[-1].id
    await tab1.mark_read(first)
    await until(lambda: tab2.unread == 2)
    assert tab2.inbox is not None and tab2.inbox.items[first].read
    await tab2.mark_all_read()
    await until(lambda: tab1.unread == 0)
    assert all(n.read for n in tab1.notifications) and tab1.mark_all.disabled


async def test_a_server_without_a_store_is_a_clear_error():
    srv = DashboardServer(port=0)
    await srv.start()
    token = issue_user_token(srv.ctx.app.secret, "ada", "Ada")
    connection = UserConnection(srv.url, srv.ctx.app.key, token)
    try:
        center = NotificationCenter(connection=connection, toasts=None)
        await center.start()
        assert center.error.startswith("Notifications are unavailable")
    finally:
        await connection.aclose()
        await srv.stop()
