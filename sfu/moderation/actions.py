"""What moderators do and see: dismiss, warn, ban, unban (each with an audit entry in the same
transaction), and the queue, report details, evidence, bans and the audit log.

:class:`ModeratorActions` is part of :class:`~sfu.moderation.service.ModerationService`; input comes
from the API as untrusted JSON values and is checked here (:class:`ActionError`).
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .identity import ModerationIdentity
from .records import (
    BAN_SCOPES,
    REPORT_SOURCES,
    REPORT_STATUSES,
    AuditEntry,
    Ban,
    Evidence,
    Report,
)

if TYPE_CHECKING:
    from .metrics import ModerationMetrics
    from .settings import ModerationSettings
    from .storage import EvidenceFiles, ModerationStore, Queries

log = logging.getLogger(__name__)

ACTIONS = ("dismiss", "warn", "ban")
#: Shortest and longest ban a moderator may give (one minute; about ten years).
MIN_BAN_SECONDS = 60.0
MAX_BAN_SECONDS = 10 * 366 * 86400.0
MAX_REASON = 500
MAX_ACTOR = 128


class ActionError(Exception):
    """Refused moderator input: ``code`` is stable, ``status`` the HTTP status to answer with."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


@dataclass(frozen=True)
class Warned:
    """A moderator warned someone: the server may tell them if they are connected."""

    identity: ModerationIdentity
    reason: str
    report_id: int


@dataclass(frozen=True)
class ActionResult:
    report: Report
    ban: Ban | None = None
    #: Other open reports against the same person closed by this action.
    also_resolved: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class ReportDetail:
    report: Report
    evidence: list[Evidence]
    #: How often the reported device was reported, struck and banned.
    history: dict[str, int]
    bans: list[Ban]


def clean_text(value: object, what: str, limit: int, required: bool = False) -> str | None:
    if value is None or value == "":
        if required:
            raise ActionError("bad_request", f"{what} is required")
        return None
    if not isinstance(value, str):
        raise ActionError("bad_request", f"{what} must be text")
    text = "".join(ch for ch in value if ch.isprintable()).strip()
    if len(text) > limit:
        raise ActionError("bad_request", f"{what} is longer than {limit} characters")
    return text or None


def parse_duration(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ActionError("bad_request", "duration_s must be a number of seconds")
    if not MIN_BAN_SECONDS <= value <= MAX_BAN_SECONDS:
        raise ActionError("bad_request", f"duration_s must be between {MIN_BAN_SECONDS:g} and {MAX_BAN_SECONDS:g}")
    return float(value)


class ModeratorActions:
    if TYPE_CHECKING:
        settings: ModerationSettings
        store: ModerationStore
        files: EvidenceFiles
        clock: Callable[[], float]
        metrics: ModerationMetrics

        async def notify(self, kind: str, value: Any) -> None: ...

        async def refresh_metrics(self, now: float | None = None) -> None: ...

        async def _maybe_ban(self, tx: Queries, identity: ModerationIdentity, now: float,
                             report_id: int | None) -> tuple[Ban | None, int]: ...

        async def _after_ban(self, ban: Ban | None) -> None: ...

    # -- actions on a report -------------------------------------------------------------------
    async def act(self, report_id: int, action: object, *, actor: str, duration_s: object = None,
                  scope: object = "device", reason: object = None, now: float | None = None) -> ActionResult:
        """One moderator decision on a report (values as they came from the API)."""
        if action == "dismiss":
            return await self.dismiss(report_id, actor=actor, reason=reason, now=now)
        if action == "warn":
            return await self.warn(report_id, actor=actor, reason=reason, now=now)
        if action == "ban":
            return await self.ban(report_id, actor=actor, duration_s=duration_s, scope=scope, reason=reason, now=now)
        raise ActionError("bad_request", f"action must be one of {', '.join(ACTIONS)}")

    async def dismiss(self, report_id: int, *, actor: str, reason: object = None,
                      now: float | None = None) -> ActionResult:
        now, actor, note = self._begin_action(now, actor, reason)
        async with self.store.begin() as tx:
            await self._report_or_404(tx, report_id)
            await tx.set_report_status(report_id, "dismissed", actor, now)
            await tx.add_audit(now=now, actor=actor, action="dismiss", target_type="report",
                               target_id=str(report_id), detail={"reason": note} if note else {})
            report = await self._report_or_404(tx, report_id)
        self._count("dismiss")
        return ActionResult(report=report)

    async def warn(self, report_id: int, *, actor: str, reason: object = None,
                   now: float | None = None) -> ActionResult:
        """Tell the reported person to follow the rules; counts a strike (which may ban them)."""
        now, actor, note = self._begin_action(now, actor, reason)
        async with self.store.begin() as tx:
            report = await self._report_or_404(tx, report_id)
            message = note or f"Please follow the rules ({report.reason})"
            await tx.set_report_status(report_id, "warned", actor, now)
            await tx.add_strike(report.reported, f"warning: {message}"[:MAX_REASON], now, report_id)
            await tx.add_audit(now=now, actor=actor, action="warn", target_type="report", target_id=str(report_id),
                               detail={"reason": message})
            ban, _ = await self._maybe_ban(tx, report.reported, now, report_id)
            report = await self._report_or_404(tx, report_id)
        self._count("warn")
        self.metrics.strikes.inc()
        await self.notify("warn", Warned(identity=report.reported, reason=message, report_id=report_id))
        await self._after_ban(ban)
        return ActionResult(report=report, ban=ban)

    async def ban(self, report_id: int, *, actor: str, duration_s: object, scope: object = "device",
                  reason: object = None, now: float | None = None) -> ActionResult:
        """Ban the reported person for ``duration_s``: their device, and their address when ``scope`` is
        ``device+address`` (unless the address is exempt). Closes their other open reports."""
        now, actor, note = self._begin_action(now, actor, reason)
        duration = parse_duration(duration_s)
        if scope not in BAN_SCOPES:
            raise ActionError("bad_request", f"scope must be one of {', '.join(BAN_SCOPES)}")
        async with self.store.begin() as tx:
            report = await self._report_or_404(tx, report_id)
            address = report.reported.address_hash if scope == "device+address" else None
            ban = await tx.add_ban(device=report.reported.device, address_hash=address,
                                   reason=note or report.reason, now=now, until=now + duration, by=actor,
                                   report_id=report_id)
            await tx.set_report_status(report_id, "banned", actor, now)
            others = [i for i in await tx.resolve_open_reports(report.reported.device, "banned", actor, now)
                      if i != report_id]
            await tx.add_audit(now=now, actor=actor, action="ban", target_type="report", target_id=str(report_id),
                               detail={"ban_id": ban.id, "duration_s": duration, "scope": ban.scope,
                                       "requested_scope": scope, "reason": ban.reason, "also_resolved": others})
            report = await self._report_or_404(tx, report_id)
        self._count("ban")
        await self._after_ban(ban)
        return ActionResult(report=report, ban=ban, also_resolved=others)

    async def unban(self, ban_id: int, *, actor: str, now: float | None = None) -> Ban:
        now, actor, _ = self._begin_action(now, actor, None)
        async with self.store.begin() as tx:
            ban = await tx.get_ban(ban_id)
            if ban is None:
                raise ActionError("not_found", "no such ban", 404)
            if not await tx.lift_ban(ban_id, actor, now):
                raise ActionError("already_lifted", "this ban was already lifted", 409)
            await tx.add_audit(now=now, actor=actor, action="unban", target_type="ban", target_id=str(ban_id),
                               detail={"device": ban.device, "was_until": ban.until})
            lifted = await tx.get_ban(ban_id)
        assert lifted is not None
        self._count("unban")
        await self.refresh_metrics(now)
        await self.notify("unban", lifted)
        return lifted

    def _begin_action(self, now: float | None, actor: str, reason: object) -> tuple[float, str, str | None]:
        actor = clean_text(actor, "moderator", MAX_ACTOR) or "moderator"
        return (self.clock() if now is None else now), actor, clean_text(reason, "reason", MAX_REASON)

    async def _report_or_404(self, tx: Queries, report_id: int) -> Report:
        report = await tx.get_report(report_id)
        if report is None:
            raise ActionError("not_found", "no such report", 404)
        return report

    def _count(self, action: str) -> None:
        self.metrics.actions.labels(action=action).inc()

    # -- what moderators see -------------------------------------------------------------------
    async def list_reports(self, *, status: str | None = "open", source: str | None = None, limit: int = 50,
                           before_id: int | None = None) -> list[Report]:
        if status is not None and status not in REPORT_STATUSES:
            raise ActionError("bad_request", f"status must be one of {', '.join(REPORT_STATUSES)} or all")
        if source is not None and source not in REPORT_SOURCES:
            raise ActionError("bad_request", f"source must be one of {', '.join(REPORT_SOURCES)}")
        async with self.store.read() as q:
            return await q.list_reports(status=status, source=source, limit=limit, before_id=before_id)

    async def evidence_for_reports(self, report_ids: Sequence[int]) -> dict[int, list[Evidence]]:
        async with self.store.read() as q:
            return await q.evidence_for_reports(report_ids)

    async def report_detail(self, report_id: int, now: float | None = None) -> ReportDetail | None:
        now = self.clock() if now is None else now
        async with self.store.read() as q:
            report = await q.get_report(report_id)
            if report is None:
                return None
            return ReportDetail(
                report=report,
                evidence=await q.evidence_for(report_id),
                history=await q.history(report.reported.device),
                bans=await q.list_bans(now=now, active_only=False, device=report.reported.device, limit=20),
            )

    async def evidence_image(self, evidence_id: int) -> tuple[Evidence, bytes] | None:
        """The picture and its metadata; ``None`` if unknown or already purged."""
        async with self.store.read() as q:
            item = await q.get_evidence(evidence_id)
        if item is None:
            return None
        data = await asyncio.to_thread(self.files.read, item.path)
        if data is None:
            log.warning("evidence %d: file missing", evidence_id)
            return None
        return item, data

    async def list_bans(self, *, active_only: bool = True, limit: int = 100, before_id: int | None = None,
                        now: float | None = None) -> list[Ban]:
        now = self.clock() if now is None else now
        async with self.store.read() as q:
            return await q.list_bans(now=now, active_only=active_only, limit=limit, before_id=before_id)

    async def list_audit(self, *, limit: int = 100, before_id: int | None = None) -> list[AuditEntry]:
        async with self.store.read() as q:
            return await q.list_audit(limit=limit, before_id=before_id)
