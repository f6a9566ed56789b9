"""The baselines for the ingest and steady-load benchmarks: an aiohttp handler that only
parses the JSON body, on the event loop `callbridge serve` runs on (uvloop when installed).

``--durable PATH``: the durability floor instead. The handler also stores the body in the
SQLite file PATH and answers only after the commit is on disk (WAL, ``synchronous = FULL``:
one fsync per webhook at a paced load), the statement run on a writer thread so that the
event loop never blocks: the least any service that acknowledges a webhook only once it is
stored durably must do, without callbridge's own code.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from aiohttp import web

from bridge.service import runtime


async def handle(request: web.Request) -> web.Response:
    json.loads(await request.read())
    return web.json_response({"status": "accepted"})


class DurableHandler:
    """Parse, then insert the body and commit with an fsync on the writer thread."""

    def __init__(self, path: Path) -> None:
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="bare-sqlite-writer")
        self._conn = self._writer.submit(self._connect, path).result()

    @staticmethod
    def _connect(path: Path) -> sqlite3.Connection:
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("CREATE TABLE IF NOT EXISTS events (id INTEGER PRIMARY KEY, body BLOB)")
        return conn

    def _store(self, body: bytes) -> None:
        self._conn.execute("BEGIN IMMEDIATE")
        self._conn.execute("INSERT INTO events (body) VALUES (?)", (body,))
        self._conn.execute("COMMIT")

    async def __call__(self, request: web.Request) -> web.Response:
        body = await request.read()
        json.loads(body)
        await asyncio.get_running_loop().run_in_executor(self._writer, self._store, body)
        return web.json_response({"status": "accepted"})


async def start(durable: Path | None) -> web.AppRunner:
    app = web.Application(client_max_size=64 * 1024)
    app.router.add_post("/notifications", handle if durable is None else DurableHandler(durable))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    print(json.dumps({"event": "serve.listening", "port": port}), flush=True)
    return runner


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--durable", type=Path, metavar="PATH", help="SQLite file to store in")
    args = parser.parse_args()

    async def run() -> None:
        await start(args.durable)
        await asyncio.Event().wait()

    try:
        with asyncio.Runner(loop_factory=runtime.factory("auto")) as runner:
            runner.run(run())
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
