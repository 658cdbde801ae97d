"""The public API is a promise: this pins it, and checks every name resolves and is documented."""

import subprocess
import sys

import dashboard

EXPECTED = {
    "Backend", "ConnectionBadge", "ConnectionState", "ConnectionStatus", "DashboardError",
    "DashboardServer", "DemoSource", "Event", "EventStream", "HistoryLimits", "Hub",
    "HubEventStream", "HubStream", "InvalidChannel", "InvalidCursor", "InvalidEventName",
    "InvalidPayload", "LiveChart", "LiveFeed", "MemoryBackend", "PayloadTooLarge", "Reset",
    "SSEDecoder", "SSESubscription", "ServerSentEvent", "StreamSource", "Subscription",
    "ValidationError", "create_dashboard", "encode_sse",
    # chat and presence (issue 3)
    "UserConnection", "ChatRoom", "PresenceList", "PusherClient", "TypingIndicator",
    # notifications (issue 4)
    "NotificationCenter", "notify",
    # AI chat (issue 5)
    "AIChat", "ChatMessage", "DemoProvider", "OpenAIProvider", "ProviderError",
    "RemoteChatProvider", "provider_from_env",
    # security (issue 9): what DashboardServer's authorize=, channel_rules= and limits= take
    "ChannelRule", "Limits", "UserIdentity",
    # JupyterLab, offline (issue 10)
    "notebook_extension",
    # what the README names as returned or raised: a room, an inbox, a viewer, a weak secret
    "Inbox", "RoomSession", "Viewer", "WeakSecret",
}  # fmt: skip


def test_all_is_pinned():
    assert set(dashboard.__all__) == EXPECTED
    assert len(dashboard.__all__) == len(EXPECTED)


def test_every_export_resolves_and_has_a_docstring():
    for name in dashboard.__all__:
        member = getattr(dashboard, name)
        assert member.__doc__, f"{name} has no docstring"


def test_readme_documents_every_export():
    from pathlib import Path

    readme = (Path(dashboard.__file__).parent.parent / "README.md").read_text()
    missing = [name for name in dashboard.__all__ if f"`{name}" not in readme]
    assert missing == []


def test_sse_codec_import_does_not_pull_in_panel_or_tornado():
    code = (
        "import sys; from dashboard import SSEDecoder, ServerSentEvent, encode_sse; "
        "print(sorted(m for m in ('panel', 'tornado', 'aiohttp', 'bokeh') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
