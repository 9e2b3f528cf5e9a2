"""Running ``sfu serve``: logging, TLS, the aiohttp runner, and a bounded graceful shutdown.

On SIGTERM, with ``drain_grace`` set, the server first reports not ready at ``/readyz`` for that
long while still serving (a load balancer stops sending new people); then (and at once on Ctrl-C)
aiohttp stops listening, and :meth:`sfu.server.Server.shutdown` tells every
client ``shutting_down`` and closes every connection within ``drain_timeout``; should anything still
hang a few seconds past that, the process exits anyway (status 1).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import ssl
from typing import Awaitable, Callable, Optional

from aiohttp import web

from . import __version__, logs
from .config import Config

log = logging.getLogger(__name__)

#: Extra seconds past drain_timeout before the process is ended without finishing the drain.
HARD_EXIT_GRACE = 5.0


class TlsError(Exception):
    """The certificate or key cannot be used."""


def ssl_context(config: Config) -> Optional[ssl.SSLContext]:
    if config.tls_cert is None or config.tls_key is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(str(config.tls_cert), str(config.tls_key))
    except (ssl.SSLError, OSError) as exc:
        raise TlsError(f"tls_cert/tls_key: cannot load {config.tls_cert} with {config.tls_key} ({exc})") from None
    return context


def _announce_drain_on_sigterm(grace: float) -> Callable[[web.Application], Awaitable[None]]:
    """A start-up hook: SIGTERM marks the server not ready, then stops it ``grace`` seconds later."""
    from .app import SERVER

    async def install(app: web.Application) -> None:
        loop = asyncio.get_running_loop()

        def announce() -> None:
            server = app[SERVER]
            if not server.ready:
                return
            server.ready = False
            log.info("not ready; draining in %.1f s", grace, extra={"event": "drain_announced", "grace": grace})
            loop.call_later(grace, _raise_graceful_exit)

        # Replaces aiohttp's own SIGTERM handler (installed before start-up hooks run).
        loop.add_signal_handler(signal.SIGTERM, announce)

    return install


def _raise_graceful_exit() -> None:
    raise web.GracefulExit()


def run(config: Config) -> int:
    from .app import create_app

    logs.setup(config.log_level, config.log_format, worker=config.worker_id if config.reuse_port else None)
    context = ssl_context(config)
    app = create_app(config)
    port_range = config.media_port_range()
    log.info(
        "media on %s, announced as %s, UDP ports %s; TURN URLs with per-client credentials: %d",
        ", ".join(config.host_addresses()) or "every interface",
        config.public_ip or "is",
        "%d-%d" % port_range if port_range else "any",
        len(config.turn_urls),
    )

    async def arm_hard_exit(app: web.Application) -> None:
        def hard_exit() -> None:
            log.error("drain did not finish within %.1f s; exiting", config.drain_timeout + HARD_EXIT_GRACE)
            logging.shutdown()
            os._exit(1)

        asyncio.get_running_loop().call_later(config.drain_timeout + HARD_EXIT_GRACE, hard_exit)
        log.info("shutting down", extra={"event": "shutdown"})

    app.on_shutdown.insert(0, arm_hard_exit)
    if config.drain_grace > 0:
        app.on_startup.append(_announce_drain_on_sigterm(config.drain_grace))
    if config.admin_port:
        from .admin import admin_hooks

        start_admin, stop_admin = admin_hooks(config)
        app.on_startup.append(start_admin)
        app.on_cleanup.append(stop_admin)
    url = f"{'https' if context else 'http'}://{config.host}:{config.port}"
    if config.log_format == "json":
        log.info("sfu %s on %s", __version__, url, extra={"event": "listening", "url": url})
    else:
        print(f"sfu {__version__} on {url}", flush=True)
    web.run_app(
        app,
        host=config.host,
        port=config.port,
        ssl_context=context,
        reuse_port=config.reuse_port or None,  # workers of `--workers N` share the port
        print=None,
        shutdown_timeout=1.0,  # the server has closed its sockets already (drain)
        access_log_format=logs.ACCESS_LOG_FORMAT_WITH_ADDRESS if config.log_client_addresses else logs.ACCESS_LOG_FORMAT,
    )
    log.info("stopped", extra={"event": "stopped"})
    return 0
