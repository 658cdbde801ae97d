"""judge_link: what a browser would reach is what is judged, and what is returned re-judges to itself."""

from __future__ import annotations

import pytest
from ada_url import URL
from hypothesis import given
from hypothesis import strategies as st

from dashboard.markup.links import WEB_SCHEMES, judge_link

HOSTILE = [
    "javascript:alert(1)",
    "JaVaScRiPt:alert(1)",
    " javascript:alert(1)",
    "java\tscript:alert(1)",
    "javascript&colon;alert(1)",  # nothing decodes it: a relative reference, refused
    "data:text/html,<script>alert(1)</script>",
    "vbscript:msgbox(1)",
    "file:///etc/passwd",
    "mailto:ada@example.com",  # not a web link (markdown allows it with schemes=)
    "/\\evil.example/x",
    "\\\\evil.example",
    "\\/evil.example",
    "/\t/evil.com",
    "/\n/evil.com",
    "//evil.example",
    "///evil.example",
    "https:/\\/evil.example@",
    "/.//evil.example",
    "/..//evil.example",
    "//a.sentinel.invalid/x",
    "https://bank.example@evil.example/",
    "https://user:pass@example.com/",
    "https://",
    "http://",
    "http://%zz/",
    "/x\x00",
    "/x\x7f",
    "/x\x85",
    "/\ud800",
    "",
    " /x",
    "/x ",
    "docs/x",  # where it goes depends on the page
    "#top",
    "?q=1",
    "\\x",
]


@pytest.mark.parametrize("link", HOSTILE)
def test_hostile_links_are_refused(link):
    assert judge_link(link) is None


@pytest.mark.parametrize(
    "link, judged",
    [
        ("https://ci.example.com/run/1", "https://ci.example.com/run/1"),
        ("HTTPS://CI.Example.com:443/a/./b/../c?x=1#f", "https://ci.example.com/a/c?x=1#f"),
        ("http://example.com", "http://example.com/"),
        ("https://example.com/a b", "https://example.com/a%20b"),
        ("https://exämple.com/", "https://xn--exmple-cua.com/"),
        ("http:example.com", "http://example.com/"),  # as a browser reads it
        ("/apps/deploys", "/apps/deploys"),
        ("/a\\b", "/a/b"),  # a backslash is a slash in a path, too
        ("/a/../../b?q=<x>#h", "/b?q=%3Cx%3E#h"),
        ("/%2F%2Fevil.example", "/%2F%2Fevil.example"),  # encoded: stays a path
    ],
)
def test_web_links_and_paths_are_normalized(link, judged):
    assert judge_link(link) == judged


def test_mailto_only_when_asked_for():
    assert judge_link("mailto:ada@example.com", schemes=(*WEB_SCHEMES, "mailto:")) == (
        "mailto:ada@example.com"
    )


# Pieces that make URL parsers disagree, glued together at random.
LINKISH = st.lists(
    st.sampled_from([*"/\\.:@%?#&=;-_~ aZ09\t\x00é", "http", "https:", "//", "evil", "[::1]"]),
    max_size=20,
).map("".join)


@given(st.one_of(LINKISH, st.text(max_size=40)))
def test_a_judged_link_judges_to_itself_and_goes_where_it_says(link):
    judged = judge_link(link)
    if judged is None:
        return
    assert judge_link(judged) == judged
    if judged.startswith("/"):
        assert not judged.startswith(("//", "/\\"))
        # Wherever the page is, the browser stays on its site.
        for base in ("https://dash.example/", "http://127.0.0.1:5006/a/b?c#d"):
            assert URL(judged, base=base).origin == URL(base).origin
    else:
        url = URL(judged)
        assert url.protocol in WEB_SCHEMES and url.hostname and not url.username
        assert url.href == judged
