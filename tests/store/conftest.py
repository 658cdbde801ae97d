"""Every store backend runs the same tests through this parametrised fixture.

Adding a backend is one entry in ``BACKENDS``: a function from the test's own place (a
temporary directory for SQLite, a fresh schema's URL for PostgreSQL) and backend options to an
unopened store. Calling it twice must give two stores over the same data, which is how the
restart tests reopen. PostgreSQL tests skip without a server, and fail under CI=true.
"""

import pytest

from dashboard.store import PostgresStore, SQLiteStore
from tests.postgres import create_schema, with_database

BACKENDS = {
    "sqlite": lambda place, **options: SQLiteStore(place / "data" / "chat.db", **options),
    "postgres": lambda place, **options: PostgresStore(place, **options),
}


@pytest.fixture(params=sorted(BACKENDS))
def store_place(request, tmp_path):
    """Where the test's store keeps its data: a directory, or a database URL of its own."""
    if request.param == "sqlite":
        return tmp_path
    database = request.getfixturevalue("postgres_database")
    return with_database(database, database.rsplit("/", 1)[1], create_schema(database))


@pytest.fixture
async def make_store(request, store_place):
    stores = []
    backend = BACKENDS[request.node.callspec.params["store_place"]]

    async def factory(**options):
        store = backend(store_place, **options)
        await store.open()
        stores.append(store)
        return store

    yield factory
    for store in stores:
        await store.close()


@pytest.fixture
async def store(make_store):
    return await make_store()
