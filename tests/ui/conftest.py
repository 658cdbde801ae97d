"""Fixtures of the UI tests."""

from __future__ import annotations

import pytest

from tests.conftest import skip_or_fail


@pytest.fixture
async def real_kernel():
    """A client of a real ipykernel (jupyter_client), ready; shut down afterwards."""
    try:
        from jupyter_client.manager import AsyncKernelManager
    except ImportError:
        skip_or_fail("jupyter_client is not installed (pip install -e '.[dev]')")
    manager = AsyncKernelManager(kernel_name="python3")
    await manager.start_kernel()
    client = manager.client()
    client.start_channels()
    try:
        await client.wait_for_ready(timeout=60)
        yield client
    finally:
        client.stop_channels()
        await manager.shutdown_kernel(now=True)
