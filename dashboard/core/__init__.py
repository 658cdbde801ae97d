"""Pure realtime logic: event model, channels, SSE framing, cursors, history, backoff.

Nothing in this package does I/O or imports asyncio, tornado, aiohttp or panel (a test enforces
it), so every piece can be tested table-driven and reused by the server, the client and the
benchmarks alike.
"""
