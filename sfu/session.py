"""One visit: a WebSocket, its outgoing queue, and (after the offer) its peer connection."""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
from typing import Callable, Optional

from aiohttp import web

from .media.peer import PeerMedia

log = logging.getLogger(__name__)

#: Messages queued for a client that does not read; past this the client is dropped.
OUTBOX_LIMIT = 256


class Session:
    def __init__(self, ws: web.WebSocketResponse, remote: str) -> None:
        self.id = secrets.token_urlsafe(9)
        self.ws = ws
        self.remote = remote
        self.media: Optional[PeerMedia] = None
        self.created = time.monotonic()
        self.closed = False
        #: Observes every message queued for the client (e.g. to count errors by code).
        self.on_send: Optional[Callable[[dict], None]] = None
        self._outbox: asyncio.Queue[Optional[str]] = asyncio.Queue(OUTBOX_LIMIT)
        self._writer = asyncio.ensure_future(self._write())
        self._closer: Optional[asyncio.Task] = None

    def __repr__(self) -> str:
        return f"<Session {self.id}>"

    def send(self, message: dict) -> None:
        """Queue a message; never blocks. A client that stops reading is disconnected."""
        if self.closed:
            return
        if self.on_send is not None:
            self.on_send(message)
        try:
            self._outbox.put_nowait(json.dumps(message))
        except asyncio.QueueFull:
            log.warning("session %s: client is not reading, closing", self.id)
            if self._closer is None:
                self._closer = asyncio.ensure_future(self.ws.close(code=1008, message=b"too slow"))

    async def _write(self) -> None:
        try:
            while True:
                text = await self._outbox.get()
                if text is None:
                    return
                await self.ws.send_str(text)
        except (ConnectionError, RuntimeError):
            # The socket went away; the read loop notices and cleans up.
            pass

    async def flush_and_close(self, code: int = 1000, message: bytes = b"") -> None:
        """Send what is queued, then close the socket."""
        if not self.closed:
            try:
                self._outbox.put_nowait(None)
            except asyncio.QueueFull:
                self._writer.cancel()
            try:
                await asyncio.wait_for(asyncio.shield(self._writer), 2.0)
            except (asyncio.TimeoutError, asyncio.CancelledError):
                pass
        await self.ws.close(code=code, message=message)

    async def close(self) -> None:
        """Release everything this visit owns."""
        if self.closed:
            return
        self.closed = True
        self._writer.cancel()
        try:
            await self._writer
        except asyncio.CancelledError:
            pass
        if self.media is not None:
            await self.media.close()
        if self._closer is not None:
            await asyncio.gather(self._closer, return_exceptions=True)
        if not self.ws.closed:
            await self.ws.close()
