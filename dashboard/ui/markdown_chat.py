"""Panel's ChatInterface with every message's text shown through :func:`render_markdown`.

Panel renders a text message as a Markdown pane with raw HTML on, so a question typed as
``<img src=x onerror=...>`` (or a model's answer that says it) would run script. Here a text
message goes through Panel's ``renderers`` hook into an HTML pane of
:func:`~dashboard.markup.render_markdown`'s output, where raw HTML is already text. The message's
``object`` stays the text as written: what the history sends back to the model.
"""

from __future__ import annotations

import html
import logging
from typing import Any, ClassVar

import panel as pn
from panel.io.resources import CDN_DIST

from ..markup import render_markdown

log = logging.getLogger(__name__)

#: Panel's own Markdown look (code blocks, tables), as its Markdown pane loads it.
MARKDOWN_CSS = f"{CDN_DIST}css/markdown.css"

#: A message holds its content in a layout of class ``placeholder``, and Panel's Bootstrap
#: design loads Bootstrap's CSS into every shadow root, where its ``.placeholder`` (a loading
#: skeleton) matches it: half opacity, a grey band, a wait cursor. ``:host .placeholder``
#: outranks that rule wherever the sheets come in.
MESSAGE_CSS = """
:host .placeholder { opacity: 1; cursor: auto; background-color: transparent; }
"""

#: The text box on a line of its own, the buttons on the next, so a narrow chat does not cut
#: the box down to a few letters ("Send a").
INPUT_CSS = """
:host(.chat-interface-input-row) { flex-wrap: wrap; row-gap: 6px; }
.chat-interface-input-widget { flex: 1 0 100%; }
"""


def markdown_pane(text: Any) -> pn.pane.HTML:
    """``text`` rendered by :func:`~dashboard.markup.render_markdown`, in an HTML pane.

    Args:
        text: a message's ``object``.

    Returns:
        The pane to show it in.

    Raises:
        TypeError: ``text`` is not a string; Panel then renders the object its own way.
    """
    if not isinstance(text, str):
        raise TypeError(f"not text: {type(text).__name__}")
    try:
        shown = render_markdown(text)
    except Exception:
        # Panel would swallow the error and fall back to its raw-HTML Markdown pane.
        log.exception("rendering a chat message failed; showing it as plain text")
        shown = f"<pre>{html.escape(text)}</pre>"
    # "message" draws the bubble; Panel adds it only to panes without classes of their own.
    classes = ["markdown", "message"] if shown else ["markdown"]
    return pn.pane.HTML(shown, css_classes=classes, stylesheets=[MARKDOWN_CSS])


class _MarkdownMessage(pn.chat.ChatMessage):
    """A ChatMessage whose rendered text is updated in place and copied as written."""

    _stylesheets: ClassVar[list[str]] = [*pn.chat.ChatMessage._stylesheets, MESSAGE_CSS]

    def _create_panel(self, value: Any, old: Any = None) -> Any:
        updates_old = getattr(self, "_internal", False)
        pane = super()._create_panel(value, old=old)
        # When a renderer's new pane is of the type of the old one, which Panel made itself,
        # Panel copies the new pane's parameters onto the old one but hands back the new one:
        # the message would swap in a fresh Bokeh model on every streamed token. Keep the old
        # pane, already up to date.
        if (
            updates_old
            and self._internal
            and isinstance(old, pn.pane.HTML)
            and type(pane) is type(old)
        ):
            return old
        return pane

    def _update_chat_copy_icon(self) -> None:
        super()._update_chat_copy_icon()
        if isinstance(self.object, str) and self.chat_copy_icon.visible:
            self.chat_copy_icon.value = self.object  # the text, not the HTML shown


class MarkdownChatInterface(pn.chat.ChatInterface):
    """:class:`panel.chat.ChatInterface` whose text messages render through
    :func:`markdown_pane`; other objects (a plot, a widget) render as Panel renders them."""

    _message_type: ClassVar[type[pn.chat.ChatMessage]] = _MarkdownMessage
    _stylesheets: ClassVar[list[str]] = [*pn.chat.ChatInterface._stylesheets, INPUT_CSS]

    def __init__(self, **params: Any) -> None:
        params.setdefault("renderers", [markdown_pane])
        super().__init__(**params)
