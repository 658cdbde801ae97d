"""The components in a notebook, working and with nothing fetched from the internet:
:func:`notebook_extension`.

``pn.extension(inline=True)`` puts Panel's and Bokeh's JavaScript into the notebook, but in
JupyterLab 4 (Panel 1.9, ipykernel 7) this still leaves the machine or fails:

* **Stylesheets of models made after the first render.** Panel inlines the stylesheets of what a
  cell displays, once (``panel.io.notebook.patch_inline_stylesheets``); a chat message, a
  notification row or a legend added later links ``cdn.holoviz.org`` (the theme's
  ``default.css`` and ``native.css``, ``loading.css``, ``chat_feed.css`` ...): Panel resolves
  those links against the document's ``dist_url`` and falls back to its CDN when the document
  has none, which a notebook document never has (``Reactive._get_properties``). Its maintainers
  say as much of the inline patch (holoviz/panel#7701: "If the table is added dynamically at
  some later point it won't catch that"). Here the stylesheets that a document's pending
  changes link are inlined just before the changes are sent (:func:`inline_pending`), and the
  links themselves point at Panel's Jupyter server extension, never the CDN (:func:`keep_local`).
* **Toasts.** The notification area needs the Notyf library, which the notebook never loads
  ("Notyf is not defined": Panel names it by a path relative to the page, which JupyterLab
  resolves under ``/lab/tree/``); it is put in the page from Panel's bundled copy, with its CSS.
* **Icons.** Bokeh's ``TablerIcon`` (the chat's buttons) loads the Tabler webfont from
  ``cdn.jsdelivr.net``; it gets the subset the dashboard ships (``dashboard/ui/assets/tabler``),
  the font inlined as a ``data:`` URL.
* **Cells left at** ``[*]``: ipykernel 7 can give a cell's end to the cell before it when
  comm messages arrive as a cell ends, and "Run All" then never finishes; the kernel is
  guarded against that (:mod:`dashboard.ui.kernel_parents`).
* **Widgets deaf to typing**: JupyterLab sends a widget's messages on a kernel subshell, where
  they can overtake the widget's ``comm_open`` and be dropped; Panel's page then waits for ever
  for their acknowledgement. They are held until the comm opens
  (:mod:`dashboard.ui.kernel_comms`).
* **Lost and out-of-order updates** ("reference ... isn't known" in the page's console). The
  page's widget messages arrive on a kernel subshell thread and are handled on the kernel's main
  loop, where the cells and the components' updates run (see :func:`_install_hooks`); and
  changes made before the page has opened an output's comm are held and sent together once it
  has, instead of Panel's late, unordered retries.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import json
import os
import posixpath
import re
import weakref
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import panel as pn
from bokeh.document import Document
from bokeh.document.events import ModelChangedEvent, RootAddedEvent
from bokeh.model import Model
from bokeh.model.util import collect_models
from bokeh.models import ImportedStyleSheet, InlineStyleSheet
from bokeh.models.ui import UIElement
from panel.io.resources import CDN_DIST, DIST_DIR, LOCAL_DIST
from panel.io.state import state

from .kernel_comms import hold_early_comm_messages
from .kernel_parents import keep_cell_parents
from .tasks import running_loop

ASSETS = Path(__file__).resolve().parent / "assets"
ICONS_JS = ASSETS / "offline-icons-notebook.js"
NOTYF = DIST_DIR / "bundled" / "notificationarea" / "notyf@3"

#: The kernel's main loop, where the cells run (set by notebook_extension()).
_MAIN: list[asyncio.AbstractEventLoop | None] = [None]
#: Notebook documents kept local, each with its inline copies of Panel's stylesheets by file.
_LOCAL: weakref.WeakKeyDictionary[Document, _Output] = weakref.WeakKeyDictionary()
#: Seconds between two looks at whether the page has opened an output's comm.
COMM_POLL = 0.1


@dataclass
class _Output:
    """A notebook output's document: its comm to the page, and its inline stylesheet copies."""

    comm: Any = None
    sheets: dict[str, InlineStyleSheet] = field(default_factory=dict)
    waiting: bool = False


def notebook_extension(*args: str, **params: Any) -> None:
    """``pn.extension(*args, inline=True, **params)`` for this package's components, plus what
    a notebook needs to show them offline in JupyterLab (see the module doc): toasts (Notyf),
    the chat's icons, and the stylesheets of models made after a cell's first render served by
    the Jupyter server rather than Panel's CDN.

    Call it once, at the top of a notebook, instead of ``pn.extension(...)``. Toasts need
    ``notifications=True`` (:class:`~dashboard.ui.NotificationCenter` sends them there).

    Args:
        *args: Panel extensions to load, as for ``pn.extension``.
        **params: ``pn.extension`` parameters; ``inline`` is always ``True``.
    """
    params["inline"] = True
    # Cells run on the kernel's main loop: the page's messages are handled there too.
    _MAIN[0] = running_loop()
    _install_hooks()
    _guard_kernel()
    # Before Panel displays the notification area, whose view needs Notyf when it renders.
    _run_js(_notyf_js())
    _run_js(_icons_js())  # before Panel's loader: it patches Bokeh as Bokeh arrives
    pn.extension(*args, **params)


def keep_local(document: Document, comm: Any = None) -> None:
    """Keep the stylesheets of ``document``'s later models off the internet (see the module
    doc): inlined when its changes are sent, else linked from the Jupyter server. Idempotent."""
    if document in _LOCAL:
        return
    _LOCAL[document] = _Output(comm)
    # Panel reads dist_url from the template variables when it makes a model; Panel's own
    # notebook rendering sets this one for server resources (panel.io.notebook.render_model).
    document._template_variables.setdefault("dist_url", panel_dist_url())


def panel_dist_url() -> str:
    """Where the Jupyter server this kernel belongs to serves Panel's ``dist``: Panel's Jupyter
    server extension (installed and enabled with Panel) at ``panel-preview/static/extensions``,
    under JupyterHub's per-user prefix when there is one."""
    prefix = os.environ.get("JUPYTERHUB_SERVICE_PREFIX", "/")
    return f"{prefix.rstrip('/')}/panel-preview/{LOCAL_DIST}"


def inline_pending(document: Document) -> None:
    """Replace the Panel stylesheets that ``document``'s pending changes link by inline copies,
    before the changes are sent: the copies go out in the same message, and the page never
    asks for the links (nor for models it was never sent)."""
    output = _LOCAL.get(document)
    if output is None:
        return
    sheets = output.sheets
    models: list[Model] = []
    for event in list(document.callbacks._held_events):
        if isinstance(event, ModelChangedEvent):
            if event.attr == "stylesheets":
                models.append(event.model)
            if isinstance(event.new, Model | list | tuple | dict):
                models.extend(collect_models(event.new))
        elif isinstance(event, RootAddedEvent):
            models.extend(collect_models(event.model))
    for model in models:
        if isinstance(model, UIElement) and model.stylesheets:
            inlined = [_inline_sheet(sheet, sheets) for sheet in model.stylesheets]
            if any(new is not old for new, old in zip(inlined, model.stylesheets, strict=True)):
                model.stylesheets = inlined


def _inline_sheet(sheet: Any, sheets: dict[str, InlineStyleSheet]) -> Any:
    if not isinstance(sheet, ImportedStyleSheet):
        return sheet
    path = _dist_path(str(sheet.url))
    if path is None:
        return sheet
    if path not in sheets:  # one model per file and document: its CSS is sent once
        css = _dist_text(path)
        if css is None:
            return sheet
        sheets[path] = InlineStyleSheet(css=css)
    return sheets[path]


def _dist_path(url: str) -> str | None:
    """The file of Panel's ``dist`` that ``url`` names, in any of the forms Panel writes."""
    url = url.split("?", 1)[0]
    for prefix in (CDN_DIST, panel_dist_url(), "./" + LOCAL_DIST, LOCAL_DIST):
        if url.startswith(prefix):
            return url[len(prefix) :]
    return None


@functools.cache
def _dist_text(path: str) -> str | None:
    root = DIST_DIR.resolve()
    file = (root / path).resolve()
    if not file.is_relative_to(root) or not file.is_file():
        return None
    return _resolve_imports(file.read_text(encoding="utf-8"), posixpath.dirname(path))


#: ``@import url('x.css');`` with a relative URL.
_IMPORT = re.compile(r"""@import\s+url\(\s*['"]?(?![a-z]+:|/)([^'")]+)['"]?\s*\)\s*;?""")


def _resolve_imports(css: str, folder: str) -> str:
    """``css`` with its relative ``@import`` rules replaced by the files they name, from Panel's
    ``dist`` (``folder`` is where ``css`` lives there). Inlined, a relative import would be
    resolved against the notebook's page: Panel's ``chat_interface.css`` imports
    ``chat_feed.css``, which JupyterLab was asked for as ``/lab/tree/chat_feed.css``."""

    def inline(match: re.Match[str]) -> str:
        imported = _dist_text(posixpath.normpath(posixpath.join(folder, match.group(1))))
        return imported if imported is not None else match.group(0)

    return _IMPORT.sub(inline, css)


def _resolve_inline_imports(models: Iterable[Model]) -> None:
    """The same for the inline copies Panel made of its stylesheets at a first render."""
    for model in models:
        if isinstance(model, InlineStyleSheet) and "@import" in model.css:
            css = _resolve_imports(model.css, "css")  # the one folder of dist that imports
            if css != model.css:
                model.css = css


def _install_hooks() -> None:
    """Have every document Panel displays in the notebook :func:`keep_local`,
    :func:`inline_pending` run before Panel sends a document's changes, and the page's messages
    handled on the kernel's main loop.

    Panel has no hooks for these; its one place for a new notebook output is
    ``_render_mimebundle`` (every displayed object, the notification area too), for sending
    changes to the page ``panel.io.notebook.push``, which asks ``diff`` for the message, and
    for the page's messages ``_on_msg``.

    Why the main loop: JupyterLab (4.4 and later, by default) sends widget messages on a kernel
    *subshell*, which ipykernel 7 runs on a thread of its own, while the cells, and the
    components' updates (:mod:`dashboard.ui.tasks`), run on the main loop. A Panel notebook
    document is not thread-safe: ``_on_msg`` releases the document's hold, which hands every
    change recorded meanwhile on the other thread to nobody, so the page misses models and logs
    "reference ... isn't known". Handling the messages where the cells run keeps each document
    on one thread, as it was before subshells.
    """
    from panel.io import notebook
    from panel.viewable import MimeRenderMixin

    render = MimeRenderMixin._render_mimebundle
    if getattr(render, "_dashboard_local", False):
        return

    @functools.wraps(render)
    def render_local(
        self: Any, model: Model, doc: Document, comm: Any, *args: Any, **kwargs: Any
    ) -> Any:
        keep_local(doc, comm)
        _resolve_inline_imports(model.references())
        return render(self, model, doc, comm, *args, **kwargs)

    diff = notebook.diff

    @functools.wraps(diff)
    def diff_inline(doc: Document, *args: Any, **kwargs: Any) -> Any:
        output = _LOCAL.get(doc)
        if output is not None and output.comm is not None and not output.comm._comm:
            # The page has not opened the output's comm yet. Panel would compute the message
            # now and send it 0.1 s later, by then possibly after a newer one that refers to
            # models this one defines ("reference ... isn't known"). The changes stay held and
            # go out together, in order, once the comm is open.
            _push_when_open(doc, output)
            return None
        inline_pending(doc)
        return diff(doc, *args, **kwargs)

    on_msg = MimeRenderMixin._on_msg

    @functools.wraps(on_msg)
    def on_msg_main(self: Any, ref: str, manager: Any, msg: Any) -> None:
        main = _MAIN[0]
        if main is None or main.is_closed() or main is running_loop():
            _handle(on_msg, self, ref, manager, msg)
        else:
            main.call_soon_threadsafe(_handle, on_msg, self, ref, manager, msg)

    render_local._dashboard_local = True  # type: ignore[attr-defined]
    MimeRenderMixin._render_mimebundle = render_local  # type: ignore[method-assign]
    MimeRenderMixin._on_msg = on_msg_main  # type: ignore[method-assign]
    notebook.diff = diff_inline


def _guard_kernel() -> None:
    """In an IPython kernel, :func:`~dashboard.ui.kernel_parents.keep_cell_parents` (the
    widgets' comm messages would otherwise leave "Run All" stuck at a cell) and
    :func:`~dashboard.ui.kernel_comms.hold_early_comm_messages` (a widget's first messages,
    dropped when they overtake its comm_open, would leave it deaf to typing)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return
    kernel = getattr(get_ipython(), "kernel", None)
    if kernel is not None:
        keep_cell_parents(kernel)
        hold_early_comm_messages(kernel)


def _run_js(code: str) -> None:
    """Run ``code`` in the page as Panel runs its loader: JupyterLab's PyViz extension executes
    this MIME type (a plain ``application/javascript`` output is not run there)."""
    from IPython.display import publish_display_data
    from panel.io.notebook import LOAD_MIME

    publish_display_data(data={LOAD_MIME: code, "application/javascript": code})


def _handle(on_msg: Any, viewable: Any, ref: str, manager: Any, msg: Any) -> None:
    # Panel's _on_msg releases the document's hold, which drops the changes held meanwhile:
    # send those first.
    view = state._views.get(ref)
    if view is not None:
        _flush(view[2])
    on_msg(viewable, ref, manager, msg)


def _flush(doc: Document) -> None:
    from panel.io import notebook

    output = _LOCAL.get(doc)
    comm = output.comm if output is not None else None
    if comm is not None and comm._comm and doc.callbacks._held_events:
        notebook.push(doc, comm)


def _push_when_open(doc: Document, output: _Output) -> None:
    if output.waiting:
        return
    loop = running_loop() or _MAIN[0]
    if loop is None:
        return  # no loop to wait on: the next change sends these ones too
    output.waiting = True
    ref = weakref.ref(doc)

    def retry() -> None:
        doc = ref()
        if doc is None:
            return
        output.waiting = False
        if output.comm._comm:
            _flush(doc)
        else:
            _push_when_open(doc, output)

    loop.call_later(COMM_POLL, retry)


@functools.cache
def _notyf_js() -> str:
    script = (NOTYF / "notyf.min.js").read_text(encoding="utf-8")
    css = (NOTYF / "notyf.min.css").read_text(encoding="utf-8")
    # The bundle declares `var Notyf`: inside a function that is a local, made global here. A
    # notebook run again must not load it twice.
    return f"""
if (typeof window.Notyf === "undefined") {{
  (function () {{
{script}
    window.Notyf = Notyf;
  }})();
  var style = document.createElement("style");
  style.id = "dashboard-notyf-css";
  style.textContent = {json.dumps(css)};
  document.head.appendChild(style);
}}
"""


@functools.cache
def _icons_js() -> str:
    font = base64.b64encode((ASSETS / "tabler" / "fonts" / "tabler-icons.woff2").read_bytes())
    font_url = f"data:font/woff2;base64,{font.decode()}"
    classes = (ASSETS / "tabler" / "tabler-icons.min.css").read_text(encoding="utf-8")
    classes = classes.replace("./fonts/tabler-icons.woff2", font_url)
    font_face = (
        '@font-face{font-family:"tabler-icons";font-style:normal;font-weight:400;'
        f'src:url("{font_url}") format("woff2")}}'
    )
    data = json.dumps({"fontFace": font_face, "iconCss": classes})
    return f"window.__dashboard_tabler = {data};\n" + ICONS_JS.read_text(encoding="utf-8")
