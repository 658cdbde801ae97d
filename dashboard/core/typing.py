"""Who is typing right now, sans I/O.

A typing indicator is a set of users with a deadline each: every keystroke notice
(``client-typing`` on a presence channel, say) pushes a user's deadline ``timeout`` seconds
into the future, an explicit stop or the message itself removes them, and silence lets them
expire. :class:`TypingTracker` keeps that set with the clock passed in explicitly, so it is
tested without sleeping and driven by any event loop: the caller asks :meth:`TypingTracker.
next_expiry` when to look again and schedules a single timer for it.

:func:`typing_text` turns the names into the sentence shown under a chat input.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

#: Seconds of silence after which someone no longer counts as typing.
TYPING_TIMEOUT = 3.0

#: Users tracked at most; when a new one arrives beyond it, the one who started first is
#: forgotten, so a flood of distinct ids cannot grow the tracker.
MAX_TYPING_USERS = 100


@dataclass(slots=True)
class _Typist:
    name: str
    last_seen: float


class TypingTracker:
    """The users currently typing, in the order they started.

    Every method that looks at the clock takes ``now``, a monotonic time in seconds (e.g.
    ``time.monotonic()`` or ``loop.time()``); the tracker never reads a clock itself. A user
    counts as typing while ``now - last_notice < timeout``.

    Args:
        timeout: seconds of silence after which a user stops counting as typing.
        max_users: users tracked at most; beyond it the one who started first is dropped.

    Raises:
        ValueError: for a ``timeout`` that is not positive or a ``max_users`` below 1.

    Usage::

        tracker = TypingTracker()
        tracker.typing("u1", "Ada", now=10.0)
        tracker.active(now=11.0)       # ["Ada"]
        tracker.next_expiry(now=11.0)  # 2.0
        tracker.active(now=13.0)       # []
    """

    def __init__(self, timeout: float = TYPING_TIMEOUT, max_users: int = MAX_TYPING_USERS):
        if max_users < 1:
            raise ValueError("max_users must be at least 1")
        self._typists: dict[str, _Typist] = {}
        self.max_users = max_users
        self.timeout = timeout

    @property
    def timeout(self) -> float:
        """Seconds of silence after which a user stops counting as typing.

        Settable; a new value applies to everyone tracked at once.
        """
        return self._timeout

    @timeout.setter
    def timeout(self, value: float) -> None:
        if not value > 0:  # also refuses NaN
            raise ValueError("timeout must be positive")
        self._timeout = float(value)

    def __len__(self) -> int:
        """Users tracked, including any that expired since the last look at the clock."""
        return len(self._typists)

    def __contains__(self, user_id: object) -> bool:
        return user_id in self._typists

    def typing(self, user_id: str, name: str, now: float) -> None:
        """Mark ``user_id`` as typing at ``now``, or refresh them if they already are.

        A refresh keeps the user's place in the order and takes the new ``name``. A user whose
        entry had expired starts afresh, at the end.

        Args:
            user_id: who is typing.
            name: what to call them; the user id when empty.
            now: the current monotonic time, in seconds.
        """
        self._expire(now)
        typist = self._typists.get(user_id)
        if typist is not None:
            typist.name = name or user_id
            typist.last_seen = max(typist.last_seen, now)
            return
        while len(self._typists) >= self.max_users:
            del self._typists[next(iter(self._typists))]
        self._typists[user_id] = _Typist(name or user_id, now)

    def stopped(self, user_id: str) -> None:
        """Forget ``user_id`` at once (they sent their message, or an explicit stop)."""
        self._typists.pop(user_id, None)

    def clear(self) -> None:
        """Forget everyone."""
        self._typists.clear()

    def active(self, now: float) -> list[str]:
        """The display names of those typing at ``now``, in the order they started.

        Expired entries are dropped for good.
        """
        self._expire(now)
        return [typist.name for typist in self._typists.values()]

    def next_expiry(self, now: float) -> float | None:
        """Seconds from ``now`` until the next entry expires, or ``None`` when nobody types.

        Schedule one timer for this delay, call :meth:`active` when it fires, and ask again:
        a timer that fires a clock tick early (or float rounding of ``now + delay``) finds the
        entry still there and gets a tiny delay back, not a lost expiry.
        """
        self._expire(now)
        if not self._typists:
            return None
        soonest = min(typist.last_seen for typist in self._typists.values())
        # Clamped: float rounding must not report more than a timeout or less than nothing.
        return min(max(soonest + self._timeout - now, 0.0), self._timeout)

    def _expire(self, now: float) -> None:
        expired = [
            user_id
            for user_id, typist in self._typists.items()
            if now >= typist.last_seen + self._timeout
        ]
        for user_id in expired:
            del self._typists[user_id]


def typing_text(names: Sequence[str]) -> str:
    """The sentence for a typing indicator.

    ``""`` for nobody, ``"Ada is typing…"``, ``"Ada and Bob are typing…"``, and
    ``"3 people are typing…"`` from three on. The text is plain: escape it for HTML.
    """
    if not names:
        return ""
    if len(names) == 1:
        return f"{names[0]} is typing…"
    if len(names) == 2:
        return f"{names[0]} and {names[1]} are typing…"
    return f"{len(names)} people are typing…"
