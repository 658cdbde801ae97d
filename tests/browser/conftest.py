"""Headless Debian Chromium driven by playwright (never a downloaded browser)."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.conftest import skip_or_fail
from tests.processes import dashboard_process

#: The publish token of every `dashboard_serve` (DASHBOARD_TOKEN).
BROWSER_TOKEN = "browser-publish-token"
CHROMIUM = os.environ.get("DASHBOARD_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/browser/" in str(item.fspath):
            item.add_marker(pytest.mark.browser)


@contextlib.asynccontextmanager
async def headless_chromium() -> AsyncIterator:
    """Debian's Chromium, headless, driven by playwright; skips (fails under CI=true) when
    either is missing."""
    if not (os.path.exists(CHROMIUM) or shutil.which(CHROMIUM)):
        skip_or_fail(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        skip_or_fail("the playwright package is not installed")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            await browser.close()


def requests_elsewhere(page: Any, base_url: str) -> list[str]:
    """The URLs of every request ``page`` makes anywhere but ``base_url`` (``data:`` and
    ``blob:`` aside), filled as it goes: a page that works offline leaves it empty."""
    elsewhere: list[str] = []

    def seen(request: Any) -> None:
        if not request.url.startswith((base_url, "data:", "blob:")):
            elsewhere.append(request.url)

    page.on("request", seen)
    return elsewhere


@pytest.fixture
async def browser():
    async with headless_chromium() as browser:
        yield browser


@contextlib.asynccontextmanager
async def dashboard_serve(*args: str) -> AsyncIterator[str]:
    """`dashboard serve ARGS` as a user runs it, in a subprocess on a free loopback port;
    yields its base URL once it is ready."""
    async with dashboard_process(*args, env={"DASHBOARD_TOKEN": BROWSER_TOKEN}) as served:
        yield served.url


@pytest.fixture
async def served_dashboard():
    """The dashboard with its defaults (demo feed, chat on the session's scratch database)."""
    async with dashboard_serve() as url:
        yield url
