"""One presence suite for every implementation: memory (one process) and Redis (many).

A *peer* is another process on the same rosters: for memory, the process itself (there is
only one); for Redis, another :class:`RedisPresence` on the same prefix. Whatever the
implementation, a user is one member however many sockets and processes they use,
``member_added`` is told once, on their first socket, and ``member_removed`` once, on their
last, to every process.
"""

from __future__ import annotations

import asyncio

import pytest

from dashboard.core.presence import PresenceChannelFull, PresenceError
from dashboard.hub.presence import MemoryPresence, Presence, RosterChange
from dashboard.hub.redis_presence import RedisPresence
from tests.redis_server import delete_prefix, unique_prefix
from tests.redis_support import REDIS_URL, connect_or_skip
from tests.waiting import until

CH = "presence-room"


class Node:
    """A presence and the changes its process was told."""

    def __init__(self, presence: Presence) -> None:
        self.presence = presence
        self.changes: list[RosterChange] = []

    def told(self, channel: str = CH) -> list[tuple[str, bool]]:
        return [(c.user_id, c.added) for c in self.changes if c.channel == channel]


@pytest.fixture(params=["memory", "redis"])
async def nodes(request):
    """``await nodes(n, max_members=100)``: n processes sharing rosters (see the module doc)."""
    made: list[Node] = []
    kind = request.param
    client = await connect_or_skip() if kind == "redis" else None
    prefix = unique_prefix()

    async def make(count: int = 1, max_members: int = 100) -> list[Node]:
        if kind == "memory":
            presence: Presence = MemoryPresence(max_members)
            node = Node(presence)
            await presence.start(node.changes.append)
            made.append(node)
            return [node] * count
        for _ in range(count):
            presence = RedisPresence(client, prefix=prefix, max_members=max_members)
            node = Node(presence)
            await presence.start(node.changes.append)
            made.append(node)
        return made[-count:]

    make.kind = kind  # type: ignore[attr-defined]
    yield make
    for node in made:
        await node.presence.stop()
    if client is not None:
        await delete_prefix(REDIS_URL, prefix)
        await client.aclose()


async def settle() -> None:
    """Let published changes reach every process (Redis PUB/SUB is asynchronous)."""
    for _ in range(5):
        await asyncio.sleep(0.02)


async def test_first_socket_adds_the_member_and_a_second_tab_is_silent(nodes):
    [a] = await nodes()
    joined = await a.presence.join(CH, "1.1", "ada", {"name": "Ada"})
    assert joined.added and joined.members == {"ada": {"name": "Ada"}}
    again = await a.presence.join(CH, "1.2", "ada", {"name": "Ada, 2nd tab"})
    assert not again.added and again.members == {"ada": {"name": "Ada"}}
    assert again.seq == joined.seq  # nothing changed in between
    await until(lambda: a.told() == [("ada", True)])
    [change] = a.changes
    assert change.socket_id == "1.1" and change.user_info == {"name": "Ada"}
    assert change.seq == joined.seq
    await settle()
    assert a.told() == [("ada", True)]


async def test_only_the_last_socket_leaving_removes_the_member(nodes):
    [a] = await nodes()
    await a.presence.join(CH, "1.1", "ada")
    await a.presence.join(CH, "1.2", "ada")
    a.presence.leave(CH, "1.1")
    await settle()
    assert await a.presence.members(CH) == {"ada": None}
    a.presence.leave(CH, "1.2")
    await until(lambda: a.told() == [("ada", True), ("ada", False)])
    assert await a.presence.members(CH) == {} and await a.presence.user_count(CH) == 0
    a.presence.leave(CH, "1.2")  # already gone: nothing is told twice
    a.presence.leave("presence-other", "9.9")
    await settle()
    assert a.told() == [("ada", True), ("ada", False)]


async def test_a_users_sockets_on_two_processes_are_one_member(nodes):
    a, b = await nodes(2)
    assert (await a.presence.join(CH, "1.1", "ada", {"n": 1})).added
    on_b = await b.presence.join(CH, "1.2", "ada", {"n": 2})
    assert not on_b.added and on_b.members == {"ada": {"n": 1}}
    assert (await b.presence.join(CH, "2.1", "bob")).added
    assert list(await a.presence.members(CH)) == ["ada", "bob"]  # join order
    assert await b.presence.user_count(CH) == 2
    a.presence.leave(CH, "1.1")
    await settle()
    assert list(await b.presence.members(CH)) == ["ada", "bob"]
    b.presence.leave(CH, "1.2")
    expected = [("ada", True), ("bob", True), ("ada", False)]
    for node in {id(a): a, id(b): b}.values():  # each process is told each change once
        await until(lambda node=node: node.told() == expected)
    seqs = [change.seq for change in b.changes]
    assert seqs == sorted(seqs) and len(set(seqs)) == 3


async def test_the_joining_socket_is_named_only_on_its_own_process(nodes):
    a, b = await nodes(2)
    await b.presence.join(CH, "7.7", "bob")
    await a.presence.join(CH, "1.1", "ada")
    await until(lambda: ("ada", True) in b.told() and ("ada", True) in a.told())
    [on_a] = [c for c in a.changes if c.user_id == "ada"]
    [on_b] = [c for c in b.changes if c.user_id == "ada"]
    assert on_a.socket_id == "1.1"
    assert on_b.socket_id == ("1.1" if a is b else None)


async def test_changes_after_a_join_have_higher_sequence_numbers(nodes):
    a, b = await nodes(2)
    joined = await a.presence.join(CH, "1.1", "ada")
    await b.presence.join(CH, "2.1", "bob")
    await until(lambda: ("bob", True) in a.told())
    [bob] = [c for c in a.changes if c.user_id == "bob"]
    assert bob.seq > joined.seq


async def test_a_full_channel_refuses_new_users_but_not_new_sockets(nodes):
    a, b = await nodes(2, max_members=2)
    await a.presence.join(CH, "1.1", "ada")
    await b.presence.join(CH, "2.1", "bob")
    with pytest.raises(PresenceChannelFull, match="limit is 2"):
        await b.presence.join(CH, "3.1", "cy")
    assert not (await b.presence.join(CH, "1.2", "ada")).added
    assert b.presence.user_id(CH, "3.1") is None
    assert list(await a.presence.members(CH)) == ["ada", "bob"]


async def test_one_socket_is_one_user_per_channel(nodes):
    [a] = await nodes()
    await a.presence.join(CH, "1.1", "ada")
    assert not (await a.presence.join(CH, "1.1", "ada")).added  # idempotent
    with pytest.raises(PresenceError, match="already on presence-room as 'ada'"):
        await a.presence.join(CH, "1.1", "bob")
    assert a.presence.user_id(CH, "1.1") == "ada"


async def test_leave_all_removes_a_closed_socket_everywhere(nodes):
    [a] = await nodes()
    await a.presence.join(CH, "1.1", "ada")
    await a.presence.join("presence-b", "1.1", "ada")
    await a.presence.join("presence-b", "2.1", "bob")
    a.presence.leave_all("1.1")
    await until(lambda: ("ada", False) in a.told() and ("ada", False) in a.told("presence-b"))
    assert await a.presence.members(CH) == {}
    assert await a.presence.members("presence-b") == {"bob": None}
    assert a.presence.user_id("presence-b", "1.1") is None


async def test_user_info_round_trips_as_json(nodes):
    a, b = await nodes(2)
    info = {"name": "Zoë", "tags": [], "n": 12345678901234567, "nested": {"x": [1, None]}}
    await a.presence.join(CH, "1.1", "ada", info)
    assert (await b.presence.members(CH)) == {"ada": info}
    await until(lambda: a.changes)
    assert a.changes[0].user_info == info
