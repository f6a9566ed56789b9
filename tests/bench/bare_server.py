"""The baseline for the ingest benchmark: an aiohttp handler that only parses the JSON body,
on the event loop `callbridge serve` runs on (uvloop when installed)."""

from __future__ import annotations

import asyncio
import json
import sys

from aiohttp import web

from bridge.service import runtime


async def handle(request: web.Request) -> web.Response:
    json.loads(await request.read())
    return web.json_response({"status": "accepted"})


async def start() -> web.AppRunner:
    app = web.Application(client_max_size=64 * 1024)
    app.router.add_post("/notifications", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    print(json.dumps({"event": "serve.listening", "port": port}), flush=True)
    return runner


def main() -> None:
    async def run() -> None:
        await start()
        await asyncio.Event().wait()

    try:
        with asyncio.Runner(loop_factory=runtime.factory("auto")) as runner:
            runner.run(run())
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
