"""Untrusted text to markup, decided by the parser that renders it.

Pure (no I/O, no Panel): :func:`render_markdown` turns Markdown into HTML with raw HTML off,
images off and links judged by :func:`judge_link`, which parses them as a browser does.
"""

from .links import WEB_SCHEMES, judge_link
from .markdown import LINK_REL, markdown_literal, render_markdown

__all__ = ["LINK_REL", "WEB_SCHEMES", "judge_link", "markdown_literal", "render_markdown"]
