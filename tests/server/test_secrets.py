"""No well-known secret anywhere: tokens signed with a published default are refused, and
generated secrets survive a restart (tokens, identity cookies, logins)."""

from __future__ import annotations

import json
import stat

import aiohttp
import pytest

from dashboard.core.user_tokens import IDENTITY_COOKIE, issue_user_token
from dashboard.server import DashboardServer
from dashboard.store.credentials import WELL_KNOWN_SECRETS, WeakSecret
from tests.processes import dashboard_process

#: Every secret this project ever shipped as a default (the README and the code said so).
DEFAULTS = sorted(WELL_KNOWN_SECRETS)


async def identity(http, server, headers=None, cookies=None):
    async with http.get(f"{server.url}/api/identity", headers=headers, cookies=cookies) as answer:
        return answer.status, await answer.json()


@pytest.mark.parametrize("store", [False, True])
@pytest.mark.parametrize("secret", DEFAULTS)
async def test_tokens_signed_with_a_default_secret_are_refused(tmp_path, store, secret):
    server = DashboardServer(port=0, store=tmp_path / "db.sqlite3" if store else None)
    await server.start()
    try:
        forged = issue_user_token(secret, "bob", "Bob")
        async with aiohttp.ClientSession() as http:
            status, answer = await identity(http, server, {"Authorization": f"Bearer {forged}"})
            assert (status, answer["error"]) == (401, "invalid_user_token_signature")
            url = f"{server.url}/api/events?channel=private-user-bob"
            async with http.get(url, headers={"Authorization": f"Bearer {forged}"}) as response:
                assert response.status == 401
    finally:
        await server.stop()


@pytest.mark.parametrize("secret", [*DEFAULTS, "too-short"])
def test_a_server_refuses_a_weak_or_published_secret(secret):
    with pytest.raises(WeakSecret):
        DashboardServer(port=0, app_secret=secret)


async def test_secrets_survive_a_restart(tmp_path):
    database = tmp_path / "db.sqlite3"
    first = DashboardServer(port=0, store=database)
    await first.start()
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{first.url}/api/identity", json={"name": "Grace"}) as response:
            cookie = response.cookies[IDENTITY_COOKIE].value
            grace = (await response.json())["user_id"]
        token = issue_user_token(first.ctx.app.secret, "ada", "Ada")
        publish_token = first.token
        await first.stop()
        assert stat.S_IMODE((tmp_path / "db.secrets.json").stat().st_mode) == 0o600

        second = DashboardServer(port=0, store=database)
        await second.start()
        try:
            assert second.token == publish_token
            status, me = await identity(http, second, {"Authorization": f"Bearer {token}"})
            assert (status, me["user_id"]) == (200, "ada")
            status, me = await identity(http, second, cookies={IDENTITY_COOKIE: cookie})
            assert (status, me["user_id"], me["name"]) == (200, grace, "Grace")
        finally:
            await second.stop()


async def test_configured_secrets_win_and_are_not_written(tmp_path):
    server = DashboardServer(
        port=0, store=tmp_path / "db.sqlite3", app_secret="s" * 20, token="publish-token-0123456"
    )
    assert (server.ctx.app.secret, server.token) == ("s" * 20, "publish-token-0123456")
    assert not (tmp_path / "db.secrets.json").exists()
    assert (server.secrets_file, server.kept_secrets) == (None, ())
    # With only one configured, the file keeps the other, and says which.
    half = DashboardServer(port=0, store=tmp_path / "db.sqlite3", token="publish-token-0123456")
    assert half.kept_secrets == ("app secret",)
    assert half.secrets_file == tmp_path / "db.secrets.json"


async def test_serve_prints_where_the_secrets_are_never_what(tmp_path):
    database = tmp_path / "db.sqlite3"
    unset = {"DASHBOARD_TOKEN": "", "DASHBOARD_APP_SECRET": ""}  # generated, then kept
    async with dashboard_process("--db", str(database), "--no-demo", env=unset) as served:
        output = "".join(served.startup)
    secrets_file = tmp_path / "db.secrets.json"
    assert f"Secrets:    app secret and publish token kept in {secrets_file}" in output
    kept = json.loads(secrets_file.read_text())
    assert kept["app_secret"] not in output and kept["publish_token"] not in output
    assert "anyone who can reach this port" in output


@pytest.mark.parametrize("token", ["x", "test-token", "dashboard-secret"])
def test_a_server_refuses_a_weak_publish_token(token):
    with pytest.raises(WeakSecret, match="publish token"):
        DashboardServer(port=0, token=token)
