"""/api/assets/{file}: the pages' static files, with the API's Host check and JSON errors."""

from __future__ import annotations

import pytest
from yarl import URL


async def get(http, server, path: str, **headers: str):
    # encoded=True: the path goes on the wire exactly as written (%00, ..).
    url = URL(f"{server.url}{path}", encoded=True)
    async with http.get(url, headers=headers) as response:
        return response.status, response.headers.get("Content-Type", ""), await response.read()


async def test_an_asset_is_served(server, http):
    status, kind, body = await get(http, server, "/api/assets/link-status.js")
    assert status == 200 and "javascript" in kind and body


@pytest.mark.parametrize(
    "path, status, code",
    [
        ("/api/assets/%00", 404, "not_found"),
        ("/api/assets/a%00b.js", 404, "not_found"),
        ("/api/assets/nothing-here.js", 404, "not_found"),
        ("/api/assets/..%2f..%2fserver%2fbase.py", 404, "not_found"),
        ("/api/assets/tabler", 404, "not_found"),  # a folder
        ("/api/assets/", 404, "not_found"),
    ],
)
async def test_bad_asset_paths_are_json_4xx(server, http, path, status, code):
    got, kind, body = await get(http, server, path)
    assert (got, kind.split(";")[0]) == (status, "application/json"), body
    assert f'"error": "{code}"'.encode() in body and b"Traceback" not in body


async def test_a_foreign_host_gets_no_asset(server, http):
    status, kind, body = await get(
        http, server, "/api/assets/link-status.js", Host="evil.example:80"
    )
    assert status == 403 and b"forbidden_host" in body
