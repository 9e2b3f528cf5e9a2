"""Moderation as connected visitors meet it: who they are (device + address), the rules they accepted,
their reports of partners (with the server's own pictures of the reported person), and bans and
warnings carried out at once.

The switchboard calls in at the moments the methods name; :class:`~sfu.moderation.service.ModerationService`
stores everything and decides bans. Evidence is captured in a background task so the reporter never
waits for it: the report is stored first, ``reported`` is sent, the reporter moves on, and the
pictures are added to the report when they are ready.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Optional

from ..media.router import MediaRouter
from ..moderation.actions import Warned
from ..moderation.capture import CapturePlan, capture_pictures
from ..moderation.identity import ModerationIdentity
from ..moderation.policy import ReportRefused, check_report
from ..moderation.recent import RecentPartners
from ..moderation.records import Ban, EvidenceImage, iso
from ..moderation.service import ModerationService
from . import outgoing as out
from .connection import Session
from .errors import ErrorCode, ProtocolError
from .messages import Report
from .tasks import ClosingTasks

log = logging.getLogger(__name__)

#: Seconds the server waits, when stopping, for evidence still being captured.
CAPTURE_DRAIN = 5.0

#: Pictures of a participant served by another process: ``(participant, process)`` -> JPEGs.
RemoteCapture = Callable[[str, str], Awaitable[list[EvidenceImage]]]


@dataclass
class Visitor:
    session: Session
    identity: ModerationIdentity
    #: The visitor's ``Accept-Language`` (the rules are sent in the best language there is).
    language: Optional[str] = None
    #: The rules version they accepted on this connection (``None``: not yet).
    accepted: Optional[str] = None


def banned_error(ban: Ban) -> out.Error:
    """What a banned person is told: until when and why (no ids, no hashes)."""
    return out.Error(ErrorCode.BANNED, f"you are banned until {iso(ban.until)}",
                     {"until": iso(ban.until), "reason": ban.reason})


class Safety:
    def __init__(
        self,
        service: ModerationService,
        router: MediaRouter,
        closing: ClosingTasks,
    ) -> None:
        self.service = service
        self.router = router
        self.closing = closing
        self.recent = RecentPartners(service.settings.report_window)
        self.plan = CapturePlan.from_settings(service.settings)
        self.visitors: dict[str, Visitor] = {}
        self._captures: set[asyncio.Task[None]] = set()
        #: How evidence of a partner served by another process is taken (set with a shared pool).
        self.remote_capture: Optional[RemoteCapture] = None
        service.on_ban(self.banned)
        service.on_warn(self.warned)

    # -- arrivals and departures -----------------------------------------------------------------
    async def admit(self, session: Session, device: str, address: str, language: Optional[str]) -> Optional[Ban]:
        """Know ``session`` as this device at this address; the ban in force that refuses it, if any."""
        identity = self.service.identities.identity(device, address)
        try:
            ban = await self.service.is_banned(identity)
        except Exception:  # the database is unreachable: let people chat rather than lock everyone out
            log.exception("session %s: ban check failed; admitted", session.id)
            ban = None
        if ban is not None:
            log.info("session %s refused: banned (ban %d)", session.id, ban.id,
                     extra={"event": "refused", "code": "banned", "session": session.id})
            return ban
        self.visitors[session.id] = Visitor(session, identity, language)
        return None

    def left(self, session_id: str) -> None:
        self.visitors.pop(session_id, None)
        self.recent.forget(session_id)

    # -- rules -------------------------------------------------------------------------------------
    def rules_for(self, session_id: str) -> Optional[dict[str, Any]]:
        """The rules as ``welcome`` carries them, in the visitor's language."""
        visitor = self.visitors.get(session_id)
        return self.service.rules.to_json(visitor.language if visitor else None)

    def accept_rules(self, session_id: str, version: str) -> None:
        visitor = self.visitors.get(session_id)
        if visitor is None:
            return
        if not self.service.rules.accepts(version):
            raise ProtocolError(ErrorCode.RULES_CHANGED, "these are not the current rules; read and accept them again",
                                {"rules": self.rules_for(session_id)})
        visitor.accepted = version

    def require_rules(self, session_id: str) -> None:
        """Raise ``rules_not_accepted`` unless the visitor accepted the current rules."""
        visitor = self.visitors.get(session_id)  # None: being disconnected (banned)
        if visitor is None or not self.service.rules.accepts(visitor.accepted):
            raise ProtocolError(ErrorCode.RULES_NOT_ACCEPTED, "accept the rules (accept_rules) before you start")

    # -- pairing -----------------------------------------------------------------------------------
    def paired(self, a: str, b: str) -> None:
        va, vb = self.visitors.get(a), self.visitors.get(b)
        if va is not None and vb is not None:
            self.recent.paired(a, va.identity, b, vb.identity)

    def parted(self, who: str, now: float) -> None:
        self.recent.parted(who, now)

    def paired_elsewhere(self, local: str, remote: str) -> None:
        """``local`` is paired with ``remote``, served by another process (identity to follow)."""
        if local in self.visitors:
            self.recent.met(local, remote)

    def introduced(self, local: str, remote: str, identity: ModerationIdentity, process: str) -> bool:
        """``remote``'s process says who they are: ``local`` may report them (False: not their partner)."""
        return self.recent.identify(local, remote, identity, process)

    def identity_of(self, session_id: str) -> Optional[ModerationIdentity]:
        visitor = self.visitors.get(session_id)
        return visitor.identity if visitor is not None else None

    # -- reports -----------------------------------------------------------------------------------
    async def report(self, session: Session, message: Report, now: float) -> bool:
        """Store ``session``'s report of their (last) partner and answer ``reported``; capture evidence in
        the background. True when the reported person is still their partner (the caller moves them on).

        Raises :class:`ProtocolError` when refused (nothing changes then)."""
        try:  # what was sent first, then whether there is anyone to report
            check_report(message.reason, message.note, self.service.settings.max_note_length)
        except ReportRefused as refused:
            self.service.metrics.reports_refused.labels(code=refused.code).inc()
            raise ProtocolError(_error_code(refused.code), refused.message) from None
        visitor = self.visitors.get(session.id)
        target = self.recent.reportable(session.id, now)
        if visitor is None or target is None:
            self.service.metrics.reports_refused.labels(code=ErrorCode.NOTHING_TO_REPORT.value).inc()
            raise ProtocolError(ErrorCode.NOTHING_TO_REPORT, "nobody to report: you are not paired, and your last "
                                f"partner left more than {self.recent.window:g} s ago")
        if target.identity is None:  # paired a moment ago across processes; who they are is on its way
            raise ProtocolError(ErrorCode.REPORT_FAILED, "the report could not be stored yet; try again")
        try:
            outcome = await self.service.report(visitor.identity, target.identity, message.reason, message.note)
        except ReportRefused as refused:
            details = {"retry_after": round(refused.retry_after, 1)} if refused.retry_after is not None else None
            raise ProtocolError(_error_code(refused.code), refused.message, details) from None
        except Exception:  # the database: the visitor keeps their connection and may try again
            log.exception("session %s: report not stored", session.id)
            raise ProtocolError(ErrorCode.REPORT_FAILED, "the report could not be stored; try again") from None
        if not outcome.duplicate:
            self._keep(self._attach_evidence(outcome.report_id, self._capture(target.session, target.served_by)))
        log.info("session %s: report %d%s", session.id, outcome.report_id, " (again)" if outcome.duplicate else "",
                 extra={"event": "report", "session": session.id, "report": outcome.report_id})
        session.send(out.Reported(outcome.report_id))
        return self.recent.current(session.id) is target

    def _capture(self, participant: str, served_by: Optional[str]) -> Awaitable[list[EvidenceImage]]:
        """Pictures of ``participant``, taken where their video arrives (here, or by ``served_by``)."""
        if served_by is not None and self.remote_capture is not None:
            return self.remote_capture(participant, served_by)
        return capture_pictures(self.router.sources(participant).get("video"), self.plan)

    async def _attach_evidence(self, report_id: int, capture: Awaitable[list]) -> None:
        try:
            pictures = await capture
            if not pictures:
                log.info("report %d: no picture (the reported person's video is gone)", report_id)
                return
            await self.service.attach_evidence(report_id, pictures)
        except Exception:
            log.exception("report %d: evidence not stored", report_id)

    def _keep(self, step: Awaitable[None]) -> None:
        task = asyncio.ensure_future(step)
        self._captures.add(task)
        task.add_done_callback(self._captures.discard)

    async def settle(self, timeout: float = CAPTURE_DRAIN) -> None:
        """Let evidence still being captured be stored (up to ``timeout`` s), then give up on the rest."""
        tasks = list(self._captures)
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=timeout)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    # -- decisions carried out ---------------------------------------------------------------------
    def _covered(self, device: str, address_hash: Optional[str]) -> list[Visitor]:
        return [
            v for v in list(self.visitors.values())
            if v.identity.device == device or (address_hash is not None and v.identity.address_hash == address_hash)
        ]

    def banned(self, ban: Ban) -> None:
        """A new ban (moderator or automatic): everyone it covers is disconnected at once."""
        for visitor in self._covered(ban.device, ban.address_hash):
            session = visitor.session
            log.info("session %s: banned (ban %d), disconnecting", session.id, ban.id,
                     extra={"event": "banned", "session": session.id})
            self.visitors.pop(session.id, None)
            session.send(banned_error(ban))
            self.closing.spawn(session.flush_and_close(1008, b"banned"))

    def warned(self, warned: Warned) -> None:
        for visitor in self._covered(warned.identity.device, None):
            visitor.session.send(out.Moderation("warned", warned.reason))


def _error_code(code: str) -> ErrorCode:
    """The protocol's code for a refused report's code (they are the same strings)."""
    return next((c for c in ErrorCode if c.value == code), ErrorCode.BAD_MESSAGE)
