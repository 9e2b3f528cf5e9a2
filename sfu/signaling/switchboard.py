"""Who is connected and who talks to whom: participants' arrivals and departures, their requests
(offer, start, next, stop, chat), and the matchmaker's decisions carried out.

Carrying out a decision is always in the same order: switch the media first (through the
:class:`~sfu.media.router.MediaRouter`, by participant id), then tell the clients, then metrics and
logs. The matchmaker itself is pure logic and knows nothing of this.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Callable, Optional

from .. import __version__
from ..config import Config, IceServer
from ..limits import AddressLimits, Refusal, SessionLimits
from ..logs import AddressTagger
from ..media.router import MediaRouter
from ..metrics import ServerMetrics
from ..pairing import Event, Idle, Matchmaker, Paired, PairingState, PartnerLeft, Preferences, Waiting
from . import outgoing as out
from .connection import Session
from .errors import ErrorCode, ProtocolError
from .messages import AcceptRules, Chat, ClientMessage, Next, Offer, Report, Start, Stop, parse
from .negotiation import Negotiator
from .safety import Safety

if TYPE_CHECKING:
    from ..moderation.camera import CameraGate

log = logging.getLogger(__name__)


class Switchboard:
    """Every open session by id; the :class:`~sfu.signaling.connection.Handler` of each."""

    def __init__(
        self,
        config: Config,
        *,
        matchmaker: Matchmaker,
        router: MediaRouter,
        negotiator: Negotiator,
        metrics: ServerMetrics,
        limits: SessionLimits,
        addresses: AddressLimits,
        tag_address: AddressTagger,
        ice_servers: Callable[[], list[IceServer]],
        camera: CameraGate | None = None,
    ) -> None:
        self.config = config
        self.matchmaker = matchmaker
        self.router = router
        self.negotiator = negotiator
        self.metrics = metrics
        self.limits = limits
        self.addresses = addresses
        self.tag_address = tag_address
        self.ice_servers = ice_servers
        #: --require-camera: holds back Start until the person's video reaches the server.
        self.camera = camera
        self.sessions: dict[str, Session] = {}
        #: Rules, reports and bans (set once the moderation service is open).
        self.safety: Optional[Safety] = None

    # -- arrivals and departures -----------------------------------------------------------------
    async def serve(self, session: Session) -> None:
        """An admitted session's whole visit: greeted, its messages handled until it ends, forgotten."""
        self.join(session, time.monotonic())
        reason = "left"
        try:
            reason = await session.serve(self)
        finally:
            await self.leave(session, reason)

    async def refuse(self, session: Session, refusal: Refusal) -> None:
        """Turn a session away before ``welcome`` (full, or its address over a limit)."""
        log.info(
            "connection refused (%s)", refusal.code,
            extra={"event": "refused", "code": refusal.code, "client": self.tag_address(session.remote)},
        )
        await session.refuse(out.Error(refusal.code, refusal.message), 1013, refusal.code.encode())

    def join(self, session: Session, now: float) -> None:
        """Count an admitted session in and greet it (``welcome``, then ``online``)."""
        self.sessions[session.id] = session
        self.limits.opened(session.id, now)
        self.metrics.on_connected()
        log.info(
            "session %s connected", session.id,
            extra={"event": "connected", "session": session.id, "client": self.tag_address(session.remote)},
        )
        rules = self.safety.rules_for(session.id) if self.safety else None
        session.send(out.Welcome(session.id, __version__, tuple(self.ice_servers()), rules))
        session.send(out.Online(len(self.sessions)))

    async def leave(self, session: Session, reason: str) -> None:
        """The visit is over: free the partner, forget the session everywhere, close what it owns."""
        try:
            if self.sessions.get(session.id) is session:
                now = time.monotonic()
                if self.camera is not None:
                    self.camera.cancel(session.id)
                self.apply(self.matchmaker.leave(session.id, now), now)
                del self.sessions[session.id]
                if self.safety:
                    self.safety.left(session.id)
                self.router.discard(session.id)
                self.addresses.release(session.remote)
                self.limits.closed(session.id)
                log.info("session %s ended: %s", session.id, reason, extra={"event": "ended", "session": session.id})
                if session.media is not None:
                    await self.metrics.sample_media(session.id, session.media.pc)  # what it sent last
                self.metrics.forget(session.id)
        finally:
            await session.close()

    async def drain(self, budget: float) -> None:
        """Tell every client the server is stopping, then close every session within ``budget`` s."""
        sessions = list(self.sessions.values())
        if sessions:
            log.info("draining %d session(s)", len(sessions), extra={"event": "draining", "sessions": len(sessions)})
        for session in sessions:
            session.send(out.Error(ErrorCode.SHUTTING_DOWN, "the server is stopping"))
        started = time.monotonic()
        try:  # a client that never answers the close handshake must not hold the exit
            closing = (s.flush_and_close(1001, b"server shutting down") for s in sessions)
            await asyncio.wait_for(asyncio.gather(*closing, return_exceptions=True), budget * 0.6)
        except TimeoutError:
            log.warning("drain: some clients did not close their socket in time")
        remaining = max(0.2, budget - (time.monotonic() - started))
        try:
            leaving = (self.leave(s, "shutdown") for s in sessions)
            await asyncio.wait_for(asyncio.gather(*leaving, return_exceptions=True), remaining)
        except TimeoutError:
            log.warning("drain: some sessions did not close in time")

    def send_all(self, message: out.ServerMessage) -> None:
        for session in list(self.sessions.values()):
            session.send(message)

    def is_active(self, session_id: str) -> bool:
        """Waiting (also for their camera) or paired (then a silent client is not idle)."""
        if self.camera is not None and self.camera.holding(session_id):
            return True
        return self.matchmaker.state(session_id) is not PairingState.IDLE

    # -- a session's messages (the Handler protocol) ---------------------------------------------
    def allow(self, session: Session, now: float) -> bool:
        return self.limits.message(session.id, now)

    def parse(self, raw: str) -> ClientMessage:
        return parse(raw, max_bytes=self.config.max_message_bytes, max_chat_length=self.config.max_chat_length)

    async def handle(self, session: Session, message: ClientMessage) -> None:
        now = time.monotonic()
        if isinstance(message, Offer):
            await self.negotiator.negotiate(session, message.sdp)
        elif isinstance(message, (Start, Next)):
            if session.media is None:
                raise ProtocolError(ErrorCode.OFFER_REQUIRED, "send an offer before start or next")
            if self.safety:
                self.safety.require_rules(session.id)
            if self.camera is not None and not self.camera.admits(session.id):
                self._wait_for_camera(session, now, message.preferences)
            elif isinstance(message, Start):
                if self.matchmaker.state(session.id) is not PairingState.PAIRED:
                    self.metrics.on_looking(session.id, now)
                self.apply(self.matchmaker.start(session.id, now, preferences=message.preferences), now)
            else:
                log.info("session %s: next", session.id, extra={"event": "next", "session": session.id})
                self.metrics.on_next()
                self.metrics.on_looking(session.id, now)
                self.apply(self.matchmaker.next(session.id, now, preferences=message.preferences), now)
        elif isinstance(message, AcceptRules):
            if self.safety:
                self.safety.accept_rules(session.id, message.version)
        elif isinstance(message, Report):
            if self.safety is None:
                raise ProtocolError(ErrorCode.NOTHING_TO_REPORT, "reports are not taken yet")
            if await self.safety.report(session, message, now):
                self.move_on(session, time.monotonic())
        elif isinstance(message, Stop):
            if self.camera is not None:
                self.camera.cancel(session.id)
            self.apply(self.matchmaker.stop(session.id, now), now)
        elif isinstance(message, Chat):
            partner = self.matchmaker.partner_of(session.id)
            if partner is None:
                raise ProtocolError(ErrorCode.NOT_PAIRED, "chat needs a partner")
            self.sessions[str(partner)].send(out.Chat(message.text))

    def move_on(self, session: Session, now: float) -> None:
        """The reporter leaves the person they reported, as with Next (same preferences, same cooldown)."""
        log.info("session %s: next after a report", session.id, extra={"event": "next", "session": session.id})
        self.metrics.on_next()
        self.metrics.on_looking(session.id, now)
        self.apply(self.matchmaker.next(session.id, now), now)

    def _wait_for_camera(self, session: Session, now: float, preferences: Optional[Preferences]) -> None:
        """No video of theirs reaches the server: keep them waiting, look for a partner (with the
        preferences they asked with) once it does."""
        assert self.camera is not None
        if self.matchmaker.state(session.id) is not PairingState.IDLE:  # their video stopped: leave, still looking
            events = self.matchmaker.stop(session.id, now)
            self.apply([e for e in events if not (isinstance(e, Idle) and str(e.who) == session.id)], now)
            self.router.connect(session.id, None)
            if self.safety:
                self.safety.parted(session.id, now)
        session.send(out.Waiting())
        if preferences is not None or not self.camera.holding(session.id):  # new preferences replace the held ones
            sid = session.id
            self.camera.hold(sid, lambda: self._camera_arrived(sid, preferences), lambda: self._camera_missing(sid))

    def _camera_missing(self, session_id: str) -> None:
        session = self.sessions.get(session_id)
        if session is not None:
            session.send(out.Moderation("camera_required"))
            log.info("session %s: waiting for their camera", session_id,
                     extra={"event": "camera_required", "session": session_id})

    def _camera_arrived(self, session_id: str, preferences: Optional[Preferences]) -> None:
        if session_id in self.sessions:
            now = time.monotonic()
            self.metrics.on_looking(session_id, now)
            self.apply(self.matchmaker.start(session_id, now, preferences=preferences), now)

    # -- the matchmaker's decisions --------------------------------------------------------------
    def apply(self, events: list[Event], now: float) -> None:
        """Carry out what the matchmaker decided: switch media, then tell the clients."""
        for event in events:
            if isinstance(event, Paired):
                a, b = self.sessions[str(event.a)], self.sessions[str(event.b)]
                self.router.connect(a.id, b.id)
                self.router.connect(b.id, a.id)
                if self.safety:
                    self.safety.paired(a.id, b.id)
                a.send(out.Paired(b.id, event.common))
                b.send(out.Paired(a.id, event.common))
                self.metrics.on_paired(a.id, b.id, self.negotiator.forwarding.name, now, basis=event.basis)
                log.info(
                    "paired %s with %s (%s)", a.id, b.id, event.basis,
                    extra={"event": "paired", "session": a.id, "partner": b.id, "basis": event.basis},
                )
                continue
            session = self.sessions[str(event.who)]
            self.router.connect(session.id, None)
            if self.safety:
                self.safety.parted(session.id, now)
            if isinstance(event, Waiting):
                self.metrics.on_looking(session.id, now)
                session.send(out.Waiting())
            elif isinstance(event, PartnerLeft):
                self.metrics.on_looking(session.id, now)
                session.send(out.PartnerLeft())
            elif isinstance(event, Idle):
                self.metrics.on_unpaired(session.id)
                session.send(out.Idle())
