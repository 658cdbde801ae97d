"""The secrets a server generates on first start and keeps beside its database."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys

import pytest

from dashboard.store.credentials import (
    SecretsError,
    WeakSecret,
    check_secret,
    load_or_create_secrets,
    load_secrets,
    secrets_path,
)


def test_beside_the_database():
    assert str(secrets_path("/data/dash/dashboard.sqlite3")) == "/data/dash/dashboard.secrets.json"


def test_generated_once_owner_only_then_kept(tmp_path):
    path = tmp_path / "new-dir" / "dashboard.secrets.json"
    first = load_or_create_secrets(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(first.app_secret) >= 32 and len(first.publish_token) >= 32
    assert load_or_create_secrets(path) == first == load_secrets(path)
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".")]  # no temp left


def test_two_fresh_secrets_differ(tmp_path):
    a = load_or_create_secrets(tmp_path / "a.json")
    b = load_or_create_secrets(tmp_path / "b.json")
    assert a.app_secret != b.app_secret and a.publish_token != b.publish_token


def test_processes_starting_together_agree(tmp_path):
    path = tmp_path / "shared.secrets.json"
    code = (
        "import sys; from pathlib import Path;"
        "from dashboard.store.credentials import load_or_create_secrets as f;"
        "print(f(Path(sys.argv[1])).app_secret)"
    )
    runs = [
        subprocess.Popen([sys.executable, "-c", code, str(path)], stdout=subprocess.PIPE, text=True)
        for _ in range(6)
    ]
    seen = {run.communicate(timeout=60)[0].strip() for run in runs}
    assert len(seen) == 1 and seen == {load_secrets(path).app_secret}


def test_a_file_others_can_read_is_refused(tmp_path):
    path = tmp_path / "x.secrets.json"
    load_or_create_secrets(path)
    os.chmod(path, 0o644)
    with pytest.raises(SecretsError, match="chmod 600"):
        load_or_create_secrets(path)


@pytest.mark.parametrize(
    "content",
    [
        "not json",
        "[]",
        '{"app_secret": "x"}',
        '{"app_secret": "dashboard-secret", "publish_token": "t"}',
    ],
)
def test_a_damaged_file_is_refused_and_never_overwritten(tmp_path, content):
    path = tmp_path / "x.secrets.json"
    path.write_text(content)
    os.chmod(path, 0o600)
    with pytest.raises(SecretsError):
        load_or_create_secrets(path)
    assert path.read_text() == content


@pytest.mark.parametrize("secret", ["dashboard-secret", "", "short", "x" * 15])
def test_weak_or_published_secrets_are_refused(secret):
    with pytest.raises(WeakSecret):
        check_secret(secret)


def test_the_file_holds_what_it_says(tmp_path):
    path = tmp_path / "x.secrets.json"
    secrets = load_or_create_secrets(path)
    data = json.loads(path.read_text())
    assert (data["app_secret"], data["publish_token"]) == (
        secrets.app_secret,
        secrets.publish_token,
    )
    assert isinstance(data["created"], int)
