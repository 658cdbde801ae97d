"""User tokens: round trips, expiry, tampering, and keys kept apart from channel signatures."""

from __future__ import annotations

import base64
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dashboard.core.errors import AuthError, ValidationError
from dashboard.core.pusher_signatures import sign_channel
from dashboard.core.user_tokens import (
    BadUserTokenSignature,
    ExpiredUserToken,
    InvalidUserId,
    MalformedUserToken,
    UserIdentity,
    issue_user_token,
    validate_name,
    verify_user_token,
)

SECRET = "s3cret"
NOW = 1_700_000_000


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def test_round_trip_with_and_without_name():
    token = issue_user_token(SECRET, "alice", "Ada Lovelace", ttl=60, now=NOW)
    assert verify_user_token(SECRET, token, now=NOW + 59) == UserIdentity("alice", "Ada Lovelace")
    bare = verify_user_token(SECRET, issue_user_token(SECRET, "bob", now=NOW), now=NOW)
    assert bare == UserIdentity("bob", None) and bare.display_name == "bob"


def test_format_is_compact_and_readable():
    token = issue_user_token(SECRET, "alice", ttl=10, now=NOW)
    payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert claims == {"sub": "alice", "exp": NOW + 10}
    assert len(base64.urlsafe_b64decode(signature + "=")) == 32  # SHA-256


def test_expiry_is_exclusive():
    token = issue_user_token(SECRET, "alice", ttl=60, now=NOW)
    with pytest.raises(ExpiredUserToken):
        verify_user_token(SECRET, token, now=NOW + 60)


@pytest.mark.parametrize(
    "mutate",
    [
        lambda t: t[:-5] + ("A" if t[-5] != "A" else "B") + t[-4:],  # a signature byte
        lambda t: (
            b64(json.dumps({"sub": "mallory", "exp": NOW + 60}).encode()) + "." + t.split(".")[1]
        ),  # another payload under the old signature
    ],
)
def test_tampering_is_a_bad_signature(mutate):
    token = issue_user_token(SECRET, "alice", ttl=60, now=NOW)
    with pytest.raises(BadUserTokenSignature):
        verify_user_token(SECRET, mutate(token), now=NOW)


def test_only_one_spelling_is_accepted():
    token = issue_user_token(SECRET, "alice", now=NOW)
    # The last of 43 characters holds 4 bits of the signature and 2 unused ones.
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    last = alphabet.index(token[-1])
    variant = token[:-1] + alphabet[last ^ 1]
    with pytest.raises(MalformedUserToken):
        verify_user_token(SECRET, variant, now=NOW)


def test_other_secret_or_purpose_is_a_bad_signature():
    token = issue_user_token(SECRET, "alice", now=NOW)
    with pytest.raises(BadUserTokenSignature):
        verify_user_token("other", token, now=NOW)
    with pytest.raises(BadUserTokenSignature):
        verify_user_token(SECRET, token, now=NOW, purpose="dashboard-identity-cookie")


def test_a_channel_signature_is_not_a_user_token():
    # Same secret, but the raw secret signs channels and a derived key signs tokens.
    payload = b64(json.dumps({"sub": "alice", "exp": NOW + 60}).encode())
    hex_sig = sign_channel("key", SECRET, "1.1", "private-x").split(":")[1]
    with pytest.raises(BadUserTokenSignature):
        verify_user_token(SECRET, f"{payload}.{b64(bytes.fromhex(hex_sig))}", now=NOW)


@pytest.mark.parametrize(
    "token", [None, 42, "", "nodot", ".sig", "payload.", "a.b.c", "p@y.sig", "x" * 5000]
)
def test_malformed(token):
    with pytest.raises(MalformedUserToken):
        verify_user_token(SECRET, token, now=NOW)


def test_errors_are_auth_errors_with_codes():
    for cls in (MalformedUserToken, BadUserTokenSignature, ExpiredUserToken):
        assert issubclass(cls, AuthError) and cls.code
    assert issubclass(InvalidUserId, ValidationError)


@pytest.mark.parametrize(
    ("user_id", "name"),
    [("", None), ("x" * 129, None), ("a\nb", None), ("a\x7f", None), ("ok", "  "), ("ok", "\t")],
)
def test_bad_identities_are_refused_at_issue(user_id, name):
    with pytest.raises(InvalidUserId):
        issue_user_token(SECRET, user_id, name, now=NOW)


@pytest.mark.parametrize("ttl", [0, -1, float("inf"), float("nan")])
def test_bad_ttl(ttl):
    with pytest.raises(ValueError, match="ttl"):
        issue_user_token(SECRET, "alice", ttl=ttl, now=NOW)


text = st.text(st.characters(blacklist_categories=("Cc", "Cs")), min_size=1, max_size=128).filter(
    lambda s: s.strip() == s and s
)


user_ids = st.from_regex(r"[A-Za-z0-9_\-=@,.;]{1,128}", fullmatch=True)


@given(
    user_id=user_ids, name=st.none() | text, secret=st.text(min_size=1), ttl=st.integers(1, 10**9)
)
def test_round_trip_property(user_id, name, secret, ttl):
    token = issue_user_token(secret, user_id, name, ttl=ttl, now=NOW)
    assert token.isascii() and " " not in token and ";" not in token
    assert verify_user_token(secret, token, now=NOW + ttl - 1) == UserIdentity(user_id, name)


@pytest.mark.parametrize(
    "user_id", ["bad user!", "Ada Lovelace", "ada/1", "ada#1", "é", "a\u200bb"]
)
def test_a_user_id_has_a_channel_names_characters(user_id):
    # Every user has a channel of their own, private-user-{id}: an id that cannot name one
    # could never get a notification.
    with pytest.raises(InvalidUserId, match="letters, digits"):
        issue_user_token(SECRET, user_id, ttl=60, now=NOW)


@pytest.mark.parametrize("user_id", ["ada", "ada@example.com", "guest-1f2e", "a=b,c;d.e_f"])
def test_usual_user_ids_are_accepted(user_id):
    token = issue_user_token(SECRET, user_id, ttl=60, now=NOW)
    assert verify_user_token(SECRET, token, now=NOW).user_id == user_id


@pytest.mark.parametrize("name", ["\u202eada", "ad\u202da", "a\u2066b\u2069", "x\u200f", "\u061cx"])
def test_a_name_with_bidi_controls_is_refused(name):
    # "\u202eada" reads as "ada" backwards, and flips the text shown after it.
    with pytest.raises(InvalidUserId, match="bidirectional"):
        validate_name(name)


@pytest.mark.parametrize("name", ["Ada Lovelace", "مريم", "王小明", "Zoë 🚀"])
def test_names_in_any_script_are_kept(name):
    assert validate_name(name) == name
