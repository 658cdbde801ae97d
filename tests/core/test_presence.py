"""Presence bookkeeping: users, not sockets, are members; Pusher's limits apply."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from dashboard.core.presence import PresenceChannelFull, PresenceError, PresenceRoster
from dashboard.core.pusher_frames import parse_channel_data

CH = "presence-room"


def test_first_socket_adds_the_member_and_second_tab_is_silent():
    roster = PresenceRoster()
    assert roster.join(CH, "1.1", "ada", {"name": "Ada"}) is True
    assert roster.join(CH, "1.2", "ada", {"name": "Ada, 2nd tab"}) is False
    assert roster.members(CH) == {"ada": {"name": "Ada"}}  # first socket's user_info is kept
    assert roster.sockets(CH, "ada") == {"1.1", "1.2"}
    assert roster.user_count(CH) == 1


def test_only_the_last_tab_leaving_removes_the_member():
    roster = PresenceRoster()
    roster.join(CH, "1.1", "ada")
    roster.join(CH, "1.2", "ada")
    assert roster.leave(CH, "1.1") is None
    assert roster.members(CH) == {"ada": None}
    assert roster.leave(CH, "1.2") == "ada"
    assert roster.members(CH) == {} and roster.channels() == []
    assert roster.leave(CH, "1.2") is None  # already gone: nothing to broadcast twice


def test_leave_of_unknown_socket_or_channel():
    roster = PresenceRoster()
    roster.join(CH, "1.1", "ada")
    assert roster.leave("presence-other", "1.1") is None
    assert roster.leave(CH, "9.9") is None
    assert roster.members(CH) == {"ada": None}


def test_snapshot_has_the_subscription_succeeded_shape_in_join_order():
    roster = PresenceRoster()
    roster.join(CH, "1.1", "b", {"n": 2})
    roster.join(CH, "1.2", "a", {"n": 1})
    roster.join(CH, "1.3", "b", None)
    assert roster.snapshot(CH) == {
        "presence": {"ids": ["b", "a"], "hash": {"b": {"n": 2}, "a": {"n": 1}}, "count": 2}
    }
    assert roster.snapshot("presence-empty") == {"presence": {"ids": [], "hash": {}, "count": 0}}


def test_joining_twice_with_one_socket():
    roster = PresenceRoster()
    assert roster.join(CH, "1.1", "ada") is True
    assert roster.join(CH, "1.1", "ada") is False  # idempotent
    with pytest.raises(PresenceError, match="already on presence-room as 'ada'"):
        roster.join(CH, "1.1", "bob")
    assert roster.leave(CH, "1.1") == "ada"


def test_100_member_limit_counts_users_not_sockets():
    roster = PresenceRoster()
    for i in range(100):
        assert roster.join(CH, f"{i}.1", f"user-{i}")
    with pytest.raises(PresenceChannelFull, match="already has 100 members; the limit is 100"):
        roster.join(CH, "100.1", "user-100")
    assert roster.user_count(CH) == 100 and roster.user_id(CH, "100.1") is None
    assert roster.join(CH, "0.2", "user-0") is False  # a second tab of a member is fine
    roster.join("presence-other", "100.1", "user-100")  # the limit is per channel
    roster.leave(CH, "5.1")
    assert roster.join(CH, "100.1", "user-100") is True


def test_user_info_and_user_id_limits_come_from_channel_data():
    # The roster stores what parse_channel_data accepted; the limits live there.
    user_id, info = parse_channel_data(
        '{"user_id":"' + "u" * 128 + '","user_info":"' + "x" * 1022 + '"}'
    )
    roster = PresenceRoster()
    assert roster.join(CH, "1.1", user_id, info)
    assert roster.members(CH) == {"u" * 128: "x" * 1022}


def test_leave_all_reports_only_users_that_are_gone():
    roster = PresenceRoster()
    roster.join("presence-a", "1.1", "ada")
    roster.join("presence-b", "1.1", "ada")
    roster.join("presence-b", "1.2", "ada")
    roster.join("presence-c", "1.1", "ada")
    roster.join("presence-c", "1.3", "bob")
    assert sorted(roster.leave_all("1.1")) == [("presence-a", "ada"), ("presence-c", "ada")]
    assert roster.members("presence-b") == {"ada": None}
    assert roster.members("presence-c") == {"bob": None}
    assert roster.leave_all("1.1") == []


def test_user_id_of_a_socket_for_client_events():
    roster = PresenceRoster()
    roster.join(CH, "1.1", "ada")
    assert roster.user_id(CH, "1.1") == "ada"
    assert roster.user_id(CH, "1.2") is None and roster.user_id("presence-x", "1.1") is None


def test_members_is_a_copy():
    roster = PresenceRoster()
    roster.join(CH, "1.1", "ada")
    roster.members(CH)["mallory"] = None
    assert roster.members(CH) == {"ada": None}


SOCKETS = [f"{i}.0" for i in range(5)]
USERS = ["u1", "u2", "u3"]
CHANNELS = ["presence-a", "presence-b"]


class RosterMachine(RuleBasedStateMachine):
    """Random joins, leaves and disconnects against a naive model of who is where."""

    def __init__(self) -> None:
        super().__init__()
        self.roster = PresenceRoster(max_members=2)
        self.model: dict[tuple[str, str], str] = {}  # (channel, socket) -> user
        self.added: dict[str, int] = dict.fromkeys(CHANNELS, 0)
        self.removed: dict[str, int] = dict.fromkeys(CHANNELS, 0)

    def users(self, channel: str) -> set[str]:
        return {u for (c, _), u in self.model.items() if c == channel}

    @rule(
        channel=st.sampled_from(CHANNELS),
        socket=st.sampled_from(SOCKETS),
        user=st.sampled_from(USERS),
    )
    def join(self, channel, socket, user):
        before = self.users(channel)
        current = self.model.get((channel, socket))
        try:
            added = self.roster.join(channel, socket, user)
        except PresenceChannelFull:
            assert user not in before and len(before) == 2
            return
        except PresenceError:
            assert current is not None and current != user
            return
        assert added == (user not in before)
        self.model[(channel, socket)] = user
        self.added[channel] += added

    @rule(channel=st.sampled_from(CHANNELS), socket=st.sampled_from(SOCKETS))
    def leave(self, channel, socket):
        user = self.model.pop((channel, socket), None)
        removed = self.roster.leave(channel, socket)
        assert removed == (user if user is not None and user not in self.users(channel) else None)
        self.removed[channel] += removed is not None

    @rule(socket=st.sampled_from(SOCKETS))
    def disconnect(self, socket):
        expected = []
        for channel in CHANNELS:
            user = self.model.pop((channel, socket), None)
            if user is not None and user not in self.users(channel):
                expected.append((channel, user))
        removed = self.roster.leave_all(socket)
        assert sorted(removed) == sorted(expected)
        for channel, _ in removed:
            self.removed[channel] += 1

    @invariant()
    def matches_model(self):
        for channel in CHANNELS:
            members = self.roster.members(channel)
            assert set(members) == self.users(channel)
            # member_added minus member_removed broadcasts = the members a newcomer is shown.
            assert self.added[channel] - self.removed[channel] == len(members)
            snapshot = self.roster.snapshot(channel)["presence"]
            assert snapshot["count"] == len(snapshot["ids"]) == len(snapshot["hash"]) <= 2
            for user in members:
                sockets = self.roster.sockets(channel, user)
                assert sockets, f"{user} is a member of {channel} with no socket"
                assert sockets == {
                    s for (c, s), u in self.model.items() if c == channel and u == user
                }
        assert set(self.roster.channels()) == {c for c in CHANNELS if self.users(c)}
        for (channel, socket), user in self.model.items():
            assert self.roster.user_id(channel, socket) == user


TestRoster = RosterMachine.TestCase
TestRoster.settings = settings(max_examples=60, stateful_step_count=30, deadline=None)


@given(st.lists(st.tuples(st.sampled_from(SOCKETS), st.sampled_from(USERS)), max_size=20))
def test_everyone_leaving_removes_each_distinct_user_once(joins):
    roster = PresenceRoster()
    added: list[str] = []
    for socket, user in joins:
        try:
            if roster.join(CH, socket, user):
                added.append(user)
        except PresenceError:
            pass
    removed = [user for socket in SOCKETS for _, user in roster.leave_all(socket)]
    assert sorted(added) == sorted(removed) == sorted(set(added))
    assert roster.channels() == []
