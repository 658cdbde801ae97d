"""redact_url: no password survives, wherever the URL puts it."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dashboard.core.redact import redact_url


@pytest.mark.parametrize(
    "url, shown",
    [
        ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
        ("redis://:pw@127.0.0.1:6379/0", "redis://:***@127.0.0.1:6379/0"),
        ("redis://ada:pw@h/0", "redis://ada:***@h/0"),
        ("redis://h:6379/10?password=R3disPW", "redis://h:6379/10?password=***"),
        ("redis://h/0?db=2&Password=x", "redis://h/0?db=2&Password=***"),
        ("postgresql://atk@h:5432/db?password=S3cret&sslmode=require",
         "postgresql://atk@h:5432/db?password=***&sslmode=require"),
        ("postgresql://h/db?sslpassword=k", "postgresql://h/db?sslpassword=***"),
        ("redis://:R3disPW@127.0.0.1:99999/10", "redis://:***@127.0.0.1:99999/10"),
        ("redis://:pw@h:port/0?password=pw", "redis://:***@h:port/0?password=***"),
        ("/var/lib/dashboard.sqlite3", "/var/lib/dashboard.sqlite3"),
        ("not a url", "not a url"),
        ("redis://:p@ss@[::1/0?password=x", "redis://:***@[::1/0?password=***"),  # unparsable
        ("redis://:p@ss@h/0", "redis://:***@h/0"),
    ],
)  # fmt: skip
def test_passwords_are_hidden(url, shown):
    assert redact_url(url) == shown


# A prefix no URL here contains, so that a hit can only be the password itself.
secret = st.text(st.characters(whitelist_categories=("L", "N")), max_size=20).map(
    lambda text: "Zq9" + text
)


@given(password=secret, port=st.sampled_from(["6379", "99999", "x"]))
def test_no_password_survives(password, port):
    for url in (
        f"redis://:{password}@host:{port}/0",
        f"redis://host:{port}/0?password={password}",
        f"postgresql://u:{password}@host:{port}/db?sslpassword={password}",
        f"redis://:{password}@[bad:{port}/0?password={password}",  # urlsplit refuses it
    ):
        assert password not in redact_url(url)
