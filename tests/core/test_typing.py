"""TypingTracker and typing_text: table tests and a model-based hypothesis property."""

from __future__ import annotations

import copy

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dashboard.core.typing import TYPING_TIMEOUT, TypingTracker, typing_text


@pytest.mark.parametrize(
    ("names", "text"),
    [
        ([], ""),
        (["Ada"], "Ada is typing…"),
        (["Ada", "Bob"], "Ada and Bob are typing…"),
        (["Ada", "Bob", "Cy"], "3 people are typing…"),
        ([f"user{i}" for i in range(10)], "10 people are typing…"),
    ],
)
def test_typing_text(names, text):
    assert typing_text(names) == text
    assert typing_text(tuple(names)) == text


def test_ellipsis_is_one_character():
    assert typing_text(["Ada"]).endswith("\u2026")
    assert "..." not in typing_text(["Ada", "Bob"])


def test_default_timeout():
    assert TYPING_TIMEOUT == 3.0
    assert TypingTracker().timeout == TYPING_TIMEOUT


def test_expires_after_timeout_of_silence():
    tracker = TypingTracker(timeout=3.0)
    tracker.typing("u1", "Ada", now=10.0)
    assert tracker.active(10.0) == ["Ada"]
    assert tracker.active(12.999) == ["Ada"]
    assert tracker.active(13.0) == []
    assert len(tracker) == 0  # dropped for good, not just hidden


def test_refresh_extends_and_keeps_place():
    tracker = TypingTracker(timeout=3.0)
    tracker.typing("u1", "Ada", now=0.0)
    tracker.typing("u2", "Bob", now=1.0)
    tracker.typing("u1", "Ada L.", now=2.5)  # refresh: new name, same place, new deadline
    assert tracker.active(3.5) == ["Ada L.", "Bob"]
    assert tracker.active(4.0) == ["Ada L."]
    assert tracker.active(5.5) == []


def test_expired_user_starts_again_at_the_end():
    tracker = TypingTracker(timeout=1.0)
    tracker.typing("u1", "Ada", now=0.0)
    tracker.typing("u2", "Bob", now=0.5)
    tracker.typing("u1", "Ada", now=1.2)  # Ada's first entry had expired at 1.0
    assert tracker.active(1.2) == ["Bob", "Ada"]


def test_order_is_start_order():
    tracker = TypingTracker()
    for i, name in enumerate(["Cy", "Ada", "Bob"]):
        tracker.typing(f"u{i}", name, now=float(i) / 10)
    assert tracker.active(0.5) == ["Cy", "Ada", "Bob"]


def test_stopped_removes_at_once_and_ignores_unknown():
    tracker = TypingTracker()
    tracker.typing("u1", "Ada", now=0.0)
    tracker.typing("u2", "Bob", now=0.0)
    tracker.stopped("u1")
    tracker.stopped("nobody")
    assert tracker.active(0.1) == ["Bob"]
    assert "u1" not in tracker and "u2" in tracker
    tracker.clear()
    assert tracker.active(0.1) == [] and tracker.next_expiry(0.1) is None


def test_empty_name_falls_back_to_user_id():
    tracker = TypingTracker()
    tracker.typing("u1", "", now=0.0)
    assert tracker.active(0.0) == ["u1"]


def test_bounded_drops_who_started_first():
    tracker = TypingTracker(timeout=100.0, max_users=3)
    for i in range(5):
        tracker.typing(f"u{i}", f"N{i}", now=float(i))
    assert len(tracker) == 3
    assert tracker.active(5.0) == ["N2", "N3", "N4"]
    # Refreshing a present user never evicts anyone.
    tracker.typing("u2", "N2", now=6.0)
    assert tracker.active(6.0) == ["N2", "N3", "N4"]


def test_default_bound_holds_a_flood():
    tracker = TypingTracker()
    for i in range(10_000):
        tracker.typing(str(i), "x", now=0.0)
    assert len(tracker) == 100


def test_next_expiry():
    tracker = TypingTracker(timeout=3.0)
    assert tracker.next_expiry(0.0) is None
    tracker.typing("u1", "Ada", now=0.0)
    tracker.typing("u2", "Bob", now=1.0)
    assert tracker.next_expiry(0.5) == pytest.approx(2.5)
    assert tracker.next_expiry(3.0) == pytest.approx(1.0)  # Ada expired, Bob's turn
    assert tracker.active(3.0) == ["Bob"]
    tracker.typing("u2", "Bob", now=3.5)
    assert tracker.next_expiry(4.0) == pytest.approx(2.5)
    assert tracker.next_expiry(6.5) is None


@pytest.mark.parametrize("timeout", [0, -1, float("nan")])
def test_rejects_bad_timeout(timeout):
    with pytest.raises(ValueError):
        TypingTracker(timeout=timeout)


def test_timeout_change_applies_at_once():
    tracker = TypingTracker(timeout=10.0)
    tracker.typing("u1", "Ada", now=0.0)
    tracker.timeout = 1.0
    assert tracker.next_expiry(0.5) == pytest.approx(0.5)
    assert tracker.active(1.0) == []


def test_rejects_bad_bound():
    with pytest.raises(ValueError):
        TypingTracker(max_users=0)


# --- property: the tracker agrees with a naive model -----------------------------------------

_USERS = st.sampled_from(["a", "b", "c", "d", "e"])
_OPS = st.lists(
    st.tuples(
        st.sampled_from(["typing", "stopped", "active", "expiry"]),
        _USERS,
        st.floats(min_value=0, max_value=2, allow_nan=False),
    ),
    max_size=60,
)


@given(_OPS, st.integers(min_value=1, max_value=4))
def test_matches_model(ops, max_users):
    timeout = 1.0
    tracker = TypingTracker(timeout=timeout, max_users=max_users)
    model: dict[str, tuple[str, float]] = {}  # insertion order = start order
    now = 0.0

    def expire() -> None:
        for user in [u for u, (_, seen) in model.items() if now - seen >= timeout]:
            del model[user]

    for op, user, step in ops:
        now += step
        expire()
        if op == "typing":
            name = user.upper()
            if user in model:
                model[user] = (name, now)
            else:
                if len(model) >= max_users:
                    del model[next(iter(model))]
                model[user] = (name, now)
            tracker.typing(user, name, now)
        elif op == "stopped":
            model.pop(user, None)
            tracker.stopped(user)
        elif op == "active":
            assert tracker.active(now) == [name for name, _ in model.values()]
        else:
            delay = tracker.next_expiry(now)
            if not model:
                assert delay is None
            else:
                assert delay is not None and 0 < delay <= timeout
                # Nothing expires before the reported delay; something does at it, up to float
                # rounding of now + delay (looking drops expired entries, hence the copies).
                before = len(copy.deepcopy(tracker).active(now + delay * 0.999))
                assert before == len(model)
                assert len(copy.deepcopy(tracker).active(now + delay + 1e-9)) < len(model)
        assert len(tracker) <= max_users
