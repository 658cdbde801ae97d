"""Every store backend runs the same tests through this parametrised fixture.

Adding a backend is one entry in ``BACKENDS``: a function from the test's temporary
directory and backend options to an unopened store. Calling it twice must give two stores
over the same data, which is how the restart tests reopen.
"""

import pytest

from dashboard.store import SQLiteStore

BACKENDS = {
    "sqlite": lambda tmp_path, **options: SQLiteStore(tmp_path / "data" / "chat.db", **options),
}


@pytest.fixture(params=sorted(BACKENDS))
async def make_store(request, tmp_path):
    stores = []

    async def factory(**options):
        store = BACKENDS[request.param](tmp_path, **options)
        await store.open()
        stores.append(store)
        return store

    yield factory
    for store in stores:
        await store.close()


@pytest.fixture
async def store(make_store):
    return await make_store()
