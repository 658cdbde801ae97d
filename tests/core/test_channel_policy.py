"""Who may follow which private and presence channel: the built-in rules, configured rules,
the application's callable, and default deny."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dashboard.core.channel_policy import ChannelPolicy, ChannelRule, InvalidChannelRule
from dashboard.core.user_tokens import UserIdentity

ADA, BOB = UserIdentity("ada", "Ada"), UserIdentity("bob")
GUEST = UserIdentity("guest-1", "Visitor", guest=True)


@pytest.mark.parametrize(
    "user, channel, allowed",
    [
        (None, "metrics", True),  # public: not the policy's business
        (None, "private-notifications", False),  # anonymous never gets a protected one
        (None, "presence-dashboard", False),
        (ADA, "private-user-ada", True),
        (ADA, "private-user-bob", False),
        (ADA, "private-user-ada-admin", False),  # a prefix of one's own id is someone else's
        (ADA, "private-notifications", True),
        (GUEST, "private-notifications", True),
        (ADA, "presence-dashboard", True),
        (ADA, "presence-room-lobby", True),
        (ADA, "presence-room-", False),  # no room
        (GUEST, "private-team-secrets", False),  # the example: default deny
        (ADA, "private-team-secrets", False),
        (ADA, "presence-ops", False),
        (ADA, "private-encrypted-x", False),
    ],
)
def test_built_in_rules_and_default_deny(user, channel, allowed):
    assert ChannelPolicy().allows(user, channel) is allowed


def test_rules_name_users_or_everyone():
    policy = ChannelPolicy(
        [ChannelRule.parse("private-team-*=ada, bob"), ChannelRule.parse("presence-ops=*")]
    )
    assert policy.allows(ADA, "private-team-x") and policy.allows(BOB, "private-team-")
    assert not policy.allows(GUEST, "private-team-x")
    assert not policy.allows(ADA, "private-teams")  # the pattern matches whole names only
    assert policy.allows(GUEST, "presence-ops") and not policy.allows(None, "presence-ops")
    assert not policy.allows(ADA, "presence-ops-2")


def test_no_rule_widens_another_users_channel():
    policy = ChannelPolicy([ChannelRule.parse("private-*=*")], authorize=lambda u, c: True)
    assert policy.allows(ADA, "private-anything")
    assert not policy.allows(ADA, "private-user-bob")
    assert policy.refusal(ADA, "private-user-bob") == "private-user-bob belongs to another user"


def test_the_application_callable_decides_what_rules_do_not():
    asked = []

    def authorize(user, channel):
        asked.append((user.user_id, channel))
        return channel == "private-billing" and user.user_id == "ada"

    policy = ChannelPolicy([ChannelRule.parse("private-team=*")], authorize)
    assert policy.allows(ADA, "private-billing") and not policy.allows(BOB, "private-billing")
    assert policy.allows(BOB, "private-team")  # the rule decided; the callable was not asked
    assert ("bob", "private-team") not in asked


def test_a_failing_callable_refuses():
    def authorize(user, channel):
        raise RuntimeError("bug in the application's rule")

    assert not ChannelPolicy(authorize=authorize).allows(ADA, "private-x")


@pytest.mark.parametrize(
    "text",
    ["private-team", "=ada", "private-team=", "private-team= , ", "team-*=ada", "private-a b=x"],
)
def test_malformed_rules_say_what_is_wrong(text):
    with pytest.raises(InvalidChannelRule, match="e.g."):
        ChannelRule.parse(text)


@given(st.text(alphabet="abc-*.", max_size=12), st.text(alphabet="abc-.", max_size=12))
def test_a_pattern_without_wildcards_matches_only_itself(pattern, channel):
    rule = ChannelRule(f"private-{pattern.replace('*', '')}", None)
    assert rule.matches(f"private-{channel}") is (pattern.replace("*", "") == channel)
