"""The server: sessions, matchmaking and media switching, tied together by signaling."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Optional

from aiohttp import WSMsgType, web

from . import __version__
from .config import Config
from .media.forwarding import direction_modes, make_forwarding
from .media.peer import NegotiationError, NoMediaPort, PeerMedia, PeerSettings
from .pairing import Event, Idle, Matchmaker, Paired, PartnerLeft, Waiting
from .session import Session
from .signaling import Chat, ClientMessage, Next, Offer, ProtocolError, Start, Stop, error, parse
from .turn import IceServerIssuer

log = logging.getLogger(__name__)


class Server:
    """Owns every session, the matchmaker and the background tasks; nothing global outside it."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.forwarding = make_forwarding(config.forwarding)
        self.peer_settings = PeerSettings(
            ice_servers=[server.to_aiortc() for server in config.ice_servers],
            host_addresses=config.host_addresses(),
            public_ip=config.public_ip,
            port_range=config.media_port_range(),
        )
        self.ice_issuer = IceServerIssuer.from_config(config)
        log.info(
            "media on %s, announced as %s, UDP ports %s; TURN URLs with per-client credentials: %d",
            ", ".join(self.peer_settings.host_addresses) or "every interface",
            config.public_ip or "is",
            "%d-%d" % self.peer_settings.port_range if self.peer_settings.port_range else "any",
            len(config.turn_urls),
        )
        self.matchmaker = Matchmaker(rematch_cooldown=config.rematch_cooldown)
        self.sessions: dict[str, Session] = {}
        self._tasks: list[asyncio.Task] = []
        self._online_sent: Optional[int] = None
        self.accepting = True

    # -- lifecycle -------------------------------------------------------------------------------
    async def start(self) -> None:
        self._tasks = [
            asyncio.ensure_future(self._broadcast_online()),
            asyncio.ensure_future(self._expire_cooldowns()),
        ]

    async def shutdown(self) -> None:
        """Tell every client the server is stopping and close every session."""
        self.accepting = False
        sessions = list(self.sessions.values())
        for session in sessions:
            session.send(error("shutting_down", "the server is stopping"))
        await asyncio.gather(
            *(s.flush_and_close(1001, b"server shutting down") for s in sessions),
            return_exceptions=True,
        )
        await asyncio.gather(*(self._end(s, "shutdown") for s in sessions), return_exceptions=True)

    async def stop(self) -> None:
        await self.shutdown()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    # -- status ----------------------------------------------------------------------------------
    def status(self) -> dict:
        return {
            "status": "ok" if self.accepting else "draining",
            "version": __version__,
            "forwarding": self.forwarding.name,
            "participants": {
                "connected": len(self.sessions),
                "waiting": self.matchmaker.waiting_count,
                "paired": self.matchmaker.paired_count,
            },
            "pairs_made": self.matchmaker.pairs_made,
            "directions": direction_modes(s.media for s in self.sessions.values() if s.media),
        }

    # -- WebSocket -------------------------------------------------------------------------------
    async def handle_ws(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(max_msg_size=self.config.hard_message_bytes, heartbeat=20.0)
        await ws.prepare(request)
        session = Session(ws, request.remote or "?")
        if not self.accepting:
            session.send(error("shutting_down", "the server is stopping"))
            await session.flush_and_close(1001, b"server shutting down")
            await session.close()
            return ws
        self.sessions[session.id] = session
        log.info("session %s connected", session.id)
        session.send(
            {
                "type": "welcome",
                "id": session.id,
                "version": __version__,
                "iceServers": [s.to_json() for s in self.ice_issuer.for_client()],
            }
        )
        session.send({"type": "online", "count": len(self.sessions)})
        reason = "left"
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    if not await self._on_text(session, msg.data):
                        reason = "closed by server"
                        break
                elif msg.type == WSMsgType.BINARY:
                    session.send(error("binary_not_supported", "send JSON in text frames"))
                else:  # ERROR (e.g. over the hard size limit)
                    reason = f"socket error {ws.exception()!r}"
                    break
        finally:
            await self._end(session, reason)
        return ws

    async def _on_text(self, session: Session, raw: str) -> bool:
        """Handle one message; return False when the session must end."""
        try:
            message = parse(
                raw,
                max_bytes=self.config.max_message_bytes,
                max_chat_length=self.config.max_chat_length,
            )
            await self._dispatch(session, message)
        except ProtocolError as exc:
            log.info("session %s: refused (%s) %s", session.id, exc.code, exc.message)
            session.send(exc.to_json())
            if exc.fatal:
                await session.flush_and_close(1008, exc.code.encode())
                return False
        except Exception:
            log.exception("session %s: internal error", session.id)
            session.send(error("internal_error", "internal server error"))
            await session.flush_and_close(1011, b"internal error")
            return False
        return True

    async def _dispatch(self, session: Session, message: ClientMessage) -> None:
        now = time.monotonic()
        if isinstance(message, Offer):
            await self._negotiate(session, message.sdp)
        elif isinstance(message, (Start, Next)):
            if session.media is None:
                raise ProtocolError("offer_required", "send an offer before start or next")
            if isinstance(message, Start):
                self._apply(self.matchmaker.start(session.id, now))
            else:
                log.info("session %s: next", session.id)
                self._apply(self.matchmaker.next(session.id, now))
        elif isinstance(message, Stop):
            self._apply(self.matchmaker.stop(session.id, now))
        elif isinstance(message, Chat):
            partner = self.matchmaker.partner_of(session.id)
            if partner is None:
                raise ProtocolError("not_paired", "chat needs a partner")
            self.sessions[partner].send({"type": "chat", "text": message.text})

    async def _negotiate(self, session: Session, sdp: str) -> None:
        if session.media is not None:
            raise ProtocolError("already_negotiated", "one offer per connection")
        media = PeerMedia(self.peer_settings, self.forwarding)
        session.media = media  # owned by the session from now on, even if the client vanishes

        def on_ended(state: str) -> None:
            log.info("session %s: peer connection %s", session.id, state)
            asyncio.ensure_future(session.ws.close(code=1011, message=b"media connection " + state.encode()))

        media.on_ended = on_ended
        try:
            answer = await media.accept(sdp)
        except NoMediaPort as exc:
            log.warning("session %s: %s", session.id, exc)
            raise ProtocolError("server_full", "no media port free; try again later", fatal=True) from None
        except NegotiationError as exc:
            raise ProtocolError("bad_sdp", f"cannot accept the offer: {exc}"[:300], fatal=True) from None
        session.send({"type": "answer", "sdp": answer})
        log.info("session %s: negotiated (%s)", session.id, media.forwarding)

    def _apply(self, events: list[Event]) -> None:
        """Carry out what the matchmaker decided: switch media, then tell the clients."""
        for event in events:
            if isinstance(event, Paired):
                a, b = self.sessions[event.a], self.sessions[event.b]
                a.media.watch(b.media)
                b.media.watch(a.media)
                a.send({"type": "paired", "partner": b.id})
                b.send({"type": "paired", "partner": a.id})
                log.info("paired %s with %s", a.id, b.id)
            else:
                session = self.sessions[event.who]
                if session.media is not None:
                    session.media.watch(None)
                if isinstance(event, Waiting):
                    session.send({"type": "waiting"})
                elif isinstance(event, PartnerLeft):
                    session.send({"type": "partner_left"})
                elif isinstance(event, Idle):
                    session.send({"type": "idle"})

    async def _end(self, session: Session, reason: str) -> None:
        if self.sessions.get(session.id) is session:
            self._apply(self.matchmaker.leave(session.id, time.monotonic()))
            del self.sessions[session.id]
            log.info("session %s ended: %s", session.id, reason)
        await session.close()

    # -- background ------------------------------------------------------------------------------
    async def _broadcast_online(self) -> None:
        while True:
            await asyncio.sleep(self.config.online_interval)
            count = len(self.sessions)
            if count != self._online_sent:
                self._online_sent = count
                for session in list(self.sessions.values()):
                    session.send({"type": "online", "count": count})

    async def _expire_cooldowns(self) -> None:
        while True:
            await asyncio.sleep(0.5)
            try:
                self._apply(self.matchmaker.expire(time.monotonic()))
            except Exception:
                log.exception("rematch sweep failed")
