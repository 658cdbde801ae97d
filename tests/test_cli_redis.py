"""``dashboard serve --redis``: the options, the environment variables, and bad input as one line."""

from __future__ import annotations

import aiohttp
import pytest

from tests.processes import dashboard_process, free_port
from tests.redis_server import SHARED_REDIS_URL, delete_prefix, require_shared_redis, unique_prefix
from tests.test_cli import run_cli


def one_line_error(code: int, out: str, err: str) -> str:
    assert code == 1, (out, err)
    assert err.startswith("dashboard: error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    return err


@pytest.mark.parametrize(
    "args, env, message",
    [
        (["--redis", "ftp://127.0.0.1/0"], {}, "--redis: 'ftp://127.0.0.1/0' is not a redis://"),
        (["--redis", "redis://127.0.0.1:6379/zero"], {}, "the database must be a number"),
        (["--redis", "redis://127.0.0.1:99999/0"], {}, "has a bad port"),
        (["--redis", "redis://:s3cret@127.0.0.1:99999/0"], {}, "'redis://:***@127.0.0.1:99999/0'"),
        (["--redis", "redis://h/x?password=s3cret"], {}, "'redis://h/x?password=***'"),
        ([], {"DASHBOARD_REDIS_URL": "localhost:6379"}, "is not a redis://"),
        (["--redis", SHARED_REDIS_URL, "--redis-prefix", "a b"], {}, "--redis-prefix 'a b'"),
    ],
)
async def test_bad_redis_options_are_one_line_errors(args, env, message):
    code, out, err = await run_cli("serve", "--port", "0", "--no-demo", *args, env=env)
    assert message in one_line_error(code, out, err)
    assert "s3cret" not in err


def test_health_shows_no_password_wherever_the_url_has_it():
    from dashboard.hub.backends.redis import RedisBackend

    for url in ("redis://:s3cret@127.0.0.1:6379/0", "redis://127.0.0.1:6379/0?password=s3cret"):
        assert "s3cret" not in str(RedisBackend(url).health())


@pytest.mark.parametrize(
    "url, message",
    [
        ("redis://127.0.0.1:6379/99", "DB index is out of range"),  # Redis has 16 by default
        ("redis://:not-the-password@127.0.0.1:6379/0", "AUTH"),  # it has no password at all
        ("redis://127.0.0.1:6379/0?password=not-the-password", "AUTH"),  # redis-py takes it too
    ],
)
async def test_a_redis_that_refuses_the_set_up_is_one_line_error(tmp_path, url, message):
    await require_shared_redis()
    code, out, err = await run_cli(
        "serve", "--port", str(free_port()), "--no-demo", "--redis", url,
        "--db", str(tmp_path / "d.sqlite3"), timeout=60,
    )  # fmt: skip
    err = one_line_error(code, out, err)
    assert "refused the connection" in err and message in err and "--redis" in err
    assert "not-the-password" not in err


async def test_an_unreachable_redis_is_one_line_error(tmp_path):
    url = f"redis://:s3cret@127.0.0.1:{free_port()}/0"  # nothing listens there
    code, out, err = await run_cli(
        "serve", "--port", str(free_port()), "--no-demo", "--redis", url,
        "--db", str(tmp_path / "d.sqlite3"), timeout=60,
    )  # fmt: skip
    err = one_line_error(code, out, err)
    assert "is unavailable" in err and "--redis" in err
    assert "s3cret" not in err  # the password never reaches the terminal


async def test_the_environment_selects_redis_and_health_reports_it(tmp_path):
    await require_shared_redis()
    prefix = unique_prefix()
    env = {"DASHBOARD_REDIS_URL": SHARED_REDIS_URL, "DASHBOARD_REDIS_PREFIX": prefix}
    try:
        async with (
            dashboard_process("--no-demo", "--db", str(tmp_path / "d.sqlite3"), env=env) as served,
            aiohttp.ClientSession() as http,
            http.get(f"{served.url}/api/health") as response,
        ):
            health = await response.json()
        assert any(f"(prefix {prefix})" in line for line in served.startup)
        assert health["backend"]["kind"] == "redis" and health["backend"]["prefix"] == prefix
    finally:
        await delete_prefix(SHARED_REDIS_URL, prefix)


async def test_memory_stays_the_default(tmp_path):
    env = {"DASHBOARD_REDIS_URL": ""}
    async with dashboard_process(
        "--no-demo", "--db", str(tmp_path / "d.sqlite3"), env=env
    ) as served:
        assert any("this process alone (in memory" in line for line in served.startup)
