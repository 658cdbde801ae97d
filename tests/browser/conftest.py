"""Headless Debian Chromium driven by playwright (never a downloaded browser)."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import AsyncIterator

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


@pytest.fixture
async def browser():
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
