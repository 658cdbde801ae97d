"""The SSE endpoint against a real server and real clients over loopback."""

import asyncio
import json

from tests.cursors import offsets_of
from tests.server.helpers import RawStream, publish


async def open_stream(http, server, query, headers=None):
    response = await http.get(f"{server.url}/api/events?{query}", headers=headers or {})
    return response, RawStream(response)


async def test_stream_headers_connected_event_and_live_events(server, http):
    response, stream = await open_stream(http, server, "channel=metrics&channel=alerts")
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/event-stream")
    assert response.headers["Cache-Control"] == "no-cache"
    assert response.headers["X-Accel-Buffering"] == "no"
    connected = await stream.next()
    assert connected.event == "connected"
    assert stream.decoder.retry == 3000
    assert json.loads(connected.data)["channels"] == ["metrics", "alerts"]
    assert offsets_of(connected.id, ["metrics", "alerts"]) == {"metrics": 0, "alerts": 0}

    status, answer = await publish(http, server, "metrics", "cpu", {"value": 0.5})
    assert status == 200 and answer["offset"] == 1
    await publish(http, server, "alerts", "alert", {"message": "disk"})
    cpu, alert = await stream.take(2)
    assert (cpu.event, json.loads(cpu.data)["data"]) == ("cpu", {"value": 0.5})
    assert json.loads(alert.data)["channel"] == "alerts"
    assert offsets_of(alert.id, ["metrics", "alerts"]) == {"metrics": 1, "alerts": 1}
    response.close()


async def test_killed_connection_resumes_with_nothing_lost_or_duplicated(server, http):
    response, stream = await open_stream(http, server, "channel=a&channel=b")
    await stream.next()
    for i in range(10):
        await publish(http, server, "ab"[i % 2], "n", i)
    taken = await stream.take(4, name="n")
    seen = [json.loads(e.data)["data"] for e in taken]
    last_id = taken[-1].id
    response.close()  # the client dies mid-stream; events 4..9 were sent but never handled

    for i in range(10, 20):  # published while nobody listens
        await publish(http, server, "ab"[i % 2], "n", i)
    response, stream = await open_stream(
        http, server, "channel=a&channel=b", headers={"Last-Event-ID": last_id}
    )
    assert (await stream.next()).event == "connected"
    seen += [json.loads(e.data)["data"] for e in await stream.take(16, name="n")]
    assert seen == list(range(20))
    response.close()


async def test_resume_by_query_parameter(server, http):
    _, answer = await publish(http, server, "a", "n", 1)
    await publish(http, server, "a", "n", 2)
    response, stream = await open_stream(http, server, f"channel=a&last_event_id={answer['id']}")
    await stream.next()
    assert json.loads((await stream.next()).data)["data"] == 2
    response.close()


async def test_resume_outside_history_sends_reset(server, http):
    response, stream = await open_stream(
        http, server, "channel=a", headers={"Last-Event-ID": "oldEpoch|a:7"}
    )
    await stream.next()
    reset = await stream.next()
    assert reset.event == "reset"
    assert json.loads(reset.data) == {"channel": "a", "reason": "epoch", "offset": 0}
    response.close()


async def test_heartbeats_arrive_on_idle_stream(server, http):
    response, stream = await open_stream(http, server, "channel=quiet")
    await stream.next()
    await asyncio.sleep(1.0)  # heartbeat is 0.3 s in the fixture
    with_timeout = asyncio.wait_for(response.content.readany(), 1)
    stream.raw += await with_timeout
    assert stream.raw.count(b": heartbeat\n\n") >= 2
    response.close()


async def test_disconnect_cleans_up_subscription(server, http):
    response, stream = await open_stream(http, server, "channel=a")
    await stream.next()
    assert server.hub.stats().subscribers == 1
    response.close()
    for _ in range(50):
        if server.hub.stats().subscribers == 0 and not server.ctx.streams:
            break
        await asyncio.sleep(0.02)
    assert server.hub.stats().subscribers == 0 and not server.ctx.streams


async def test_shutdown_ends_streams_cleanly(http):
    from dashboard.server import DashboardServer

    srv = DashboardServer(port=0, token="publish-token-0123456")
    await srv.start()
    response, stream = await open_stream(http, srv, "channel=a")
    await stream.next()
    await srv.stop()
    rest = await asyncio.wait_for(response.content.read(), 2)  # ends, no hang
    assert rest == b""
    assert response.content.at_eof()


async def test_shutdown_closes_idle_keep_alive_connections():
    from dashboard.server import DashboardServer

    srv = DashboardServer(port=0, token="publish-token-0123456")
    await srv.start()
    reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
    try:
        writer.write(b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        assert head.startswith(b"HTTP/1.1 200") and b"Connection: close" not in head
        length = int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0])
        await reader.readexactly(length)  # the connection is now idle, kept alive
        await asyncio.wait_for(srv.stop(), 10)
        assert await asyncio.wait_for(reader.read(), 2) == b""  # closed by the server
    finally:
        writer.close()


async def test_stalled_client_is_dropped_and_server_memory_bounded(http):
    """A client that stops reading fills its queue, gets disconnected, and can resume."""
    from dashboard.core.history import HistoryLimits
    from dashboard.hub import Hub, MemoryBackend
    from dashboard.server import DashboardServer

    hub = Hub(MemoryBackend(HistoryLimits(max_events=3000)), queue_size=50)
    srv = DashboardServer(hub, port=0, token="publish-token-0123456")
    await srv.start()
    try:
        response, stream = await open_stream(http, srv, "channel=a")
        await stream.next()
        cursor = stream.decoder.last_event_id
        payload = "x" * 8000  # 2000 x 8 KB outgrows the loopback socket buffers
        for i in range(2000):
            await srv.hub.publish("a", "big", {"i": i, "pad": payload})
            if i % 20 == 0:
                await asyncio.sleep(0.01)
        for _ in range(100):
            if srv.hub.stats().subscribers == 0:
                break
            await asyncio.sleep(0.02)
        assert srv.hub.stats().subscribers == 0  # dropped, not buffering without limit
        response.close()
        # The dropped client resumes from where it was and gets everything still in history.
        response, stream = await open_stream(
            http, srv, "channel=a", headers={"Last-Event-ID": cursor}
        )
        await stream.next()
        first = json.loads((await stream.next()).data)["data"]["i"]
        assert first == 0
        response.close()
    finally:
        await srv.stop()


async def test_resume_after_the_channels_history_was_dropped_sends_reset(http):
    # The memory backend keeps history for 20 channels here: publishing to 30 others drops
    # the stream's channel, whose offsets then start over in a new epoch.
    from dashboard.hub import Hub, MemoryBackend
    from dashboard.server import DashboardServer
    from tests.server.helpers import TOKEN

    server = DashboardServer(Hub(MemoryBackend(max_channels=20)), port=0, token=TOKEN)
    await server.start()
    try:
        for n in range(3):
            await publish(http, server, "orders", "order", n)
        response, stream = await open_stream(http, server, "channel=orders")
        kept = (await stream.next()).id
        response.close()
        for n in range(30):
            await publish(http, server, f"other-{n}", "noise", n)
        for n in range(3, 8):
            await publish(http, server, "orders", "order", n)
        response, stream = await open_stream(
            http, server, "channel=orders", headers={"Last-Event-ID": kept}
        )
        assert (await stream.next()).event == "connected"
        reset = await stream.next()
        assert reset.event == "reset"
        # Reset, then the new history from its start: nothing of it passes for all that was missed.
        assert json.loads(reset.data) == {"channel": "orders", "reason": "epoch", "offset": 0}
        replayed = [json.loads(e.data)["data"] for e in await stream.take(5)]
        assert replayed == [3, 4, 5, 6, 7]
        await publish(http, server, "orders", "order", 8)
        live = await stream.next()
        assert json.loads(live.data)["data"] == 8
        response.close()
    finally:
        await server.stop()


async def test_a_stream_of_100_long_channel_names_resumes_with_its_own_id(server, http):
    # Once a 16,708-character id that the server then refused: the stream could never resume.
    channels = [f"{n:03d}" + "c" * 161 for n in range(100)]  # 164 characters each
    query = "&".join(f"channel={name}" for name in channels)
    response, stream = await open_stream(http, server, query)
    assert response.status == 200
    await stream.next()  # connected
    await publish(http, server, channels[42], "tick", 1)
    tick = await stream.next()
    assert len(tick.id) < 400  # a few characters per channel, not the names
    response.close()
    await publish(http, server, channels[7], "tick", 2)
    response, stream = await open_stream(http, server, query, headers={"Last-Event-ID": tick.id})
    assert response.status == 200
    assert (await stream.next()).event == "connected"
    assert json.loads((await stream.next()).data)["data"] == 2  # exactly the missed one
    response.close()
