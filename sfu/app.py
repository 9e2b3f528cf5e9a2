"""The aiohttp application: browser client, signaling WebSocket, health checks, metrics, and the
moderator console with its API (mounted once the moderation service is open)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import AsyncIterator

from aiohttp import web

from .brand import add_brand_routes
from .config import Config
from .media import aiortc_hooks
from .metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from .moderation.api import setup_moderation_routes
from .moderation.devices import is_https, remember_device, request_device
from .server import Server

SERVER = web.AppKey("server", Server)


def find_client_dir(config: Config) -> Path:
    """The browser client: configured, beside the source tree, or installed under share/."""
    candidates = [config.client_dir] if config.client_dir else []
    candidates += [
        Path(__file__).resolve().parent.parent / "client",
        Path(sys.prefix) / "share" / "sfu" / "client",
    ]
    for candidate in candidates:
        if candidate and (candidate / "index.html").is_file():
            return candidate
    raise FileNotFoundError(f"browser client not found (looked in {', '.join(map(str, candidates))})")


async def _index(request: web.Request) -> web.FileResponse:
    """The page; it also gives a new visitor their device cookie (see docs/moderation.md)."""
    server = request.app[SERVER]
    response = web.FileResponse(request.app[CLIENT_DIR] / "index.html")
    if server.moderation is not None:
        config = server.config
        remember_device(response, request_device(server.moderation.identities, request),
                        max_age_days=config.moderation.device_cookie_days,
                        secure=is_https(request, config.trust_forwarded_for))
    return response


async def _healthz(request: web.Request) -> web.Response:
    return web.json_response(request.app[SERVER].status())


async def _readyz(request: web.Request) -> web.Response:
    """200 while a new participant would be accepted; 503 while draining or full."""
    server = request.app[SERVER]
    ready, reason = server.readiness()
    return web.json_response({"ready": ready, "reason": reason}, status=200 if ready else 503)


async def _metrics(request: web.Request) -> web.Response:
    body = request.app[SERVER].metrics.render()
    return web.Response(body=body, headers={"Content-Type": METRICS_CONTENT_TYPE})


async def _ws(request: web.Request) -> web.StreamResponse:
    return await request.app[SERVER].handle_ws(request)


CLIENT_DIR = web.AppKey("client_dir", Path)


def health_routes(app: web.Application, *, metrics: bool) -> None:
    """``/healthz``, ``/readyz`` and (with ``metrics``) ``/metrics`` of ``app[SERVER]`` (also the
    admin listener's routes, see :mod:`sfu.admin`)."""
    app.router.add_get("/healthz", _healthz)
    app.router.add_get("/readyz", _readyz)
    if metrics:
        app.router.add_get("/metrics", _metrics)


def create_app(config: Config) -> web.Application:
    aiortc_hooks.check()
    app = web.Application()
    server = Server(config)
    app[SERVER] = server
    app[CLIENT_DIR] = find_client_dir(config)

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        await server.start()
        try:  # mounted here because it needs the open service; /mod and /api/mod match before the static "/"
            setup_moderation_routes(app, server.moderation, config.moderation)
        except BaseException:
            await server.stop()
            raise
        yield
        await server.stop()

    async def on_shutdown(app: web.Application) -> None:
        await server.shutdown()

    app.cleanup_ctx.append(lifecycle)
    app.on_shutdown.append(on_shutdown)
    app.router.add_get("/ws", _ws)
    health_routes(app, metrics=config.metrics)
    add_brand_routes(app, config)
    app.router.add_get("/", _index)
    app.router.add_static("/", app[CLIENT_DIR])
    return app
