"""The admin listener (``--admin-port``): ``/healthz``, ``/readyz`` and ``/metrics`` of this very
process on a port of its own.

Workers share the public port through SO_REUSEPORT, so a scrape of that port reaches whichever
worker the kernel picks. Each worker also answers on its own admin port (worker I on base + I,
loopback by default), which Prometheus and operators can address one by one.
"""

from __future__ import annotations

import logging
from typing import Awaitable, Callable

from aiohttp import web

from .app import SERVER, health_routes
from .config import Config

log = logging.getLogger(__name__)

Hook = Callable[[web.Application], Awaitable[None]]


def admin_hooks(config: Config) -> tuple[Hook, Hook]:
    """Start-up and clean-up hooks for the main application that run the admin listener beside it
    (sharing its :class:`~sfu.server.Server`)."""
    runner: list[web.AppRunner] = []

    async def start(app: web.Application) -> None:
        admin = web.Application()
        admin[SERVER] = app[SERVER]
        health_routes(admin, metrics=True)
        admin_runner = web.AppRunner(admin, access_log=None)
        await admin_runner.setup()
        await web.TCPSite(admin_runner, config.admin_host, config.admin_port).start()
        runner.append(admin_runner)
        url = f"http://{config.admin_host}:{config.admin_port}"
        log.info("admin endpoints on %s", url, extra={"event": "admin_listening", "url": url})

    async def stop(app: web.Application) -> None:
        while runner:
            await runner.pop().cleanup()

    return start, stop
