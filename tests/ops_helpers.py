"""Helpers for the operations tests: an in-process server with any config, raw signaling sockets."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
from dataclasses import dataclass
from typing import AsyncIterator, Optional

import aiohttp
from aiohttp import web

from sfu.app import SERVER, create_app
from sfu.config import Config
from sfu.server import Server


@dataclass
class Running:
    url: str
    server: Server

    @property
    def ws_url(self) -> str:
        return "ws" + self.url[4:] + "/ws"


def without_default_classifier(config: Config) -> Config:
    """``config`` with no picture classifier if it left the choice to the server (``auto``).

    NudeNet is installed with the test tools, so ``auto`` would load it (and pre-screen every
    pairing) in every test server; tests that want a classifier name one (``marker``, ``nudenet``)."""
    if config.moderation.moderation_classifier != "auto":
        return config
    return dataclasses.replace(
        config, moderation=dataclasses.replace(config.moderation, moderation_classifier="none")
    )


def without_default_overload_limits(config: Config) -> Config:
    """``config`` with overload shedding off if it kept the default limits: an in-process server
    shares its process (and its CPU time) with the test's own clients. Tests of shedding set limits."""
    defaults = Config()
    if (config.max_loop_lag, config.max_cpu) != (defaults.max_loop_lag, defaults.max_cpu):
        return config
    return dataclasses.replace(config, max_loop_lag=0.0, max_cpu=0.0)


@contextlib.asynccontextmanager
async def running(config: Config) -> AsyncIterator[Running]:
    app = create_app(without_default_overload_limits(without_default_classifier(config)))
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield Running(url=f"http://127.0.0.1:{port}", server=app[SERVER])
    finally:
        await runner.cleanup()


class RawSocket:
    """A signaling WebSocket without media: send anything, read replies as parsed JSON."""

    def __init__(self, http: aiohttp.ClientSession, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.http = http
        self.ws = ws

    @classmethod
    async def open(cls, url: str, headers: Optional[dict] = None) -> "RawSocket":
        http = aiohttp.ClientSession()
        try:
            ws = await http.ws_connect(url, max_msg_size=0, headers=headers)
        except BaseException:
            await http.close()
            raise
        return cls(http, ws)

    async def send(self, message: object) -> None:
        await self.ws.send_str(message if isinstance(message, str) else json.dumps(message))

    async def recv(self, timeout: float = 10.0) -> Optional[dict]:
        """The next JSON message, or None once the socket is closed."""
        msg = await self.ws.receive(timeout)
        if msg.type == aiohttp.WSMsgType.TEXT:
            return json.loads(msg.data)
        if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
            return None
        raise AssertionError(f"unexpected frame {msg.type}")

    async def until(self, predicate, timeout: float = 15.0) -> dict:
        """Read until a message satisfies ``predicate``; fail if the socket closes first."""

        async def loop() -> dict:
            while True:
                message = await self.recv(timeout)
                if message is None:
                    raise AssertionError("socket closed")
                if predicate(message):
                    return message

        return await asyncio.wait_for(loop(), timeout)

    async def error(self, code: str, timeout: float = 15.0) -> dict:
        return await self.until(lambda m: m.get("type") == "error" and m.get("code") == code, timeout)

    async def closed(self, timeout: float = 15.0) -> list[dict]:
        """Read everything until the server closes the socket; return what was read."""
        seen = []

        async def loop() -> None:
            while True:
                message = await self.recv(timeout)
                if message is None:
                    return
                seen.append(message)

        await asyncio.wait_for(loop(), timeout)
        return seen

    async def close(self) -> None:
        await self.ws.close()
        await self.http.close()
