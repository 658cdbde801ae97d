"""The origin allowlist, table-driven, plus properties of the same-host rule."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dashboard.core.origins import matches_allowlist, origin_allowed, parse_origin, same_host


@pytest.mark.parametrize(
    ("origin", "expected"),
    [
        ("http://127.0.0.1:5006", ("127.0.0.1", 5006)),
        ("HTTP://Example.COM", ("example.com", 80)),
        ("https://example.com", ("example.com", 443)),
        ("http://[::1]:5006", ("::1", 5006)),
        ("null", None),
        ("", None),
        ("http://example.com:notaport", None),
        ("http://example.com:99999", None),
    ],
)
def test_parse_origin(origin, expected):
    assert parse_origin(origin) == expected


@pytest.mark.parametrize(
    ("origin", "allowlist", "expected"),
    [
        ("http://localhost:5006", ["localhost:5006"], True),
        ("http://localhost:5007", ["localhost:5006"], False),
        ("http://localhost:5006", ["localhost"], True),  # no port: any port, as Bokeh
        ("http://example.com", ["example.com:80"], True),
        ("https://example.com", ["example.com:443"], True),
        ("https://example.com", ["example.com:80"], False),
        ("http://EXAMPLE.com:8080", ["example.COM:8080"], True),
        ("http://example.com.evil.net", ["example.com"], False),
        ("http://evil-example.com", ["example.com"], False),
        ("http://192.168.1.7:5006", ["192.168.*.*:5006"], True),
        ("http://10.0.1.7:5006", ["192.168.*.*:5006"], False),
        ("http://example.com:1234", ["example.com:*"], True),
        ("http://anything:5006", ["*:5006"], True),
        ("http://anything:5007", ["*:5006"], False),
        ("http://[::1]:5006", ["::1:5006"], True),  # what DashboardServer builds for ::1
        ("http://[::1]:5006", ["[::1]:5006"], True),
        ("http://anything.at.all:1", ["*"], True),
        ("null", ["*"], True),
        ("null", ["localhost:5006"], False),
        ("http://localhost:5006", [], False),
    ],
)
def test_matches_allowlist(origin, allowlist, expected):
    assert matches_allowlist(origin, allowlist) is expected


@pytest.mark.parametrize(
    ("origin", "host", "fetch_site", "expected"),
    [
        (None, "127.0.0.1:5006", None, True),  # not a browser
        ("http://127.0.0.1:5006", "127.0.0.1:5006", None, True),
        ("http://example.com", "example.com", None, True),
        ("http://example.com:80", "example.com", None, True),
        ("https://example.com", "example.com:443", None, True),
        ("http://evil.example", "127.0.0.1:5006", None, False),
        ("http://friend:8080", "127.0.0.1:5006", None, True),
        ("https://public.example", "127.0.0.1:5006", "same-origin", True),  # behind a proxy
        ("http://127.0.0.1:5006", "127.0.0.1:5006", "cross-site", False),
        ("http://friend:8080", "127.0.0.1:5006", "same-site", True),
        (None, "127.0.0.1:5006", "cross-site", False),
        ("http://evil.example", None, None, False),
    ],
)
def test_origin_allowed(origin, host, fetch_site, expected):
    assert origin_allowed(origin, host, ["friend:8080"], fetch_site) is expected


hosts = st.from_regex(r"[a-z][a-z0-9-]{0,10}(\.[a-z][a-z0-9-]{0,10}){0,3}", fullmatch=True)
ports = st.integers(min_value=1, max_value=65535)


@given(hosts, ports, st.sampled_from(["http", "https"]))
def test_an_origin_is_its_own_host_and_matches_itself_as_a_pattern(host, port, scheme):
    origin = f"{scheme}://{host}:{port}"
    assert same_host(origin, f"{host}:{port}")
    assert matches_allowlist(origin, [f"{host}:{port}"])
    assert not matches_allowlist(origin, [f"{host}:{port % 65535 + 1}"])
    assert not matches_allowlist(origin, [f"x{host}:{port}"])


@pytest.mark.parametrize(
    "host, allowed",
    [
        ("127.0.0.1:5006", True),
        ("localhost", True),
        ("LOCALHOST:1", True),
        ("[::1]:5006", True),
        ("dash.example:443", True),  # named by the allowlist (a reverse proxy's name)
        ("rebind.evil.example:5006", False),  # DNS rebinding
        ("127.0.0.1.evil.example", False),
        ("", False),
        (None, False),
        ("a b", False),
    ],
)
def test_a_loopback_server_answers_only_its_own_names(host, allowed):
    from dashboard.core.origins import LOOPBACK_HOSTS, allowlist_hosts, host_allowed

    hosts = LOOPBACK_HOSTS | allowlist_hosts(["dash.example:443", "*", "192.168.*.*", "x:*"])
    assert host_allowed(host, hosts) is allowed
    assert host_allowed(host, None)  # bound beyond loopback: the operator chose to be reached
