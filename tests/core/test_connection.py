import json

import pytest

from dashboard.core.connection import (
    MAX_RESETS,
    ConnectionState,
    ConnectionStatus,
    ResetWatchers,
    StatusWatchers,
)
from dashboard.core.cursor import Reset
from dashboard.core.event_stream import reset_frame
from dashboard.core.sse import SSEDecoder

OPEN = ConnectionStatus(ConnectionState.OPEN)
CLOSED = ConnectionStatus(ConnectionState.CLOSED, 2, "gone")


def test_watchers_hear_each_change_once_until_unwatched():
    watchers = StatusWatchers()
    heard = []
    unwatch = watchers.watch(heard.append)
    watchers.update(OPEN)
    watchers.update(OPEN)  # no change, no call
    unwatch()
    unwatch()  # idempotent
    watchers.update(ConnectionStatus(ConnectionState.RECONNECTING, 1, "x"))
    assert heard == [OPEN]
    assert watchers.status.state is ConnectionState.RECONNECTING


def test_closed_is_final_unless_asked_otherwise():
    final = StatusWatchers(CLOSED)
    final.update(OPEN)
    assert final.status == CLOSED
    reopenable = StatusWatchers(CLOSED, closed_is_final=False)
    reopenable.update(OPEN)
    assert reopenable.status == OPEN


def test_reset_watchers_keep_the_latest_and_tell_each_watcher_once():
    watchers = ResetWatchers()
    heard = []
    unwatch = watchers.watch(heard.append)
    for offset in range(MAX_RESETS + 5):
        watchers.report(Reset("a", "expired", offset))
    unwatch()
    watchers.report(Reset("b", "epoch", 0))
    assert len(heard) == MAX_RESETS + 5
    assert len(watchers.resets) == MAX_RESETS
    assert watchers.resets[0].offset == 6 and watchers.resets[-1] == Reset("b", "epoch", 0)


@pytest.mark.parametrize(
    ("reset", "data"),
    [
        (Reset("a", "epoch", 3), {"channel": "a", "reason": "epoch", "offset": 3}),
        (
            Reset("a", "expired", 9, missed=4),
            {"channel": "a", "reason": "expired", "offset": 9, "missed": 4},
        ),
    ],
)
def test_reset_frames_say_how_many_events_were_missed_only_when_known(reset, data):
    (frame,) = SSEDecoder().feed(reset_frame(reset, "E|a:9"))
    assert frame.event == "reset" and frame.id == "E|a:9"
    assert json.loads(frame.data) == data
