"""The browser's own EventSource against /api/events: the standard client is the judge."""

import asyncio

from dashboard.server import DashboardServer
from tests.cursors import cursor_for

COLLECT = """
async ([url, expected]) => {
  const received = [];
  const source = new EventSource(url);
  source.addEventListener("cpu", (e) => received.push({id: e.lastEventId, data: JSON.parse(e.data)}));
  await new Promise((resolve, reject) => {
    source.addEventListener("connected", () => { window.__connected = true; });
    const timer = setTimeout(() => reject(new Error("timeout, got " + received.length)), 10000);
    const poll = setInterval(() => {
      if (received.length >= expected) { clearInterval(poll); clearTimeout(timer); resolve(); }
    }, 20);
  });
  source.close();
  return received;
}
"""


async def test_browser_eventsource_receives_events_and_ids(browser):
    server = DashboardServer(port=0, token="publish-token-0123456")
    await server.start()
    try:
        page = await browser.new_page()
        await page.goto(f"{server.url}/api/health")  # same origin as the stream
        collecting = asyncio.ensure_future(
            page.evaluate(COLLECT, [f"{server.url}/api/events?channel=metrics", 3])
        )
        await page.wait_for_function("window.__connected === true", timeout=10_000)
        for value in range(3):
            await server.hub.publish("metrics", "cpu", {"value": value, "emoji": "🚀"})
        received = await asyncio.wait_for(collecting, 15)
        assert [r["data"]["data"]["value"] for r in received] == [0, 1, 2]
        assert received[0]["data"]["data"]["emoji"] == "🚀"
        assert received[-1]["id"] == cursor_for(["metrics"], server.hub.epoch, {"metrics": 3})
    finally:
        await server.stop()


RECONNECT = """
async ([url]) => {
  const received = [];
  let opens = 0;
  const source = new EventSource(url);
  source.addEventListener("connected", () => { opens += 1; window.__opens = opens; });
  source.addEventListener("n", (e) => { received.push(JSON.parse(e.data).data); window.__received = received.length; });
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("timeout: " + JSON.stringify(received))), 15000);
    const poll = setInterval(() => {
      if (received.length >= 6) { clearInterval(poll); clearTimeout(timer); resolve(); }
    }, 20);
  });
  source.close();
  return {received, opens};
}
"""


async def test_browser_reconnects_with_last_event_id_and_misses_nothing(browser):
    server = DashboardServer(port=0, token="publish-token-0123456")
    await server.start()
    try:
        page = await browser.new_page()
        await page.goto(f"{server.url}/api/health")
        result = asyncio.ensure_future(
            page.evaluate(RECONNECT, [f"{server.url}/api/events?channel=a"])
        )
        await page.wait_for_function("window.__opens === 1", timeout=10_000)
        for i in range(3):
            await server.hub.publish("a", "n", i)
        await page.wait_for_function("window.__received === 3", timeout=10_000)
        # Drop every stream server-side; the browser reconnects after `retry` (3 s) with its
        # Last-Event-ID, and the events published meanwhile must arrive exactly once.
        for handler in list(server.ctx.streams):
            handler.abort()
        for i in range(3, 6):
            await server.hub.publish("a", "n", i)
        outcome = await asyncio.wait_for(result, 20)
        assert outcome == {"received": [0, 1, 2, 3, 4, 5], "opens": 2}
    finally:
        await server.stop()
