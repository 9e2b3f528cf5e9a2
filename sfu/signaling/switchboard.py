"""Who is connected and who talks to whom: participants' arrivals and departures, their requests
(offer, start, next, stop, chat), and the matchmaker's decisions carried out.

Every request is one awaited call to the :class:`~sfu.pairing.shared.Pairing` (in memory, or the pool
shared with other processes on Redis); its decisions come back as deliveries (:meth:`Switchboard.deliver`):
during the call in memory, from the process's inbox on Redis. Carrying out a decision is always in the
same order: switch the media first (through the :class:`~sfu.media.router.MediaRouter`, by participant
id), then tell the clients, then metrics and logs. A partner served by another process is reached
through :attr:`Switchboard.elsewhere` (:mod:`sfu.cluster`), which carries the other half.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Callable, Optional, TypeVar

from .. import __version__
from ..config import Config, IceServer
from ..limits import AddressLimits, Refusal, SessionLimits
from ..logs import AddressTagger
from ..media.router import MediaRouter
from ..metrics import ServerMetrics
from ..pairing import Event, Idle, Paired, PartnerLeft, Preferences, Waiting
from ..pairing.shared import Delivery, NotOwner, Pairing, PairingUnavailable
from . import outgoing as out
from .connection import Session
from .elsewhere import Elsewhere
from .errors import ErrorCode, ProtocolError
from .messages import AcceptRules, Chat, ClientMessage, Next, Offer, Report, Start, Stop, parse
from .negotiation import Negotiator
from .safety import Safety

if TYPE_CHECKING:
    from ..moderation.camera import CameraGate

log = logging.getLogger(__name__)

T = TypeVar("T")


class Switchboard:
    """Every open session by id; the :class:`~sfu.signaling.connection.Handler` of each."""

    def __init__(
        self,
        config: Config,
        *,
        pairing: Pairing,
        router: MediaRouter,
        negotiator: Negotiator,
        metrics: ServerMetrics,
        limits: SessionLimits,
        addresses: AddressLimits,
        tag_address: AddressTagger,
        ice_servers: Callable[[], list[IceServer]],
        camera: CameraGate | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.pairing = pairing
        #: The pairing's clock: the same in every process sharing a pool (wall-clock time on Redis).
        self.clock = clock
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
        self._leaving: set[str] = set()  #: sessions whose departure is being carried out
        #: Rules, reports and bans (set once the moderation service is open).
        self.safety: Optional[Safety] = None
        #: Partners served by other processes (``None``: one process, everyone is here).
        self.elsewhere: Optional[Elsewhere] = None
        #: What the deliveries said of each local participant: their partner, or that they wait.
        self.partners: dict[str, str] = {}
        self.looking: set[str] = set()
        #: The preferences each local participant last asked with (to look again after a pool reset).
        self.asked: dict[str, Optional[Preferences]] = {}
        #: Participants whose next ``idle`` is not announced (they went back to waiting for their camera).
        self._quiet: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()

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
        details = {} if refusal.retry_after is None else {"retry_after": refusal.retry_after}
        await session.refuse(out.Error(refusal.code, refusal.message, details), 1013, refusal.code.encode())

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
        session.send(out.Online(self.online()))

    def online(self) -> int:
        """People connected: here, or over the whole pool when it is shared."""
        here = len(self.sessions)
        return here if self.elsewhere is None else self.elsewhere.online(here)

    async def leave(self, session: Session, reason: str) -> None:
        """The visit is over: free the partner, forget the session everywhere, close what it owns."""
        try:
            if self.sessions.get(session.id) is session and session.id not in self._leaving:
                self._leaving.add(session.id)  # once: a drain and the visit's own end may both get here
                if self.camera is not None:
                    self.camera.cancel(session.id)
                try:
                    await self.pairing.leave(session.id, self.clock())
                except PairingUnavailable:
                    if self.elsewhere is not None:
                        self.elsewhere.left(session.id)
                self._part(session.id)
                del self.sessions[session.id]
                self._leaving.discard(session.id)
                self._forget(session.id)
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
        return session_id in self.looking or session_id in self.partners

    def _forget(self, who: str) -> None:
        self.looking.discard(who)
        self.partners.pop(who, None)
        self.asked.pop(who, None)
        self._quiet.discard(who)

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
            if message.preferences is not None or session.id not in self.asked:
                self.asked[session.id] = message.preferences
            if self.camera is not None and not self.camera.admits(session.id):
                await self._wait_for_camera(session, now, message.preferences)
            elif isinstance(message, Start):
                if session.id not in self.partners:
                    self.metrics.on_looking(session.id, now)
                await self._call(session.id, self.pairing.start(session.id, self.clock(), preferences=message.preferences))
            else:
                log.info("session %s: next", session.id, extra={"event": "next", "session": session.id})
                self.metrics.on_next()
                self.metrics.on_looking(session.id, now)
                await self._call(session.id, self.pairing.next(session.id, self.clock(), preferences=message.preferences))
        elif isinstance(message, AcceptRules):
            if self.safety:
                self.safety.accept_rules(session.id, message.version)
        elif isinstance(message, Report):
            if self.safety is None:
                raise ProtocolError(ErrorCode.NOTHING_TO_REPORT, "reports are not taken yet")
            if await self.safety.report(session, message, now):
                await self.move_on(session, time.monotonic())
        elif isinstance(message, Stop):
            if self.camera is not None:
                self.camera.cancel(session.id)
            await self._call(session.id, self.pairing.stop(session.id, self.clock()))
        elif isinstance(message, Chat):
            partner = self.partners.get(session.id)
            if partner is None:
                raise ProtocolError(ErrorCode.NOT_PAIRED, "chat needs a partner")
            if partner in self.sessions:
                self.sessions[partner].send(out.Chat(message.text))
            elif self.elsewhere is not None:
                self.elsewhere.chat(session.id, partner, message.text)

    async def move_on(self, session: Session, now: float) -> None:
        """The reporter leaves the person they reported, as with Next (same preferences, same cooldown)."""
        log.info("session %s: next after a report", session.id, extra={"event": "next", "session": session.id})
        self.metrics.on_next()
        self.metrics.on_looking(session.id, now)
        await self._call(session.id, self.pairing.next(session.id, self.clock()))

    async def _call(self, who: str, operation: Awaitable[T]) -> T:
        """One pairing call for ``who``; refused with ``pairing_unavailable`` while the pool is unreachable."""
        try:
            result = await operation
        except PairingUnavailable:
            raise ProtocolError(ErrorCode.PAIRING_UNAVAILABLE, "pairing is unavailable for a moment; "
                                "try again in a few seconds") from None
        except NotOwner:
            log.error("session %s: the pool says another process serves this id", who)
            raise ProtocolError(ErrorCode.INTERNAL_ERROR, "this session is known elsewhere") from None
        if who not in self.sessions:  # left while the call was under way: take them out again
            self._spawn(self.pairing.leave(who, self.clock()))
        return result

    async def expire(self) -> None:
        """Pair people whose rematch cooldown with each other ended while they waited alone."""
        try:
            await self.pairing.expire(self.clock())
        except PairingUnavailable:
            pass  # said once by the pool's watcher; nothing to expire until it is back

    def _spawn(self, step: Awaitable[object]) -> None:
        async def run() -> None:
            try:
                await step
            except (PairingUnavailable, NotOwner):
                pass  # unreachable: done again when it is back; not ours: its own process acts
            except Exception:
                log.exception("pairing call failed")

        task = asyncio.ensure_future(run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _wait_for_camera(self, session: Session, now: float, preferences: Optional[Preferences]) -> None:
        """No video of theirs reaches the server: keep them waiting, look for a partner (with the
        preferences they asked with) once it does."""
        assert self.camera is not None
        if session.id in self.looking or session.id in self.partners:  # their video stopped: leave, still looking
            self._quiet.add(session.id)
            try:
                await self._call(session.id, self.pairing.stop(session.id, self.clock()))
            except ProtocolError:
                self._quiet.discard(session.id)
                raise
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
            self.metrics.on_looking(session_id, time.monotonic())
            self._spawn(self._start_now(session_id, preferences))

    async def _start_now(self, session_id: str, preferences: Optional[Preferences]) -> None:
        try:
            await self._call(session_id, self.pairing.start(session_id, self.clock(), preferences=preferences))
        except ProtocolError as error:
            session = self.sessions.get(session_id)
            if session is not None:
                session.send(out.Error(error.code, error.message))

    async def look_again(self) -> None:
        """Put everyone here who waits for a partner back in the pool (it was reset, or lost them)."""
        for who in sorted(self.looking):
            if who in self.sessions and (self.camera is None or not self.camera.holding(who)):
                await self.pairing.start(who, self.clock(), preferences=self.asked.get(who))

    # -- the pairing's decisions ------------------------------------------------------------------
    def deliver(self, delivery: Delivery) -> None:
        """One decision concerning someone served here (the pairing's event sink: never raises)."""
        try:
            self.apply([delivery.event], time.monotonic())
        except Exception:
            log.exception("pairing event %s not carried out", delivery.event)

    def apply(self, events: list[Event], now: float) -> None:
        """Carry out what the pairing decided: switch media, then tell the clients."""
        for event in events:
            if isinstance(event, Paired):
                self._paired(event, now)
                continue
            who = str(event.who)
            session = self.sessions.get(who)
            if session is None:  # gone already (or never known here): take them out of the pool
                self._spawn(self.pairing.leave(who, self.clock()))
                continue
            self._part(who)
            self.router.connect(who, None)
            if self.safety:
                self.safety.parted(who, now)
            if isinstance(event, Waiting):
                self.looking.add(who)
                self.metrics.on_looking(who, now)
                session.send(out.Waiting())
            elif isinstance(event, PartnerLeft):
                self.looking.add(who)
                self.metrics.on_looking(who, now)
                session.send(out.PartnerLeft())
            elif isinstance(event, Idle):
                self.looking.discard(who)
                if who in self._quiet:  # back to waiting for their camera: still looking, says nothing
                    self._quiet.discard(who)
                    continue
                self.metrics.on_unpaired(who)
                session.send(out.Idle())

    def _part(self, who: str) -> None:
        partner = self.partners.pop(who, None)
        if partner is not None and self.elsewhere is not None:
            self.elsewhere.parted(who, partner)

    def _paired(self, event: Paired, now: float) -> None:
        ids = str(event.a), str(event.b)
        here = [who for who in ids if who in self.sessions]
        if not here or (self.elsewhere is None and len(here) < 2):  # someone of ours is gone: undo the pair
            for who in ids:
                if who not in self.sessions:
                    self._spawn(self.pairing.leave(who, self.clock()))
        for who in here:
            partner = ids[1] if who == ids[0] else ids[0]
            self._part(who)
            self.looking.discard(who)
            self.partners[who] = partner
            if partner in self.sessions:
                self.router.connect(who, partner)
            elif self.elsewhere is not None:
                self.elsewhere.paired(who, partner)
        if self.safety and len(here) == 2:
            self.safety.paired(*ids)
        for who in here:
            partner = ids[1] if who == ids[0] else ids[0]
            self.sessions[who].send(out.Paired(partner, event.common))
        if ids[0] in self.sessions:  # the pair is counted where the one whose search found it is served
            self.metrics.on_paired(ids[0], ids[1], self.negotiator.forwarding.name, now, basis=event.basis)
            log.info(
                "paired %s with %s (%s)", ids[0], ids[1], event.basis,
                extra={"event": "paired", "session": ids[0], "partner": ids[1], "basis": event.basis},
            )
        elif here:
            self.metrics.on_partnered(ids[1], now)
            log.info("paired %s with %s (%s), served elsewhere", ids[1], ids[0], event.basis,
                     extra={"event": "paired", "session": ids[1], "partner": ids[0], "basis": event.basis})
