"""The server: sessions, matchmaking and media switching, tied together by signaling."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Optional

from aiohttp import WSMsgType, web

from . import __version__
from .config import Config
from .limits import AddressLimits, Refusal, SessionLimits, client_address
from .logs import AddressTagger
from .media.forwarding import direction_modes, make_forwarding
from .media.peer import NegotiationError, NoMediaPort, PeerMedia, PeerSettings
from .media.router import MediaRouter
from .metrics import ServerMetrics
from .pairing import Event, Idle, Matchmaker, Paired, PairingState, PartnerLeft, Waiting
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
        self.media = MediaRouter()
        self._tasks: list[asyncio.Task] = []
        self._online_sent: Optional[int] = None
        self.accepting = True
        #: False once a drain is announced (``drain_grace``): /readyz says so while still serving.
        self.ready = True
        self.limits = SessionLimits(config)
        self.addresses = AddressLimits(config)
        self.tag_address = AddressTagger(full=config.log_client_addresses)
        self.metrics = ServerMetrics(
            connected=lambda: len(self.sessions),
            waiting=lambda: self.matchmaker.waiting_count,
            paired=lambda: self.matchmaker.paired_count,
            draining=lambda: 0 if self.accepting else 1,
            directions=lambda: direction_modes(s.media for s in self.sessions.values() if s.media),
        )
        self._closing: set[asyncio.Task] = set()

    # -- lifecycle -------------------------------------------------------------------------------
    async def start(self) -> None:
        self._tasks = [
            asyncio.ensure_future(self._broadcast_online()),
            asyncio.ensure_future(self._expire_cooldowns()),
            asyncio.ensure_future(self._enforce_limits()),
            asyncio.ensure_future(self._sample_media()),
            asyncio.ensure_future(self._watch_loop()),
        ]

    async def shutdown(self) -> None:
        """Tell every client the server is stopping and close every session, within drain_timeout."""
        self.accepting = False
        sessions = list(self.sessions.values())
        if sessions:
            log.info("draining %d session(s)", len(sessions), extra={"event": "draining", "sessions": len(sessions)})
        for session in sessions:
            session.send(error("shutting_down", "the server is stopping"))
        budget = max(0.2, self.config.drain_timeout)
        started = time.monotonic()
        try:  # a client that never answers the close handshake must not hold the exit
            await asyncio.wait_for(
                asyncio.gather(*(s.flush_and_close(1001, b"server shutting down") for s in sessions), return_exceptions=True),
                budget * 0.6,
            )
        except asyncio.TimeoutError:
            log.warning("drain: some clients did not close their socket in time")
        remaining = max(0.2, budget - (time.monotonic() - started))
        try:
            await asyncio.wait_for(
                asyncio.gather(*(self._end(s, "shutdown") for s in sessions), return_exceptions=True), remaining
            )
        except asyncio.TimeoutError:
            log.warning("drain: some sessions did not close in time")

    async def stop(self) -> None:
        await self.shutdown()
        for task in [*self._tasks, *self._closing]:
            task.cancel()
        await asyncio.gather(*self._tasks, *self._closing, return_exceptions=True)
        self._tasks = []

    # -- status ----------------------------------------------------------------------------------
    def status(self) -> dict:
        return {
            "status": "ok" if self.accepting and self.ready else "draining",
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

    def readiness(self) -> tuple[bool, str]:
        """Whether a new participant would be accepted (for /readyz), and why not."""
        if not self.accepting or not self.ready:
            return False, "draining"
        if self.config.max_participants and len(self.sessions) >= self.config.max_participants:
            return False, "full"
        return True, "ready"

    def _admission(self, address: str, now: float) -> Optional[Refusal]:
        if self.config.max_participants and len(self.sessions) >= self.config.max_participants:
            return Refusal("server_full", "the server is full; try again later")
        return self.addresses.admit(address, now)

    # -- WebSocket -------------------------------------------------------------------------------
    async def handle_ws(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(max_msg_size=self.config.hard_message_bytes, heartbeat=20.0)
        await ws.prepare(request)
        address = client_address(
            request.remote, request.headers.get("X-Forwarded-For"), self.config.trust_forwarded_for
        )
        session = Session(ws, address)
        session.on_send = self.metrics.on_message_sent
        refusal = None if not self.accepting else self._admission(address, time.monotonic())
        if refusal is not None:
            log.info(
                "connection refused (%s)", refusal.code,
                extra={"event": "refused", "code": refusal.code, "client": self.tag_address(address)},
            )
            session.send(error(refusal.code, refusal.message))
            await session.flush_and_close(1013, refusal.code.encode())
            await session.close()
            return ws
        if not self.accepting:
            session.send(error("shutting_down", "the server is stopping"))
            await session.flush_and_close(1001, b"server shutting down")
            await session.close()
            return ws
        self.sessions[session.id] = session
        self.limits.opened(session.id, time.monotonic())
        self.metrics.on_connected()
        log.info(
            "session %s connected", session.id,
            extra={"event": "connected", "session": session.id, "client": self.tag_address(address)},
        )
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
                if msg.type in (WSMsgType.TEXT, WSMsgType.BINARY) and not self.limits.message(
                    session.id, time.monotonic()
                ):
                    session.send(error("rate_limited", "too many messages; slow down"))
                elif msg.type == WSMsgType.TEXT:
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
                if self.matchmaker.state(session.id) is not PairingState.PAIRED:
                    self.metrics.on_looking(session.id, now)
                self._apply(self.matchmaker.start(session.id, now))
            else:
                log.info("session %s: next", session.id, extra={"event": "next", "session": session.id})
                self.metrics.on_next()
                self.metrics.on_looking(session.id, now)
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
        self.media.add(session.id, media)

        def on_ended(state: str) -> None:
            log.info("session %s: peer connection %s", session.id, state)
            self._own(session.ws.close(code=1011, message=b"media connection " + state.encode()))

        media.on_ended = on_ended
        try:
            answer = await media.accept(sdp)
        except NoMediaPort as exc:
            log.warning("session %s: %s", session.id, exc)
            raise ProtocolError("server_full", "no media port free; try again later", fatal=True) from None
        except NegotiationError as exc:
            raise ProtocolError("bad_sdp", f"cannot accept the offer: {exc}"[:300], fatal=True) from None
        video = media.outbound.get("video")
        if video is not None:
            video.on_first_item = self.metrics.first_frame_callback(session.id)
        self.limits.negotiated(session.id, time.monotonic())
        session.send({"type": "answer", "sdp": answer})
        log.info(
            "session %s: negotiated (%s)", session.id, media.forwarding,
            extra={"event": "negotiated", "session": session.id, "forwarding": media.forwarding},
        )

    def _apply(self, events: list[Event]) -> None:
        """Carry out what the matchmaker decided: switch media, then tell the clients."""
        for event in events:
            if isinstance(event, Paired):
                a, b = self.sessions[event.a], self.sessions[event.b]
                self.media.connect(a.id, b.id)
                self.media.connect(b.id, a.id)
                a.send({"type": "paired", "partner": b.id})
                b.send({"type": "paired", "partner": a.id})
                self.metrics.on_paired(a.id, b.id, a.media.forwarding, time.monotonic())
                log.info("paired %s with %s", a.id, b.id, extra={"event": "paired", "session": a.id, "partner": b.id})
            else:
                session = self.sessions[event.who]
                self.media.connect(session.id, None)
                if isinstance(event, Waiting):
                    self.metrics.on_looking(session.id, time.monotonic())
                    session.send({"type": "waiting"})
                elif isinstance(event, PartnerLeft):
                    self.metrics.on_looking(session.id, time.monotonic())
                    session.send({"type": "partner_left"})
                elif isinstance(event, Idle):
                    self.metrics.on_unpaired(session.id)
                    session.send({"type": "idle"})

    async def _end(self, session: Session, reason: str) -> None:
        try:
            if self.sessions.get(session.id) is session:
                self._apply(self.matchmaker.leave(session.id, time.monotonic()))
                del self.sessions[session.id]
                self.media.discard(session.id)
                self.addresses.release(session.remote)
                self.limits.closed(session.id)
                log.info("session %s ended: %s", session.id, reason, extra={"event": "ended", "session": session.id})
                if session.media is not None:
                    await self.metrics.sample_media(session.id, session.media.pc)  # what it sent last
                self.metrics.forget(session.id)
        finally:
            await session.close()

    # -- background ------------------------------------------------------------------------------
    async def _broadcast_online(self) -> None:
        while True:
            await asyncio.sleep(self.config.online_interval)
            count = len(self.sessions)
            if count != self._online_sent:
                self._online_sent = count
                self._send_all({"type": "online", "count": count})

    def _send_all(self, message: dict) -> None:
        # A helper, so no background loop keeps a reference to a finished session between rounds.
        for session in list(self.sessions.values()):
            session.send(message)

    async def _expire_cooldowns(self) -> None:
        while True:
            await asyncio.sleep(0.5)
            try:
                self._apply(self.matchmaker.expire(time.monotonic()))
            except Exception:
                log.exception("rematch sweep failed")

    async def _enforce_limits(self) -> None:
        """Close half-open and idle sessions (error ``timeout``)."""
        while True:
            await asyncio.sleep(0.5)
            try:
                self._enforce_once(time.monotonic())
            except Exception:
                log.exception("limits sweep failed")

    def _enforce_once(self, now: float) -> None:
        for session in list(self.sessions.values()):
            if session.media is not None and session.media.pc.connectionState == "connected":
                self.limits.media_connected(session.id)
            active = self.matchmaker.state(session.id) is not PairingState.IDLE
            why = self.limits.overdue(session.id, now, active=active)
            if why is None:
                continue
            self.limits.closed(session.id)  # decided once
            log.info("session %s: timeout (%s)", session.id, why, extra={"event": "timeout", "session": session.id})
            session.send(error("timeout", why))
            self._own(session.flush_and_close(1008, b"timeout"))

    def _own(self, coro: Any) -> None:
        """Run a closing step in the background; the server awaits what is left when it stops."""
        task = asyncio.ensure_future(coro)
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def _sample_media(self) -> None:
        """Count bytes and packets sent to participants (for /metrics)."""
        while True:
            await asyncio.sleep(self.config.stats_interval)
            try:
                await self._sample_once()
            except Exception:
                log.exception("media statistics sweep failed")

    async def _sample_once(self) -> None:
        for session in list(self.sessions.values()):
            if session.media is not None and not session.closed:
                await self.metrics.sample_media(session.id, session.media.pc)

    async def _watch_loop(self, interval: float = 0.25) -> None:
        """Measure how late the event loop runs a timer: the server's own responsiveness."""
        loop = asyncio.get_running_loop()
        while True:
            before = loop.time()
            await asyncio.sleep(interval)
            self.metrics.on_loop_lag(max(0.0, loop.time() - before - interval))
