"""An offline provider: deterministic, useful answers about this dashboard, paced like a model.

It needs no key and no network, so the served dashboard and the notebooks always have a
working chat; the label says plainly that it is a demo.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Sequence

from .base import ChatMessage

DEMO_MODEL = "dashboard-demo"

_TOPICS: tuple[tuple[tuple[str, ...], str], ...] = (
    (
        ("sse", "event", "stream", "resume", "reconnect", "last-event-id"),
        "Events reach this page as Server-Sent Events from `GET /api/events`. Every event "
        "carries a cursor id; when a connection drops, the browser sends it back as "
        "`Last-Event-ID` and the server replays exactly what was missed from the hub's "
        "history, then continues live. If that is impossible, the stream says so with an "
        "explicit `reset` event instead of a silent gap.",
    ),
    (
        ("chat", "room", "pusher", "presence", "typing", "websocket"),
        "The team panel runs on a Pusher-compatible WebSocket at `/app/{key}`. Each tab joins "
        "`presence-dashboard`, so you see who is here; chat messages are stored in SQLite "
        "before they are broadcast on `room-{room}`, and typing travels as the client event "
        "`client-typing`, signed by the server so nobody can type as someone else.",
    ),
    (
        ("ai", "model", "openai", "key", "provider", "llm", "demo"),
        "This answer comes from the offline demo provider: it streams canned, deterministic "
        "text so the chat works without a key. Set `OPENAI_API_KEY` (and optionally "
        "`OPENAI_BASE_URL` for any OpenAI-compatible server) and start `dashboard serve "
        "--model MODEL` to talk to a real model; `/api/health` reports which one is active.",
    ),
    (
        ("publish", "curl", "token", "metric", "cpu", "chart"),
        "Anything can publish into the dashboard: `POST /api/publish` with the publish token "
        "`dashboard serve` keeps beside its database (or `DASHBOARD_TOKEN`), or `dashboard "
        "publish CHANNEL EVENT JSON` on the same machine. The charts "
        "plot the `cpu` and `latency` events of the `metrics` channel per service, and the "
        "feeds show the newest events of each channel first.",
    ),
)

_OVERVIEW = (
    "This dashboard shows live events as they happen. A demo publisher writes service metrics, "
    "deploys and alerts into an in-memory hub; the hub keeps a bounded history per channel and "
    "fans every event out to the page over Server-Sent Events, where the charts and feeds "
    "update in place. The team panel shows who is viewing and a chat room."
)

_TOKEN = re.compile(r"\S+\s*|\s+")


def demo_answer(messages: Sequence[ChatMessage]) -> str:
    """The demo's full answer to ``messages``: the same question always gets the same text."""
    question = next((m.content for m in reversed(messages) if m.role == "user"), "")
    words = set(re.findall(r"[a-z][a-z-]*", question.lower()))
    parts = [text for keys, text in _TOPICS if words & set(keys)]
    if not parts:
        parts = [_OVERVIEW]
    turns = sum(1 for m in messages if m.role == "user")
    follow_up = f" (You have asked me {turns} questions so far.)" if turns > 1 else ""
    return (
        "\n\n".join(parts)
        + "\n\n_(Demo provider: offline canned answers; set OPENAI_API_KEY for a real model.)_"
        + follow_up
    )


class DemoProvider:
    """Streams :func:`demo_answer` word by word, with deterministic pauses.

    Args:
        delay: mean seconds between tokens (about 40 tokens/s by default, like a hosted
            model); 0 streams as fast as the loop runs.
        model: the model name to report.

    Usage::

        async for chunk in DemoProvider().stream([ChatMessage("user", "What is this?")]):
            print(chunk, end="")
    """

    name = "demo"

    def __init__(self, delay: float = 0.025, *, model: str = DEMO_MODEL) -> None:
        if delay < 0:
            raise ValueError(f"delay must not be negative, not {delay!r}")
        self.delay = delay
        self.model = model

    @property
    def label(self) -> str:
        return "Demo provider (offline, canned answers): set OPENAI_API_KEY for a real model"

    async def stream(self, messages: Sequence[ChatMessage]) -> AsyncIterator[str]:
        for index, token in enumerate(_TOKEN.findall(demo_answer(messages))):
            # A fixed pseudo-random spread (0.5x to 1.5x) looks like a model, stays repeatable.
            await asyncio.sleep(self.delay * (0.5 + (index * 7919 % 11) / 10))
            yield token

    def __repr__(self) -> str:
        return f"DemoProvider(delay={self.delay!r}, model={self.model!r})"
