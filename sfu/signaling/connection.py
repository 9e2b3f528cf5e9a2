"""One visit: the client's WebSocket, its outbox, and the loop that reads its frames and hands each
message to a :class:`Handler` (the switchboard). After the offer the session also owns the peer
connection's media, and closes it when the visit ends.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from typing import TYPE_CHECKING, Callable, Optional, Protocol

from aiohttp import WSMsgType, web

from .errors import ErrorCode, ProtocolError
from .messages import ClientMessage
from .outgoing import Error, ServerMessage

if TYPE_CHECKING:
    from ..media.peer import PeerMedia

log = logging.getLogger(__name__)

#: Messages queued for a client that does not read; past this the client is dropped.
OUTBOX_LIMIT = 256
#: WebSocket ping interval, seconds: a client that vanished without closing is noticed.
HEARTBEAT = 20.0


class Handler(Protocol):
    """What a session hands its client's frames to."""

    def allow(self, session: Session, now: float) -> bool:
        """False when the client sends too fast (the frame is then refused with ``rate_limited``)."""
        ...

    def parse(self, raw: str) -> ClientMessage:
        """One text frame as a message; raises :class:`ProtocolError`."""
        ...

    async def handle(self, session: Session, message: ClientMessage) -> None:
        """Act on one message; raises :class:`ProtocolError` to refuse it."""
        ...


class Session:
    """One visit, from the WebSocket upgrade until the socket closes."""

    def __init__(self, ws: web.WebSocketResponse, remote: str) -> None:
        self.id = secrets.token_urlsafe(9)
        self.ws = ws
        self.remote = remote
        self.media: Optional[PeerMedia] = None
        self.created = time.monotonic()
        self.closed = False
        #: Called with the code of every error queued for the client (e.g. to count them).
        self.on_error: Optional[Callable[[ErrorCode], None]] = None
        self._outbox: asyncio.Queue[Optional[str]] = asyncio.Queue(OUTBOX_LIMIT)
        self._writer = asyncio.ensure_future(self._write())
        self._closer: Optional[asyncio.Task[bool]] = None

    @classmethod
    async def accept(cls, request: web.Request, remote: str, *, max_frame_bytes: int) -> Session:
        """Complete the WebSocket upgrade of ``request``; frames over ``max_frame_bytes`` close it (1009)."""
        ws = web.WebSocketResponse(max_msg_size=max_frame_bytes, heartbeat=HEARTBEAT)
        await ws.prepare(request)
        return cls(ws, remote)

    def __repr__(self) -> str:
        return f"<Session {self.id}>"

    # -- sending ---------------------------------------------------------------------------------
    def send(self, message: ServerMessage) -> None:
        """Queue a message; never blocks. A client that stops reading is disconnected."""
        if self.closed:
            return
        if isinstance(message, Error) and self.on_error is not None:
            self.on_error(message.code)
        try:
            self._outbox.put_nowait(message.to_text())
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

    # -- reading ---------------------------------------------------------------------------------
    async def serve(self, handler: Handler) -> str:
        """Read the client's frames until the visit ends; return why it ended (for the log)."""
        async for frame in self.ws:
            if frame.type in (WSMsgType.TEXT, WSMsgType.BINARY) and not handler.allow(self, time.monotonic()):
                self.send(Error(ErrorCode.RATE_LIMITED, "too many messages; slow down"))
            elif frame.type == WSMsgType.TEXT:
                if not await self._receive(handler, frame.data):
                    return "closed by server"
            elif frame.type == WSMsgType.BINARY:
                self.send(Error(ErrorCode.BINARY_NOT_SUPPORTED, "send JSON in text frames"))
            else:  # ERROR (e.g. over the hard size limit)
                return f"socket error {self.ws.exception()!r}"
        return "left"

    async def _receive(self, handler: Handler, raw: str) -> bool:
        """Handle one text frame; return False when the session must end."""
        try:
            await handler.handle(self, handler.parse(raw))
        except ProtocolError as exc:
            log.info("session %s: refused (%s) %s", self.id, exc.code, exc.message)
            self.send(Error(exc.code, exc.message))
            if exc.fatal:
                await self.flush_and_close(1008, exc.code.encode())
                return False
        except Exception:
            log.exception("session %s: internal error", self.id)
            self.send(Error(ErrorCode.INTERNAL_ERROR, "internal server error"))
            await self.flush_and_close(1011, b"internal error")
            return False
        return True

    # -- closing ---------------------------------------------------------------------------------
    async def refuse(self, error: Error, code: int, reason: bytes) -> None:
        """Send ``error`` in place of ``welcome`` and end the visit (WebSocket close ``code``)."""
        self.send(error)
        await self.flush_and_close(code, reason)
        await self.close()

    async def flush_and_close(self, code: int = 1000, message: bytes = b"") -> None:
        """Send what is queued, then close the socket."""
        if not self.closed:
            try:
                self._outbox.put_nowait(None)
            except asyncio.QueueFull:
                self._writer.cancel()
            try:
                await asyncio.wait_for(asyncio.shield(self._writer), 2.0)
            except (TimeoutError, asyncio.CancelledError):
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
