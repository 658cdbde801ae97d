"""A real JupyterLab for the notebook tests: a server process, and how a person drives it.

:func:`jupyter_lab` starts ``jupyter lab`` as a user would (a subprocess on a free loopback port,
with a token, no browser), in a scratch directory holding copies of ``notebooks/``, with the
Jupyter config, data and runtime dirs of its own so that nothing of the machine's user leaks in.
The kernels it starts inherit its environment: that is how the notebooks find the dashboard
(``DASHBOARD_URL`` ...).

The page helpers wait on what a person sees (prompts, text, buttons), never on sleeps.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import os
import shutil
import struct
import sys
import urllib.parse
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from playwright.async_api import Page, Request, Route, expect
from playwright.async_api import TimeoutError as PlaywrightTimeout

from tests.processes import ROOT, free_port

NOTEBOOKS = ROOT / "notebooks"
#: Hosts a page may talk to: this machine only.
LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}
#: The line JupyterLab logs once it serves (jupyter_server's ServerApp).
READY = "is running at:"


@dataclass
class Lab:
    """A running JupyterLab.

    Attributes:
        url: its base URL (``http://127.0.0.1:PORT``).
        token: the token that opens it.
        root: the directory it serves (copies of the notebooks).
        log: what it printed so far.
    """

    url: str
    token: str
    root: Path
    log: list[str]

    def notebook_url(self, name: str) -> str:
        return f"{self.url}/lab/tree/{urllib.parse.quote(name)}?reset&token={self.token}"


@contextlib.asynccontextmanager
async def jupyter_lab(workdir: Path, env: dict[str, str]) -> AsyncIterator[Lab]:
    """Run ``jupyter lab`` in ``workdir`` (which gets copies of the notebooks) until the block
    ends; ``env`` is added to its environment, and so to its kernels'."""
    root = workdir / "notebooks"
    shutil.copytree(NOTEBOOKS, root)
    home = workdir / "jupyter-home"
    port, token = free_port(), "lab-test-token"
    # Start the notebook's kernel without asking; keep every cell in the page (no windowing),
    # so that what the test looks for is there, as a person scrolling would find it.
    tracker = home / "lab-settings" / "@jupyterlab" / "notebook-extension"
    tracker.mkdir(parents=True)
    (tracker / "tracker.jupyterlab-settings").write_text(
        json.dumps({"autoStartDefaultKernel": True, "windowingMode": "none"})
    )
    # The news prompt ("Would you like to get notified about official Jupyter news?") would
    # cover the notebook; the news themselves would come from the internet.
    labconfig = home / "config" / "labconfig"
    labconfig.mkdir(parents=True)
    (labconfig / "page_config.json").write_text(
        json.dumps({"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}})
    )
    isolated = {
        "JUPYTER_CONFIG_DIR": str(home / "config"),
        "JUPYTER_DATA_DIR": str(home / "data"),
        "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
        "JUPYTERLAB_SETTINGS_DIR": str(home / "lab-settings"),
        "JUPYTERLAB_WORKSPACES_DIR": str(home / "lab-workspaces"),
        "IPYTHONDIR": str(home / "ipython"),
        "JUPYTER_PLATFORM_DIRS": "1",
        "PYTHONUNBUFFERED": "1",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "jupyterlab",
        "--no-browser", "--ip=127.0.0.1", f"--port={port}", "--port-retries=0",
        f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
        # Nothing leaves the machine from the server either: no news, no update check.
        "--LabApp.news_url=None",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        "--LabApp.extension_manager=readonly",
        "--allow-root",  # containers and CI runners often run as root
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, **isolated, **env}, cwd=workdir,
    )  # fmt: skip
    assert process.stdout is not None
    log: list[str] = []
    drain: asyncio.Future[None] | None = None
    try:
        while not any(READY in line for line in log):
            line = (await asyncio.wait_for(process.stdout.readline(), 60)).decode()
            assert line, f"jupyter lab exited early:\n{''.join(log)}"
            log.append(line)
        drain = asyncio.ensure_future(_keep(process.stdout, log))
        yield Lab(f"http://127.0.0.1:{port}", token, root, log)
    finally:
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.terminate()  # jupyter_server shuts its kernels down on SIGTERM
        try:
            await asyncio.wait_for(process.wait(), 20)
        except TimeoutError:
            process.kill()
            await process.wait()
        if drain is not None:
            await asyncio.wait_for(drain, 5)


async def _keep(stream: asyncio.StreamReader, log: list[str]) -> None:
    while line := await stream.readline():
        log.append(line.decode(errors="replace"))


class PageWatch:
    """Every request a page makes that would leave the machine (refused), every console
    error it logs, and the kernel messages that say when a cell is done (for a failure's
    report: :class:`KernelTrace`)."""

    def __init__(self) -> None:
        self.outside: list[str] = []
        self.errors: list[str] = []
        #: The latest other console lines (warnings, logs), for a failure's report.
        self.console: collections.deque[str] = collections.deque(maxlen=200)
        self.kernel = KernelTrace()

    async def attach(self, page: Page) -> None:
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.errors.append(f"pageerror: {error}"))
        page.on("websocket", self.kernel.attach)
        await page.route("**/*", self._route)

    async def _route(self, route: Route, request: Request) -> None:
        url = urllib.parse.urlsplit(request.url)
        if url.scheme in ("data", "blob") or url.hostname in LOOPBACK:
            await route.continue_()
            return
        self.outside.append(request.url)
        await route.abort()

    def _console(self, message) -> None:  # playwright's ConsoleMessage
        if message.type == "error":
            self.errors.append(f"{message.text} ({message.location.get('url', '')})")
        else:
            self.console.append(f"{message.type}: {message.text[:300]}")


class KernelTrace:
    """The messages on the page's kernel websockets. JupyterLab shows a cell as done (its
    number instead of ``[*]``) once it has both the ``execute_reply`` and an iopub
    ``status: idle`` whose parent is the cell's ``execute_request``."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, str, str, str, str]] = []  # dir, type, id, parent, note

    def attach(self, websocket: Any) -> None:
        if "/api/kernels/" not in websocket.url:
            return
        websocket.on("framesent", lambda frame: self._keep(">", frame))
        websocket.on("framereceived", lambda frame: self._keep("<", frame))

    def _keep(self, direction: str, frame: str | bytes) -> None:
        try:
            header, parent, content = _kernel_frame(frame)
        except (ValueError, KeyError, IndexError, struct.error):
            return
        kind = header.get("msg_type", "")
        note = content.get("execution_state") or str(content.get("execution_count") or "")
        if kind == "execute_reply":
            note += f" {content.get('status')}"
        elif kind == "error":
            note += f" {content.get('ename')}: {str(content.get('evalue'))[:300]}"
        elif kind == "stream":
            note += f" {content.get('name')}: {str(content.get('text'))[:2000]!r}"
        if kind.startswith("comm_"):
            note += f" comm={content.get('comm_id', '')[:8]}"
        subshell = header.get("subshell_id")
        if subshell:
            note += f" subshell={subshell[:8]}"
        # Ids are "<session>_<pid>_<n>" (the kernel's) or "<uuid>" (the page's): their ends
        # tell them apart.
        self.messages.append(
            (direction, kind, header.get("msg_id", "")[-12:], parent.get("msg_id", "")[-12:], note)
        )

    def unfinished(self) -> list[str]:
        """The execute requests that lack their reply or their idle status."""
        replied = {m[3] for m in self.messages if m[1] == "execute_reply"}
        idle = {m[3] for m in self.messages if m[1] == "status" and m[4].startswith("idle")}
        return [
            f"execute_request {m[2]}: reply {'yes' if m[2] in replied else 'MISSING'}, "
            f"idle {'yes' if m[2] in idle else 'MISSING'}"
            for m in self.messages
            if m[1] == "execute_request" and not (m[2] in replied and m[2] in idle)
        ]


def _kernel_frame(frame: str | bytes) -> tuple[dict, dict, dict]:
    """header, parent header and content of one kernel websocket frame: JSON text (the
    legacy protocol), or ``v1.kernel.websocket.jupyter.org``'s binary layout (a count and
    offsets, then channel, header, parent header, metadata, content, buffers)."""
    if isinstance(frame, str):
        message = json.loads(frame)
        return message["header"], message.get("parent_header") or {}, message["content"]
    count = struct.unpack_from("<Q", frame, 0)[0]
    offsets = struct.unpack_from(f"<{count}Q", frame, 8)
    parts = [frame[offsets[i] : offsets[i + 1]] for i in range(min(count - 1, 5))]
    header, parent, content = (json.loads(parts[i] or b"{}") for i in (1, 2, 4))
    return header, parent, content


# -- driving the notebook, as a person does ---------------------------------------------------


async def open_notebook(page: Page, lab: Lab, name: str) -> None:
    """Open ``name`` and wait until its kernel is idle."""
    await page.goto(lab.notebook_url(name))
    await expect(page.locator(".jp-Notebook").first).to_be_visible(timeout=60_000)
    kernel = page.locator(".jp-NotebookPanel-toolbar .jp-KernelName")
    await expect(kernel).to_have_text("Python 3 (ipykernel)", timeout=60_000)
    await wait_kernel_idle(page)


async def wait_kernel_idle(page: Page, timeout: float = 60_000) -> None:
    # The toolbar's kernel status reads "Kernel status: Idle" once the kernel is up.
    status = page.locator(".jp-NotebookPanel-toolbar .jp-Notebook-ExecutionIndicator")
    await expect(status).to_have_attribute("data-status", "idle", timeout=timeout)


async def run_all_cells(page: Page, timeout: float = 90_000) -> None:
    """Run > Run All Cells, then wait until every code cell has run (a number in its prompt)."""
    await page.locator(".lm-MenuBar-item", has_text="Run").first.click()
    await page.locator('.lm-Menu-item[data-command="runmenu:run-all"]').click()
    try:
        await page.wait_for_function(
            """() => {
                const prompts = [...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')];
                return prompts.length > 0
                    && prompts.every((p) => /\\[\\d+\\]/.test(p.textContent));
            }""",
            timeout=timeout,
        )
    except PlaywrightTimeout:
        prompts = await page.locator(".jp-CodeCell .jp-InputPrompt").all_inner_texts()
        raise AssertionError(
            f"Run All did not finish in {timeout / 1000:.0f} s; the cells' prompts: {prompts}"
        ) from None
    await wait_kernel_idle(page)


async def cell_errors(page: Page) -> list[str]:
    """The tracebacks the notebook's cells show."""
    return await page.locator(
        ".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']"
    ).all_inner_texts()


#: Where a failed test's screenshot goes (CI keeps the working tree's files for a look).
FAILURES = ROOT / "test-failures"


#: The state of Panel's comms in the page: each client comm (``window.PyViz.comms``, undefined
#: when it could not be made), and each CommManager model's queue (blocked, buffered events).
PANEL_COMMS = """() => {
  const pyviz = window.PyViz || {};
  const comms = Object.entries(pyviz.comms || {}).map(([id, comm]) =>
    `${id.slice(0, 8)}:${comm === undefined ? 'UNDEFINED' : (comm.connected ? 'open' : 'not-open')}`);
  const managers = [];
  for (const doc of (window.Bokeh && window.Bokeh.documents) || []) {
    const models = doc.all_models || (doc._all_models ? doc._all_models.values() : []);
    for (const model of models) {
      if (/CommManager/.test(`${model.type} ${model.constructor.__name__}`)) {
        managers.push(`${(model.client_comm_id || '').slice(0, 8)}: blocked=${model._blocked}`
          + ` buffered=${(model._event_buffer || []).length}`
          + ` client_comm=${model._client_comm ? 'yes' : 'NO'}`);
      }
    }
  }
  return {comms, managers, kernels: Object.keys(pyviz.kernels || {}).length};
}"""


async def report_failure(page: Page, lab: Lab, watch: PageWatch, test: str) -> None:
    """Print, for a failed test's report, the cells' prompts and error outputs, the page's
    console errors and the tail of JupyterLab's log (its kernels' stderr included), and save
    a screenshot under ``test-failures/``."""
    prompts = await page.locator(".jp-CodeCell .jp-InputPrompt").all_inner_texts()
    print(f"--- {test}: the cells' prompts: {prompts}")
    for error in await cell_errors(page):
        print(f"--- a cell's error output:\n{error}")
    for error in watch.errors:
        print(f"--- console: {error}")
    for line in watch.console:
        print(f"--- console {line}")
    print(f"--- Panel's comms in the page: {await page.evaluate(PANEL_COMMS)}")
    for unfinished in watch.kernel.unfinished():
        print(f"--- kernel: {unfinished}")
    for message in watch.kernel.messages:
        if message[1] == "error" or (message[1] == "execute_reply" and "ok" not in message[4]):
            print("--- kernel:", *message)
    FAILURES.mkdir(exist_ok=True)
    trace = FAILURES / f"{test}.kernel.txt"
    trace.write_text("".join(" ".join(message) + "\n" for message in watch.kernel.messages))
    print(f"--- kernel messages (direction, type, id, parent id, state or count) in {trace}")
    print("--- JupyterLab's log (last 80 lines):")
    print("".join(lab.log[-80:]))
    await page.screenshot(path=FAILURES / f"{test}.png", full_page=True)
