"""Who may subscribe to which ``private-`` and ``presence-`` channel: one rule, default deny.

The same :class:`ChannelPolicy` answers for every transport: ``GET /api/events`` asks it before
streaming a private channel, and ``POST /pusher/auth`` before signing a subscription for the
Pusher socket (which then only checks that signature). Public channels are not its business.

The rule, in order (the first step that decides, decides):

1. ``private-user-{id}``: user ``{id}`` only. No configured rule can widen it.
2. ``private-notifications``, ``presence-dashboard`` and ``presence-room-{room}`` (the
   dashboard's own channels): any identified user.
3. A configured :class:`ChannelRule` that matches the channel and names the user (or ``*``).
4. The application's own ``authorize(user, channel)`` callable, when one is given.
5. Otherwise: refused.

A ``ChannelRule`` is written ``PATTERN=USERS``: ``private-team-*=ada,bob`` lets ada and bob
into every channel starting ``private-team-``; ``presence-ops=*`` lets every identified user
into ``presence-ops``. ``*`` in the pattern stands for any run of characters; nothing else is
special, so a channel name (which cannot contain ``*``) matches only itself.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from .channels import (
    BROADCAST_CHANNEL,
    DASHBOARD_PRESENCE,
    ROOM_PRESENCE_PREFIX,
    USER_CHANNEL_PREFIX,
    ChannelKind,
    channel_kind,
)
from .errors import ValidationError
from .user_tokens import UserIdentity

log = logging.getLogger("dashboard.auth")

#: An application's own rule: ``authorize(user, channel) -> bool``.
Authorize = Callable[[UserIdentity, str], bool]

#: Stands for any identified user in a rule's user list, and any run of characters in a pattern.
WILDCARD = "*"

_PATTERN_RE = re.compile(r"(?:private|presence)-[A-Za-z0-9_\-=@,.;*]*")


class InvalidChannelRule(ValidationError):
    """A ``--allow-channel`` rule that is not ``PATTERN=USER[,USER...]``."""

    code = "invalid_channel_rule"


@dataclass(frozen=True)
class ChannelRule:
    """Lets some users into the ``private-``/``presence-`` channels a pattern matches.

    Attributes:
        pattern: a channel name in which ``*`` matches any run of characters.
        users: the user ids let in; ``None`` for every identified user.
    """

    pattern: str
    users: frozenset[str] | None

    @classmethod
    def parse(cls, text: str) -> ChannelRule:
        """Read ``PATTERN=USERS``, e.g. ``private-team-*=ada,bob`` or ``presence-ops=*``.

        Raises:
            InvalidChannelRule: with what is wrong and an example.
        """
        pattern, equals, names = text.partition("=")
        pattern = pattern.strip()
        example = "e.g. 'private-team-*=ada,bob' or 'presence-ops=*'"
        if not equals or not pattern:
            raise InvalidChannelRule(f"channel rule {text!r} is not PATTERN=USERS ({example})")
        if not _PATTERN_RE.fullmatch(pattern):
            raise InvalidChannelRule(
                f"channel rule {text!r}: the pattern must start with private- or presence- and "
                f"use channel-name characters and * only ({example})"
            )
        users = [name.strip() for name in names.split(",") if name.strip()]
        if not users:
            raise InvalidChannelRule(f"channel rule {text!r} names no users ({example})")
        if WILDCARD in users:
            return cls(pattern, None)
        return cls(pattern, frozenset(users))

    def matches(self, channel: str) -> bool:
        """Whether the pattern matches the whole of ``channel``."""
        parts = self.pattern.split(WILDCARD)
        regex = ".*".join(re.escape(part) for part in parts)
        return re.fullmatch(regex, channel) is not None

    def allows(self, user: UserIdentity, channel: str) -> bool:
        """Whether this rule lets ``user`` into ``channel``."""
        return self.matches(channel) and (self.users is None or user.user_id in self.users)


class ChannelPolicy:
    """Decides private and presence subscriptions (see the module doc for the rule).

    Args:
        rules: configured rules, e.g. from ``dashboard serve --allow-channel``.
        authorize: the application's own rule for channels nothing else decides.
    """

    def __init__(self, rules: Iterable[ChannelRule] = (), authorize: Authorize | None = None):
        self.rules = tuple(rules)
        self.authorize = authorize

    def allows(self, user: UserIdentity | None, channel: str) -> bool:
        """Whether ``user`` (``None``: anonymous) may subscribe to ``channel``.

        Public channels are always allowed; anonymous callers never get a protected one.
        """
        if channel_kind(channel) is ChannelKind.PUBLIC:
            return True
        if user is None:
            return False
        if channel.startswith(USER_CHANNEL_PREFIX):
            return channel == USER_CHANNEL_PREFIX + user.user_id
        if channel in (BROADCAST_CHANNEL, DASHBOARD_PRESENCE) or (
            channel.startswith(ROOM_PRESENCE_PREFIX) and len(channel) > len(ROOM_PRESENCE_PREFIX)
        ):
            return True
        if any(rule.allows(user, channel) for rule in self.rules):
            return True
        if self.authorize is not None:
            try:
                return bool(self.authorize(user, channel))
            except Exception:  # a bug in the application's rule refuses; it never lets in
                log.exception("authorize(%r, %r) failed; refusing", user.user_id, channel)
        return False

    def refusal(self, user: UserIdentity | None, channel: str) -> str:
        """Why :meth:`allows` said no, in words for the refused client."""
        if user is None:
            return f"{channel} needs an identified user"
        if channel.startswith(USER_CHANNEL_PREFIX):
            return f"{channel} belongs to another user"
        return (
            f"no rule lets {user.user_id!r} into {channel}; the server's operator can allow it "
            "(dashboard serve --allow-channel 'PATTERN=USERS', or authorize= on DashboardServer)"
        )
