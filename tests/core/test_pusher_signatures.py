"""Pusher signatures against the published test vectors, and every way a signature must fail.

Vectors: https://pusher.com/docs/channels/library_auth_reference/auth-signatures/ and the
worked example of https://pusher.com/docs/channels/library_auth_reference/rest-api/#authentication
"""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dashboard.core.errors import AuthError, InvalidChannel, InvalidSocketId
from dashboard.core.pusher_signatures import (
    BodyMD5Mismatch,
    InvalidSignature,
    InvalidTimestamp,
    MissingAuthParams,
    UnknownAppKey,
    UnsupportedAuthVersion,
    body_md5,
    request_string_to_sign,
    sign_channel,
    sign_request,
    sign_user,
    signed_params,
    validate_socket_id,
    verify_channel_auth,
    verify_request,
    verify_user_auth,
)

KEY = "278d425bdf160c739803"
SECRET = "7ad3773142a6692b25b8"
SOCKET = "1234.1234"
PRIVATE_SIG = "58df8b0c36d6982b82c3ecf6b4662e34fe8c25bba48f5369f135bf843651c3a4"
PRESENCE_DATA = '{"user_id":10,"user_info":{"name":"Mr. Pusher"}}'
PRESENCE_SIG = "afaed3695da2ffd16931f457e338e6c9f2921fa133ce7dac49f529792be6304c"

# The HTTP API reference's worked example.
EVENTS_BODY = b'{"name":"foo","channels":["project-3"],"data":"{\\"some\\":\\"data\\"}"}'
EVENTS_QUERY = {
    "auth_key": KEY,
    "auth_timestamp": "1353088179",
    "auth_version": "1.0",
    "body_md5": "ec365a775a4cd0599faeb73354201b6f",
}
EVENTS_SIG = "da454824c97ba181a32ccc17a72625ba02771f50b50e1e7430e47a1f3f457e6c"
EVENTS_NOW = 1353088179.0


# --- channel and user auth ----------------------------------------------------------------


def test_private_channel_vector():
    assert sign_channel(KEY, SECRET, SOCKET, "private-foobar") == f"{KEY}:{PRIVATE_SIG}"
    assert verify_channel_auth(KEY, SECRET, SOCKET, "private-foobar", f"{KEY}:{PRIVATE_SIG}")


def test_presence_channel_vector():
    auth = sign_channel(KEY, SECRET, SOCKET, "presence-foobar", PRESENCE_DATA)
    assert auth == f"{KEY}:{PRESENCE_SIG}"
    assert verify_channel_auth(KEY, SECRET, SOCKET, "presence-foobar", auth, PRESENCE_DATA)


GOOD = f"{KEY}:{PRESENCE_SIG}"


@pytest.mark.parametrize(
    ("socket_id", "channel", "auth", "channel_data"),
    [
        pytest.param("1234.1235", "presence-foobar", GOOD, PRESENCE_DATA, id="other socket"),
        pytest.param(SOCKET, "presence-foobaz", GOOD, PRESENCE_DATA, id="other channel"),
        pytest.param(
            SOCKET,
            "presence-foobar",
            GOOD,
            json.dumps(json.loads(PRESENCE_DATA)),  # ", " and ": " separators, same JSON value
            id="re-serialised channel_data",
        ),
        pytest.param(SOCKET, "presence-foobar", GOOD, None, id="channel_data dropped"),
        pytest.param(SOCKET, "presence-foobar", f"other:{PRESENCE_SIG}", PRESENCE_DATA, id="key"),
        pytest.param(SOCKET, "presence-foobar", PRESENCE_SIG, PRESENCE_DATA, id="no key prefix"),
        pytest.param(SOCKET, "presence-foobar", GOOD.upper(), PRESENCE_DATA, id="upper-case hex"),
        pytest.param(SOCKET, "presence-foobar", GOOD + " ", PRESENCE_DATA, id="trailing space"),
        pytest.param(SOCKET, "presence-foobar", "", PRESENCE_DATA, id="empty"),
        pytest.param(SOCKET, "presence-foobar", "é:ü", PRESENCE_DATA, id="non-ascii"),
        pytest.param(SOCKET, "presence-foobar", None, PRESENCE_DATA, id="not a string"),
        pytest.param(SOCKET, "presence-foobar", ["x"], PRESENCE_DATA, id="a list"),
    ],
)
def test_channel_auth_rejects(socket_id, channel, auth, channel_data):
    assert not verify_channel_auth(KEY, SECRET, socket_id, channel, auth, channel_data)


def test_wrong_secret_rejected():
    auth = sign_channel(KEY, "not-the-secret", SOCKET, "private-foobar")
    assert not verify_channel_auth(KEY, SECRET, SOCKET, "private-foobar", auth)


def test_sign_channel_validates_inputs():
    with pytest.raises(InvalidSocketId):
        sign_channel(KEY, SECRET, "1234", "private-foobar")
    with pytest.raises(InvalidChannel):
        sign_channel(KEY, SECRET, SOCKET, "private foo")


def test_user_auth_round_trip_and_rejections():
    user_data = '{"id":"42","user_info":{"name":"Ada"}}'
    auth = sign_user(KEY, SECRET, SOCKET, user_data)
    assert auth.startswith(f"{KEY}:") and len(auth) == len(KEY) + 1 + 64
    assert verify_user_auth(KEY, SECRET, SOCKET, user_data, auth)
    assert not verify_user_auth(KEY, SECRET, "1.2", user_data, auth)
    assert not verify_user_auth(KEY, SECRET, SOCKET, user_data.replace(":", ": "), auth)
    assert not verify_user_auth("other", SECRET, SOCKET, user_data, auth)
    assert not verify_user_auth(KEY, SECRET, SOCKET, None, auth)
    # A channel signature for the same text is not a user signature: "::user::" separates them.
    assert not verify_user_auth(
        KEY, SECRET, SOCKET, user_data, sign_channel(KEY, SECRET, SOCKET, "user")
    )


@pytest.mark.parametrize("socket_id", ["1.1", "123456.987654321", "0.0"])
def test_valid_socket_ids(socket_id):
    assert validate_socket_id(socket_id) == socket_id


@pytest.mark.parametrize(
    "socket_id", ["", "1234", "1234.", ".1234", "a.b", "1.2.3", "1.2\n", " 1.2", "١.٢", 1.2, None]
)
def test_invalid_socket_ids(socket_id):
    with pytest.raises(InvalidSocketId):
        validate_socket_id(socket_id)


ascii_text = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=40)
socket_ids = st.builds("{}.{}".format, st.integers(0, 10**12), st.integers(0, 10**12))


@given(
    secret=ascii_text,
    socket_id=socket_ids,
    channel=st.from_regex(r"private-[A-Za-z0-9_\-=@,.;]{1,20}", fullmatch=True),
    channel_data=st.none() | st.text(max_size=50),
)
def test_channel_sign_verify_round_trip(secret, socket_id, channel, channel_data):
    auth = sign_channel(KEY, secret, socket_id, channel, channel_data)
    assert verify_channel_auth(KEY, secret, socket_id, channel, auth, channel_data)
    assert not verify_channel_auth(KEY, secret, socket_id, channel + "x", auth, channel_data)


@given(secret=ascii_text, socket_id=socket_ids, user_data=st.text(max_size=80))
def test_user_sign_verify_round_trip(secret, socket_id, user_data):
    auth = sign_user(KEY, secret, socket_id, user_data)
    assert verify_user_auth(KEY, secret, socket_id, user_data, auth)
    assert not verify_user_auth(KEY, secret, socket_id, user_data + " ", auth)


# --- HTTP API requests --------------------------------------------------------------------


def test_request_vector():
    assert body_md5(EVENTS_BODY) == EVENTS_QUERY["body_md5"]
    assert request_string_to_sign("post", "/apps/3/events", EVENTS_QUERY) == (
        "POST\n/apps/3/events\nauth_key=278d425bdf160c739803&auth_timestamp=1353088179"
        "&auth_version=1.0&body_md5=ec365a775a4cd0599faeb73354201b6f"
    )
    assert sign_request(SECRET, "POST", "/apps/3/events", EVENTS_QUERY) == EVENTS_SIG
    query = {**EVENTS_QUERY, "auth_signature": EVENTS_SIG}
    verify_request(KEY, SECRET, "POST", "/apps/3/events", query, EVENTS_BODY, now=EVENTS_NOW)


def test_signed_params_reproduces_the_vector():
    query = signed_params(KEY, SECRET, "POST", "/apps/3/events", {}, EVENTS_BODY, 1353088179.7)
    assert query == {**EVENTS_QUERY, "auth_signature": EVENTS_SIG}


def test_string_to_sign_lowercases_sorts_and_does_not_escape():
    params = {"auth_key": "foo", "Name": "Something else", "info": "user_count,subscription_count"}
    assert request_string_to_sign("GET", "/x", {**params, "auth_signature": "ignored"}) == (
        "GET\n/x\nauth_key=foo&info=user_count,subscription_count&name=Something else"
    )


def test_get_without_body_with_and_without_body_md5():
    query = {"info": "user_count", "filter_by_prefix": "presence-"}
    signed = signed_params(KEY, SECRET, "GET", "/apps/3/channels", query, b"", EVENTS_NOW)
    assert "body_md5" not in signed
    verify_request(KEY, SECRET, "GET", "/apps/3/channels", signed, b"", now=EVENTS_NOW)
    # The pusher PyPI SDK sends the MD5 of the empty body on GET requests; that is fine too.
    query = {**query, "body_md5": body_md5(b"")}
    signed = signed_params(KEY, SECRET, "GET", "/apps/3/channels", query, b"", EVENTS_NOW)
    verify_request(KEY, SECRET, "GET", "/apps/3/channels", signed, b"", now=EVENTS_NOW)


def _signed(**changes):
    query = signed_params(KEY, SECRET, "POST", "/apps/3/events", {}, EVENTS_BODY, EVENTS_NOW)
    query.update(changes)
    return {k: v for k, v in query.items() if v is not None}


def resign(query):
    """Re-sign ``query`` so that only the property under test is wrong."""
    return {**query, "auth_signature": sign_request(SECRET, "POST", "/apps/3/events", query)}


@pytest.mark.parametrize(
    ("query", "body", "now", "error", "message"),
    [
        (_signed(auth_key=None), EVENTS_BODY, EVENTS_NOW, MissingAuthParams, "auth_key"),
        (_signed(auth_signature=None), EVENTS_BODY, EVENTS_NOW, MissingAuthParams, "auth_sig"),
        (
            {"name": "x"},
            EVENTS_BODY,
            EVENTS_NOW,
            MissingAuthParams,
            "auth_key, auth_timestamp, auth_version, auth_signature",
        ),
        (resign(_signed(auth_key="other")), EVENTS_BODY, EVENTS_NOW, UnknownAppKey, "auth_key"),
        (
            resign(_signed(auth_version="2.0")),
            EVENTS_BODY,
            EVENTS_NOW,
            UnsupportedAuthVersion,
            "1.0",
        ),
        (
            resign(_signed(auth_timestamp="1353088179.5")),
            EVENTS_BODY,
            EVENTS_NOW,
            InvalidTimestamp,
            "integer",
        ),
        (
            resign(_signed(auth_timestamp="soon")),
            EVENTS_BODY,
            EVENTS_NOW,
            InvalidTimestamp,
            "integer",
        ),
        (
            resign(_signed(auth_timestamp="-5")),
            EVENTS_BODY,
            EVENTS_NOW,
            InvalidTimestamp,
            "integer",
        ),
        (_signed(), EVENTS_BODY, EVENTS_NOW + 601, InvalidTimestamp, "within 600 s"),
        (_signed(), EVENTS_BODY, EVENTS_NOW - 601, InvalidTimestamp, "within 600 s"),
        (resign(_signed(body_md5=None)), EVENTS_BODY, EVENTS_NOW, BodyMD5Mismatch, "required"),
        (_signed(), EVENTS_BODY + b" ", EVENTS_NOW, BodyMD5Mismatch, "does not match"),
        (_signed(), b"", EVENTS_NOW, BodyMD5Mismatch, "does not match"),
        (_signed(auth_signature="0" * 64), EVENTS_BODY, EVENTS_NOW, InvalidSignature, "signature"),
        (_signed(auth_signature="é"), EVENTS_BODY, EVENTS_NOW, InvalidSignature, "signature"),
        (_signed(extra="added after signing"), EVENTS_BODY, EVENTS_NOW, InvalidSignature, "sig"),
    ],
    ids=[
        "no auth_key",
        "no auth_signature",
        "no auth params",
        "wrong key",
        "auth_version 2.0",
        "fractional timestamp",
        "word timestamp",
        "negative timestamp",
        "601 s ahead",
        "601 s behind",
        "body without body_md5",
        "body changed",
        "body removed",
        "bad signature",
        "non-ascii signature",
        "param added",
    ],
)
def test_verify_request_rejects(query, body, now, error, message):
    with pytest.raises(error, match=message) as info:
        verify_request(KEY, SECRET, "POST", "/apps/3/events", query, body, now=now)
    assert isinstance(info.value, AuthError)


def test_verify_request_accepts_skew_up_to_the_limit():
    for now in (EVENTS_NOW + 600, EVENTS_NOW - 600):
        verify_request(KEY, SECRET, "POST", "/apps/3/events", _signed(), EVENTS_BODY, now=now)


def test_verify_request_binds_method_and_path():
    query = _signed()
    with pytest.raises(InvalidSignature):
        verify_request(KEY, SECRET, "PUT", "/apps/3/events", query, EVENTS_BODY, now=EVENTS_NOW)
    with pytest.raises(InvalidSignature):
        verify_request(KEY, SECRET, "POST", "/apps/4/events", query, EVENTS_BODY, now=EVENTS_NOW)


@given(
    params=st.dictionaries(
        st.from_regex(r"[a-z_]{1,10}", fullmatch=True).filter(lambda k: not k.startswith("auth_")),
        st.text(max_size=20),
        max_size=5,
    ),
    body=st.binary(max_size=64),
    skew=st.integers(-600, 600),
)
def test_signed_params_always_verify(params, body, skew):
    query = signed_params(KEY, SECRET, "POST", "/apps/1/events", params, body, EVENTS_NOW)
    verify_request(KEY, SECRET, "POST", "/apps/1/events", query, body, now=EVENTS_NOW + skew)
