"""escape_raw_html: raw HTML never survives, code is never mangled."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st
from markdown_it import MarkdownIt

from dashboard.core.markdown_safety import escape_raw_html


@pytest.mark.parametrize(
    "source, expected",
    [
        ("plain **bold**", "plain **bold**"),
        ("<img src=x onerror=alert(1)>", "&lt;img src=x onerror=alert(1)>"),
        ("a < b and `x < y`", "a &lt; b and `x < y`"),
        ("``code with ` inside < ``", "``code with ` inside < ``"),
        ("unclosed `code < here", "unclosed `code &lt; here"),
        (
            "```html\n<b>shown as code</b>\n```\n<b>x</b>",
            "```html\n<b>shown as code</b>\n```\n&lt;b>x&lt;/b>",
        ),
        ("~~~\n<i>\n~~~", "~~~\n<i>\n~~~"),
        ("```\n<b>streaming, not closed yet", "```\n<b>streaming, not closed yet"),
        ("``` not`a fence\n<b>x</b>", "``` not`a fence\n&lt;b>x&lt;/b>"),
        ("    ```\n<b>x</b>", "    ```\n&lt;b>x&lt;/b>"),  # indented 4: code, not a fence
    ],
)
def test_table(source, expected):
    assert escape_raw_html(source) == expected


_renderer = MarkdownIt("gfm-like")  # what Panel's Markdown pane uses, raw HTML on
# Every tag Markdown itself writes for text made of the alphabet below.
_MARKDOWN_TAGS = {
    "p", "code", "pre", "br", "hr", "h1", "h2", "h3", "h4", "h5", "h6", "del", "s", "em",
    "strong", "blockquote", "ul", "ol", "li", "table", "thead", "tbody", "tr", "th", "td",
}  # fmt: skip


@given(st.text(alphabet="<>ab `~\n/=\"'img-*#|", max_size=80))
def test_no_tag_of_the_input_ever_renders(source):
    html = _renderer.render(escape_raw_html(source))
    tags = {name.lower() for name in re.findall(r"</?([a-zA-Z][a-zA-Z0-9]*)", html)}
    assert tags <= _MARKDOWN_TAGS, (source, html)
