"""Store throughput: SQLite and PostgreSQL side by side, in the same run.

Run ``python benchmarks/store_throughput.py --seconds 3 --repeat 3``. Its last line reads::

    store: sqlite_inserts=<n/s> postgres_inserts=<n/s> sqlite_pages=<n/s> postgres_pages=<n/s>

Each store is driven in this process, through its public API, exactly as the server calls it:

* inserts: ``--writers`` concurrent tasks call ``add_message`` into ``--rooms`` rooms for
  ``--seconds``; every call has committed when it returns (SQLite ``synchronous=FULL``, one
  fsync per message; PostgreSQL with the server's own durability settings).
* pages: ``--readers`` concurrent tasks call ``messages(room, limit=50)`` (the room's newest
  page, 50 rows) on a room of 1,000 messages for ``--seconds``.

The two stores alternate, and the order flips on each of ``--repeat`` repeats; figures are the
medians. SQLite uses a file in a temporary directory; PostgreSQL a database created for the run
on ``--postgres`` (default ``postgresql://postgres@127.0.0.1:5432/``), dropped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import secrets
import statistics
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from dashboard.store import PostgresStore, SQLiteStore, Store


async def run_for(seconds: float, tasks: int, call: Callable[[int, int], Awaitable[Any]]) -> float:
    """Calls per second of ``call(task, i)`` from ``tasks`` concurrent loops."""
    deadline = time.perf_counter() + seconds
    counts = [0] * tasks

    async def loop(task: int) -> None:
        while time.perf_counter() < deadline:
            await call(task, counts[task])
            counts[task] += 1

    started = time.perf_counter()
    await asyncio.gather(*(loop(task) for task in range(tasks)))
    return sum(counts) / (time.perf_counter() - started)


async def measure(store: Store, args: argparse.Namespace, tag: str) -> tuple[float, float]:
    rooms = [f"{tag}-w{room}" for room in range(args.rooms)]
    inserts = await run_for(
        args.seconds,
        args.writers,
        lambda task, i: store.add_message(rooms[(task + i) % len(rooms)], "u", "U", f"m{i}"),
    )
    page_room = f"{tag}-read"
    if not (await store.messages(page_room, limit=1)).messages:
        for i in range(1000):
            await store.add_message(page_room, "u", "U", f"history {i} " + "x" * 80)
    pages = await run_for(
        args.seconds, args.readers, lambda task, i: store.messages(page_room, limit=50)
    )
    return inserts, pages


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--writers", type=int, default=8)
    parser.add_argument("--readers", type=int, default=8)
    parser.add_argument("--rooms", type=int, default=4)
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/")
    args = parser.parse_args()

    import psycopg

    dbname = f"dashboard_bench_{secrets.token_hex(4)}"
    with psycopg.connect(args.postgres, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{dbname}"')
    parts = urllib.parse.urlsplit(args.postgres)
    pg_url = urllib.parse.urlunsplit(parts._replace(path="/" + dbname))
    server_version = "?"
    with psycopg.connect(pg_url) as conn:
        row = conn.execute("SHOW server_version").fetchone()
        server_version = row[0] if row else "?"
        sync = conn.execute("SHOW synchronous_commit").fetchone()
    results: dict[str, dict[str, list[float]]] = {
        name: {"inserts": [], "pages": []} for name in ("sqlite", "postgres")
    }
    try:
        with tempfile.TemporaryDirectory() as directory:
            stores: dict[str, Store] = {
                "sqlite": SQLiteStore(Path(directory) / "bench.sqlite3"),
                "postgres": PostgresStore(pg_url, pool_size=args.writers),
            }
            for store in stores.values():
                await store.open()
            try:
                for repeat in range(args.repeat):
                    order = ["sqlite", "postgres"] if repeat % 2 == 0 else ["postgres", "sqlite"]
                    for name in order:
                        inserts, pages = await measure(stores[name], args, f"r{repeat}")
                        results[name]["inserts"].append(inserts)
                        results[name]["pages"].append(pages)
                        print(
                            f"repeat {repeat} {name}: inserts/s={inserts:.0f} pages/s={pages:.0f}"
                        )
            finally:
                for store in stores.values():
                    await store.close()
    finally:
        with psycopg.connect(args.postgres, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')

    median = {
        name: {what: statistics.median(values) for what, values in figures.items()}
        for name, figures in results.items()
    }
    print(
        f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {sys.version.split()[0]}, PostgreSQL {server_version} "
        f"(synchronous_commit={sync[0] if sync else '?'}), {args.writers} writers, "
        f"{args.readers} readers, {args.seconds:g} s x {args.repeat}"
    )
    print(
        f"store: sqlite_inserts={median['sqlite']['inserts']:.0f} "
        f"postgres_inserts={median['postgres']['inserts']:.0f} "
        f"sqlite_pages={median['sqlite']['pages']:.0f} "
        f"postgres_pages={median['postgres']['pages']:.0f}"
    )


if __name__ == "__main__":
    asyncio.run(main())
