from dashboard.core.connection import ConnectionState, ConnectionStatus, StatusWatchers

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
