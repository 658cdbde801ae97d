"""A real JupyterLab and headless Debian Chromium (never a downloaded browser)."""

from __future__ import annotations

import importlib.util

import pytest
import pytest_asyncio

from tests.browser.conftest import headless_chromium
from tests.conftest import skip_or_fail


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    """Keep each phase's report on the test item, so that a fixture can tell the test failed
    and leave what it saw (a screenshot, the JupyterLab log) for whoever reads the failure."""
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/jupyter/" in str(item.fspath):
            item.add_marker(pytest.mark.jupyter)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def lab_browser():
    if importlib.util.find_spec("jupyterlab") is None:
        skip_or_fail("JupyterLab is not installed (pip install -e '.[dev]')")
    async with headless_chromium() as browser:
        yield browser
