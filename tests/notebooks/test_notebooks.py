"""Notebooks execute headless with nbclient, against a real server where they need one."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import skip_or_fail

#: The publish token of the dashboards the notebooks talk to (DASHBOARD_TOKEN).
NOTEBOOK_TOKEN = "notebook-publish-token"

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
pytestmark = pytest.mark.notebook


@pytest.fixture(scope="module")
def dashboard_url():
    """A real `dashboard serve` in a subprocess, so the notebook's kernel can reach it."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "dashboard", "serve", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "DASHBOARD_TOKEN": NOTEBOOK_TOKEN},
    )
    try:
        for line in process.stdout:
            if line.startswith("Dashboard:"):
                break
        else:
            pytest.fail("dashboard serve exited before it was ready")
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=20)


def execute(path: Path, env: dict[str, str]):
    try:
        import nbclient
        import nbformat
        from jupyter_client.kernelspec import NoSuchKernel  # noqa: F401
    except ImportError as exc:
        skip_or_fail(f"nbclient is not installed: {exc}")
    notebook = nbformat.read(path, as_version=4)
    old = {key: os.environ.get(key) for key in env}
    os.environ.update(env)  # the kernel inherits the environment
    try:
        client = nbclient.NotebookClient(
            notebook,
            timeout=120,
            kernel_name="python3",
            resources={"metadata": {"path": path.parent}},
        )
        client.execute()
    finally:
        for key, value in old.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return notebook


def error_outputs(notebook) -> list:
    return [
        output
        for cell in notebook.cells
        for output in cell.get("outputs", [])
        if output.get("output_type") == "error"
    ]


def stream_text(notebook) -> str:
    return "".join(
        output.get("text", "")
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.get("outputs", [])
        if output.get("output_type") == "stream"
    )


def test_live_feed_notebook_runs_offline_against_both_sources(dashboard_url):
    notebook = execute(NOTEBOOKS / "01_live_feed.ipynb", {"DASHBOARD_URL": dashboard_url})
    text = stream_text(notebook)
    local = re.search(r"in-kernel hub: (\d+) events received, status open", text)
    remote = re.search(r"remote dashboard: (\d+) events received, status open", text)
    assert local and int(local.group(1)) >= 5, text
    assert remote and int(remote.group(1)) >= 3, text
    assert error_outputs(notebook) == []
    # Rendered inline: the widgets' JavaScript is in the notebook, not fetched from a CDN.
    html = "".join(
        str(output.get("data", {})) for cell in notebook.cells for output in cell.get("outputs", [])
    )
    assert "application/vnd.holoviews_load.v0+json" in html or "bokeh" in html.lower()
    assert "cdn.bokeh.org" not in html and "cdn.holoviz.org" not in html


def test_chat_and_presence_notebook_chats_with_a_served_dashboard(dashboard_url):
    notebook = execute(NOTEBOOKS / "02_chat_and_presence.ipynb", {"DASHBOARD_URL": dashboard_url})
    text = stream_text(notebook)
    assert "connected as Analyst (analyst)" in text, text
    assert re.search(r"stored message \d+ in #lobby", text), text
    assert "typing: Bob is typing…" in text, text
    assert "presence: 2 here: Analyst, Bob" in text, text
    assert "typing after the message: ''" in text, text
    assert "'Bob: Hi Analyst! (edited)'" in text, text
    assert "after bob left: 1 here" in text, text
    assert error_outputs(notebook) == []
    html = "".join(
        str(output.get("data", {})) for cell in notebook.cells for output in cell.get("outputs", [])
    )
    assert "cdn.bokeh.org" not in html and "cdn.holoviz.org" not in html


def test_ai_chat_notebook_streams_in_process_and_from_a_served_dashboard(dashboard_url):
    notebook = execute(NOTEBOOKS / "04_ai_chat.ipynb", {"DASHBOARD_URL": dashboard_url})
    text = stream_text(notebook)
    local = re.search(r"in-process demo: (\d+) words, provider demo", text)
    assert local and int(local.group(1)) > 20, text
    stopped = re.search(r"stopped: True, kept (\d+) words, streaming False", text)
    assert stopped and 0 < int(stopped.group(1)) < int(local.group(1)), text
    remote = re.search(r"remote dashboard: (\d+) words from \S+", text)
    assert remote and int(remote.group(1)) > 20, text
    assert error_outputs(notebook) == []


def test_notifications_notebook_sends_to_and_reads_from_a_served_dashboard(dashboard_url):
    notebook = execute(
        NOTEBOOKS / "03_notifications.ipynb",
        {"DASHBOARD_URL": dashboard_url, "DASHBOARD_TOKEN": NOTEBOOK_TOKEN},
    )
    text = stream_text(notebook)
    assert re.search(r"inbox: \d+ notifications, \d+ unread", text), text
    sent = re.search(r"sent notification \d+; unread now (\d+)", text)
    assert sent and int(sent.group(1)) >= 2, text
    # Newest first; the demo's own broadcast alerts may arrive in between and are left out.
    assert "received: ['Maintenance at 18:00', 'Nightly export finished']" in text, text
    assert "refused: 400: type must be one of" in text, text
    assert "after mark all read: 0 unread" in text, text
    assert error_outputs(notebook) == []
