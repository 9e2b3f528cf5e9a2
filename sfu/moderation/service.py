"""``ModerationService``: the one moderation object the server holds.

It stores reports with the evidence the server captured, records automatic detections and strikes,
bans automatically when the policy says so, answers "is this person banned?", carries out moderator
actions (each with an audit entry, in the same transaction) and purges old evidence. Listeners let
the server act at once: ``on_ban`` (disconnect), ``on_warn`` (tell the person), ``on_unban``.
Every method that depends on time takes ``now`` (default: the injected clock).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry

from .actions import ModeratorActions, Warned
from .identity import IdentityIssuer, ModerationIdentity, load_or_create_secret
from .metrics import ModerationMetrics
from .policy import ReportLimits, ReportRefused, StrikePolicy, check_report
from .records import Ban, EvidenceImage
from .rules import Rules, load_rules
from .settings import ModerationSettings
from .storage import EvidenceFiles, ModerationStore, Queries, sqlite_url
from .storage.files import JPEG_MAGIC

log = logging.getLogger(__name__)

AUTOMATIC = "automatic"
DUPLICATE = "duplicate"
CANNOT_REPORT_SELF = "cannot_report_self"
MAX_PICTURE_SIDE = 8192

Listener = Callable[[Any], None | Awaitable[None]]


@dataclass(frozen=True)
class ReportOutcome:
    report_id: int
    #: The reporter had already reported this person recently: counted once, nothing new stored.
    duplicate: bool = False
    #: An automatic ban this report led to (enough distinct reporters), if any.
    ban: Ban | None = None


@dataclass(frozen=True)
class DetectionOutcome:
    report_id: int
    #: Strikes that count now, this one included.
    strikes: int
    ban: Ban | None = None


@dataclass(frozen=True)
class PurgeResult:
    pictures: int
    rows: int
    orphans: int


class ModerationService(ModeratorActions):
    """See the module's description; moderator actions and look-ups come from :class:`ModeratorActions`."""

    def __init__(
        self,
        settings: ModerationSettings,
        store: ModerationStore,
        files: EvidenceFiles,
        identities: IdentityIssuer,
        *,
        rules: Rules | None = None,
        registry: CollectorRegistry | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.store = store
        self.files = files
        self.identities = identities
        self.rules = rules or Rules()
        self.clock = clock
        self.metrics = ModerationMetrics(registry if registry is not None else CollectorRegistry())
        self.limits = ReportLimits.from_settings(settings)
        self.policy = StrikePolicy.from_settings(settings)
        self._listeners: dict[str, list[Listener]] = {"ban": [], "unban": [], "warn": []}
        self._housekeeping: asyncio.Task | None = None

    @classmethod
    async def open(
        cls,
        settings: ModerationSettings,
        *,
        registry: CollectorRegistry | None = None,
        clock: Callable[[], float] = time.time,
        exempt: Sequence[str] = (),
    ) -> ModerationService:
        """Read the rules, load (or create) the secret, connect and migrate the database.

        ``exempt``: addresses never banned by address besides the settings' (e.g. --ip-limits-exempt).
        Raises ``ValueError`` (bad settings, unreadable rules) or the database's error."""
        problems = settings.validate()
        if problems:
            raise ValueError("; ".join(problems))
        data = settings.data_path()
        rules = load_rules(settings.rules_file)
        secret = await asyncio.to_thread(load_or_create_secret, settings.device_secret, data)
        identities = IdentityIssuer(secret, [*settings.address_ban_exempt, *exempt])
        store = await ModerationStore.open(settings.database_url or sqlite_url(data), clock())
        service = cls(settings, store, EvidenceFiles(data / "evidence"), identities, rules=rules,
                      registry=registry, clock=clock)
        await service.refresh_metrics()
        log.info("moderation: %s database, rules version %s, evidence kept %g days", store.dialect,
                 rules.version, settings.evidence_retention_days)
        return service

    async def close(self) -> None:
        await self.stop()
        await self.store.close()

    # -- listeners ---------------------------------------------------------------------------------
    def on_ban(self, listener: Callable[[Ban], Any]) -> None:
        """Called with every new ban (moderator or automatic): disconnect whoever it covers."""
        self._listeners["ban"].append(listener)

    def on_unban(self, listener: Callable[[Ban], Any]) -> None:
        self._listeners["unban"].append(listener)

    def on_warn(self, listener: Callable[[Warned], Any]) -> None:
        self._listeners["warn"].append(listener)

    async def notify(self, kind: str, value: Any) -> None:
        for listener in list(self._listeners[kind]):
            try:
                result = listener(value)
                if inspect.isawaitable(result):
                    await result
            except Exception:  # one broken listener must not undo the action or stop the others
                log.exception("moderation %s listener failed", kind)

    # -- reports -------------------------------------------------------------------------------
    async def report(
        self,
        reporter: ModerationIdentity,
        reported: ModerationIdentity,
        reason: object,
        note: object = None,
        evidence: Sequence[EvidenceImage] = (),
        now: float | None = None,
    ) -> ReportOutcome:
        """Store a person's report of their (last) partner with the server's pictures of them.

        Raises :class:`ReportRefused` (bad reason, note too long, reporting yourself, rate limit).
        A repeat of a recent report of the same person returns that report (``duplicate``)."""
        now = self.clock() if now is None else now
        try:
            reason, note = check_report(reason, note, self.settings.max_note_length)
            if reporter.device == reported.device:
                raise ReportRefused(CANNOT_REPORT_SELF, "you cannot report yourself")
        except ReportRefused as refused:
            self.metrics.reports_refused.labels(code=refused.code).inc()
            raise
        pictures = self._usable(evidence)
        written: list[str] = []
        try:
            async with self.store.begin() as tx:
                previous = await tx.last_report_by(reporter.device, reported.device)
                if previous is not None and self.limits.is_duplicate(previous[1], now):
                    self.metrics.reports_refused.labels(code=DUPLICATE).inc()
                    return ReportOutcome(report_id=previous[0], duplicate=True)
                recent = await tx.report_times_by(reporter.device, self.limits.since(now))
                retry_after = self.limits.retry_after(recent, now)
                if retry_after is not None:
                    self.metrics.reports_refused.labels(code="report_rate_limited").inc()
                    raise ReportRefused("report_rate_limited", "too many reports; try again later", retry_after)
                report_id = await tx.add_report(now=now, reporter=reporter, reported=reported, reason=reason,
                                                note=note, source="manual")
                written = await self._store_pictures(tx, report_id, pictures)
                ban, _ = await self._maybe_ban(tx, reported, now, report_id)
        except BaseException:
            await self._forget_files(written)
            raise
        self.metrics.reports.labels(reason=reason, source="manual").inc()
        log.info("report %d stored: reason %s, %d pictures", report_id, reason, len(written))
        await self._after_ban(ban)
        return ReportOutcome(report_id=report_id, ban=ban)

    async def automatic_detection(
        self,
        identity: ModerationIdentity,
        labels: dict[str, float],
        evidence: Sequence[EvidenceImage] = (),
        reason: str = "nudity",
        now: float | None = None,
    ) -> DetectionOutcome:
        """A positive sample: an automatic report with its picture(s), a strike, maybe a ban."""
        now = self.clock() if now is None else now
        clean_labels = {str(k)[:64]: round(float(v), 4) for k, v in list(labels.items())[:32]}
        pictures = self._usable(evidence)
        written: list[str] = []
        try:
            async with self.store.begin() as tx:
                report_id = await tx.add_report(now=now, reporter=None, reported=identity, reason=reason[:32],
                                                note=None, source=AUTOMATIC, labels=clean_labels)
                written = await self._store_pictures(tx, report_id, pictures)
                await tx.add_strike(identity, f"automatic detection: {reason}"[:500], now, report_id)
                ban, strikes = await self._maybe_ban(tx, identity, now, report_id)
        except BaseException:
            await self._forget_files(written)
            raise
        self.metrics.reports.labels(reason=reason[:32], source=AUTOMATIC).inc()
        self.metrics.detections.labels(reason=reason[:32]).inc()
        self.metrics.strikes.inc()
        log.info("automatic report %d: %s, %d strikes counting", report_id, reason, strikes)
        await self._after_ban(ban)
        return DetectionOutcome(report_id=report_id, strikes=strikes, ban=ban)

    async def _maybe_ban(self, tx: Queries, identity: ModerationIdentity, now: float,
                         report_id: int | None) -> tuple[Ban | None, int]:
        """Apply the strike/report policy to ``identity``: the ban it leads to (with its audit entry), if
        any, and the number of strikes that counted."""
        prior = await tx.prior_bans(identity.device)
        since = self.policy.counting_since(prior, now)
        strikes = await tx.strike_times(identity.device, since)
        decision = self.policy.decide(
            strikes=strikes, reports=await tx.reports_against(identity.device, since), prior_bans=prior, now=now,
        )
        if decision is None:
            return None, len(strikes)
        address = identity.address_hash if self.settings.auto_ban_scope == "device+address" else None
        ban = await tx.add_ban(device=identity.device, address_hash=address, reason=decision.reason(), now=now,
                               until=now + decision.duration, by=AUTOMATIC, report_id=report_id)
        await tx.add_audit(now=now, actor=AUTOMATIC, action="ban", target_type="ban", target_id=str(ban.id),
                           detail={"report_id": report_id, "duration_s": decision.duration, "cause": decision.cause,
                                   "count": decision.count, "scope": ban.scope})
        return ban, len(strikes)

    async def _after_ban(self, ban: Ban | None) -> None:
        if ban is None:
            return
        self.metrics.bans.labels(by="automatic" if ban.created_by == AUTOMATIC else "moderator").inc()
        log.info("ban %d until %s (%s)", ban.id, ban.to_json()["until"], ban.reason)
        await self.refresh_metrics()
        await self.notify("ban", ban)

    def _usable(self, evidence: Sequence[EvidenceImage]) -> list[EvidenceImage]:
        """The most recent pictures that are JPEG, of sane size; the rest is dropped with a log line."""
        usable = []
        for picture in evidence:
            if not isinstance(picture, EvidenceImage) or not isinstance(picture.jpeg, (bytes, bytearray)):
                log.warning("evidence dropped: not an EvidenceImage")
            elif not picture.jpeg.startswith(JPEG_MAGIC) or len(picture.jpeg) > self.settings.max_evidence_bytes:
                log.warning("evidence dropped: not a JPEG or over %d bytes", self.settings.max_evidence_bytes)
            elif not (0 < picture.width <= MAX_PICTURE_SIDE and 0 < picture.height <= MAX_PICTURE_SIDE):
                log.warning("evidence dropped: picture size %sx%s", picture.width, picture.height)
            else:
                usable.append(picture)
        usable.sort(key=lambda p: p.captured_at)
        return usable[-self.settings.evidence_frames:]

    async def _store_pictures(self, tx: Queries, report_id: int, pictures: Sequence[EvidenceImage]) -> list[str]:
        written: list[str] = []
        try:
            for picture in pictures:
                path = await asyncio.to_thread(self.files.write, bytes(picture.jpeg), picture.captured_at)
                written.append(path)
                await tx.add_evidence(report_id, path, picture.captured_at, picture.width, picture.height,
                                      len(picture.jpeg))
        except BaseException:
            await self._forget_files(written)
            raise
        return written

    async def _forget_files(self, paths: Sequence[str]) -> None:
        for path in paths:
            await asyncio.to_thread(self.files.delete, path)

    # -- bans ----------------------------------------------------------------------------------
    async def is_banned(self, identity: ModerationIdentity, now: float | None = None) -> Ban | None:
        """The ban in force covering this device (or this address, for address bans), else ``None``."""
        now = self.clock() if now is None else now
        async with self.store.read() as q:
            ban = await q.active_ban(identity, now)
        if ban is not None:
            self.metrics.connections_refused.inc()
        return ban

    async def refresh_metrics(self, now: float | None = None) -> None:
        now = self.clock() if now is None else now
        async with self.store.read() as q:
            self.metrics.bans_active.set(await q.count_active_bans(now))

    # -- retention -------------------------------------------------------------------------------
    async def purge(self, now: float | None = None) -> PurgeResult:
        """Delete evidence captured more than ``evidence_retention_days`` ago (files and rows), and
        picture files no row refers to that are as old."""
        now = self.clock() if now is None else now
        cutoff = now - self.settings.evidence_retention_days * 86400
        pictures = rows = 0
        while True:
            async with self.store.begin() as tx:
                old = await tx.evidence_before(cutoff)
                if not old:
                    break
                for item in old:
                    pictures += await asyncio.to_thread(self.files.delete, item.path)
                rows += await tx.delete_evidence([item.id for item in old])
        async with self.store.read() as q:
            keep = await q.evidence_paths()
        orphans = await asyncio.to_thread(self.files.delete_orphans, cutoff, keep)
        if rows or orphans:
            async with self.store.begin() as tx:
                await tx.add_audit(now=now, actor="retention", action="purge", target_type="evidence",
                                   target_id=None, detail={"rows": rows, "files": pictures, "orphans": orphans})
            self.metrics.evidence_purged.inc(pictures + orphans)
            log.info("retention: %d evidence pictures deleted (%d rows, %d stray files)", pictures + orphans, rows,
                     orphans)
        return PurgeResult(pictures=pictures, rows=rows, orphans=orphans)

    async def housekeeping(self, now: float | None = None) -> PurgeResult:
        result = await self.purge(now)
        await self.refresh_metrics(now)
        return result

    def start(self, interval: float = 600.0) -> None:
        """Purge and refresh the ban gauge every ``interval`` seconds until :meth:`stop`."""
        if self._housekeeping is None:
            self._housekeeping = asyncio.create_task(self._housekeeping_loop(interval), name="moderation-housekeeping")

    async def stop(self) -> None:
        task, self._housekeeping = self._housekeeping, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _housekeeping_loop(self, interval: float) -> None:
        while True:
            try:
                await self.housekeeping()
            except Exception:  # the database may be briefly unreachable: try again next time
                log.exception("moderation housekeeping failed")
            await asyncio.sleep(interval)

