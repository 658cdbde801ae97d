"""CORS answers: credentials for named origins, ``*`` without them for the wildcard, nothing
for foreign origins."""

from __future__ import annotations

import pytest

from dashboard.core.cors import cors_headers, preflight_headers

HOST = "127.0.0.1:5006"
NAMED = ["app.example:443", "127.0.0.1:8888"]


@pytest.mark.parametrize(
    "origin, allowlist, expected_origin, credentials",
    [
        (None, NAMED, None, False),  # not a browser's cross-origin request
        ("http://127.0.0.1:5006", NAMED, None, False),  # same origin: CORS does not apply
        ("https://app.example", NAMED, "https://app.example", True),
        ("http://127.0.0.1:8888", NAMED, "http://127.0.0.1:8888", True),
        ("http://127.0.0.1:8889", NAMED, None, False),  # same site, another port: foreign
        ("https://evil.example", NAMED, None, False),
        ("null", NAMED, None, False),
        ("https://evil.example", ["*"], "*", False),  # the wildcard never lends cookies
        ("https://app.example", ["*", "app.example:443"], "https://app.example", True),
    ],
)
def test_actual_responses(origin, allowlist, expected_origin, credentials):
    headers = cors_headers(origin, HOST, allowlist)
    assert headers.get("Access-Control-Allow-Origin") == expected_origin
    assert ("Access-Control-Allow-Credentials" in headers) is credentials


def test_preflight_allows_resume_and_bearer_for_a_named_origin():
    headers = preflight_headers(
        "https://app.example",
        HOST,
        NAMED,
        ["GET", "OPTIONS"],
        "GET",
        "authorization, last-event-id",
    )
    assert headers is not None
    assert headers["Access-Control-Allow-Origin"] == "https://app.example"
    assert "Last-Event-ID" in headers["Access-Control-Allow-Headers"]
    assert "Authorization" in headers["Access-Control-Allow-Headers"]
    assert headers["Access-Control-Allow-Methods"] == "GET, OPTIONS"


@pytest.mark.parametrize(
    "origin, method, requested",
    [
        ("https://evil.example", "GET", "authorization"),  # foreign
        ("https://app.example", "DELETE", None),  # a method the route lacks
        ("https://app.example", "GET", "x-custom"),  # a header we never allow
    ],
)
def test_preflight_refusals(origin, method, requested):
    assert preflight_headers(origin, HOST, NAMED, ["GET", "OPTIONS"], method, requested) is None
