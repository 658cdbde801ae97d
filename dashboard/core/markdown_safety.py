"""Make model-written Markdown safe to render: raw HTML becomes text, Markdown stays Markdown.

Panel renders a chat answer as Markdown with raw HTML enabled, and the browser puts the result
into the page, so an answer containing ``<img src=x onerror=...>`` (a prompt injection is
enough) would run script. :func:`escape_raw_html` escapes every ``<`` that could open a tag,
except inside code spans and fenced code blocks, where Markdown shows text literally anyway
(and where ``&lt;`` would be shown as those four characters).

Every raw HTML construct of CommonMark starts with ``<``, so escaping that one character is
enough. The cost is that ``<https://...>`` autolinks show as text.
"""

from __future__ import annotations

import re

_FENCE = re.compile(r" {0,3}(`{3,}|~{3,})")
_BACKTICKS = re.compile(r"`+")


def escape_raw_html(markdown: str) -> str:
    """``markdown`` with every ``<`` outside code replaced by ``&lt;``.

    Works on partial text too (a streaming answer): an unclosed code span is treated as
    text, and an unclosed fence as code to the end, as Markdown itself treats them.
    """
    out: list[str] = []
    fence: str | None = None
    lines = markdown.splitlines(keepends=True)
    for line in lines:
        if fence is not None:
            out.append(line)
            if _closes(line, fence):
                fence = None
            continue
        opened = _FENCE.match(line)
        # A backtick fence's info string may not contain a backtick (else it is no fence).
        if opened and not (opened.group(1)[0] == "`" and "`" in line[opened.end() :]):
            fence = opened.group(1)
            out.append(line)
            continue
        out.append(_escape_outside_code_spans(line))
    return "".join(out)


def _closes(line: str, fence: str) -> bool:
    stripped = line.strip()
    return (
        len(line) - len(line.lstrip(" ")) <= 3
        and len(stripped) >= len(fence)
        and set(stripped) == {fence[0]}
    )


def _escape_outside_code_spans(line: str) -> str:
    out: list[str] = []
    position = 0
    while position < len(line):
        run = _BACKTICKS.search(line, position)
        if run is None:
            out.append(line[position:].replace("<", "&lt;"))
            break
        out.append(line[position : run.start()].replace("<", "&lt;"))
        closing = _matching_run(line, run.end(), len(run.group()))
        if closing is None:  # no closing run: the backticks are literal text
            out.append(run.group())
            position = run.end()
            continue
        out.append(line[run.start() : closing])  # the whole code span, untouched
        position = closing
    return "".join(out)


def _matching_run(line: str, start: int, length: int) -> int | None:
    """The end of the next backtick run of exactly ``length`` after ``start``, if any."""
    for run in _BACKTICKS.finditer(line, start):
        if len(run.group()) == length:
            return run.end()
    return None
