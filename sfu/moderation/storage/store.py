"""Queries on the moderation tables: one code path for SQLite and PostgreSQL.

``async with store.begin() as tx`` runs several writes in one transaction (a moderator action, its
ban and its audit entry commit together); ``async with store.read() as q`` reads.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import and_, delete, func, insert, or_, select, true, update
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ..identity import ModerationIdentity
from ..policy import PriorBan
from ..records import AuditEntry, Ban, Evidence, Report
from . import migrations
from .engine import READ_ONLY, create_engine
from .schema import audit_log, bans, evidence, reports, strikes

_MAX_PAGE = 500


class ModerationStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    @classmethod
    async def open(cls, url: str, now: float) -> ModerationStore:
        """Connect and bring the schema up to date (idempotent)."""
        store = cls(create_engine(url))
        try:
            await migrations.migrate(store.engine, now)
        except BaseException:
            await store.engine.dispose()
            raise
        return store

    async def close(self) -> None:
        await self.engine.dispose()

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @asynccontextmanager
    async def begin(self) -> AsyncIterator[Queries]:
        async with self.engine.begin() as conn:
            yield Queries(conn)

    @asynccontextmanager
    async def read(self) -> AsyncIterator[Queries]:
        async with self.engine.connect() as conn:
            await conn.execution_options(**{READ_ONLY: True})
            yield Queries(conn)


class Queries:
    """Every query, on one connection (inside the caller's transaction)."""

    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn

    # -- reports and evidence ------------------------------------------------------------------
    async def add_report(
        self,
        *,
        now: float,
        reporter: ModerationIdentity | None,
        reported: ModerationIdentity,
        reason: str,
        note: str | None,
        source: str,
        labels: dict[str, float] | None = None,
    ) -> int:
        result = await self.conn.execute(
            insert(reports).values(
                created_at=now,
                reporter_device=reporter.device if reporter else None,
                reporter_address=reporter.address_hash if reporter else None,
                reported_device=reported.device,
                reported_address=reported.address_hash,
                reason=reason,
                note=note,
                status="open",
                source=source,
                labels=json.dumps(labels, sort_keys=True) if labels else None,
            ).returning(reports.c.id)
        )
        return int(result.scalar_one())

    async def add_evidence(self, report_id: int, path: str, captured_at: float, width: int, height: int,
                           size: int) -> int:
        result = await self.conn.execute(
            insert(evidence).values(report_id=report_id, path=path, captured_at=captured_at, width=width,
                                    height=height, size=size).returning(evidence.c.id)
        )
        return int(result.scalar_one())

    async def get_report(self, report_id: int) -> Report | None:
        rows = await self._reports(reports.c.id == report_id, limit=1)
        return rows[0] if rows else None

    async def list_reports(self, *, status: str | None = None, source: str | None = None,
                           reported_device: str | None = None, limit: int = 50,
                           before_id: int | None = None) -> list[Report]:
        conditions = []
        if status is not None:
            conditions.append(reports.c.status == status)
        if source is not None:
            conditions.append(reports.c.source == source)
        if reported_device is not None:
            conditions.append(reports.c.reported_device == reported_device)
        if before_id is not None:
            conditions.append(reports.c.id < before_id)
        return await self._reports(and_(true(), *conditions), limit=limit)

    async def _reports(self, where: Any, limit: int) -> list[Report]:
        counts = (
            select(evidence.c.report_id, func.count().label("n")).group_by(evidence.c.report_id).subquery()
        )
        query = (
            select(reports, func.coalesce(counts.c.n, 0).label("evidence_count"))
            .select_from(reports.outerjoin(counts, counts.c.report_id == reports.c.id))
            .where(where)
            .order_by(reports.c.id.desc())
            .limit(max(1, min(limit, _MAX_PAGE)))
        )
        return [_report(row) for row in (await self.conn.execute(query)).all()]

    async def set_report_status(self, report_id: int, status: str, by: str, now: float) -> bool:
        result = await self.conn.execute(
            update(reports).where(reports.c.id == report_id).values(status=status, resolved_at=now, resolved_by=by)
        )
        return bool(result.rowcount)

    async def resolve_open_reports(self, reported_device: str, status: str, by: str, now: float) -> list[int]:
        """Close every open report against a device (e.g. once it is banned); their ids."""
        ids = list((await self.conn.execute(
            select(reports.c.id).where(reports.c.reported_device == reported_device, reports.c.status == "open")
        )).scalars())
        if ids:
            await self.conn.execute(
                update(reports).where(reports.c.id.in_(ids)).values(status=status, resolved_at=now, resolved_by=by)
            )
        return [int(i) for i in ids]

    async def evidence_for(self, report_id: int) -> list[Evidence]:
        rows = await self.conn.execute(
            select(evidence).where(evidence.c.report_id == report_id).order_by(evidence.c.captured_at, evidence.c.id)
        )
        return [_evidence(row) for row in rows.all()]

    async def evidence_for_reports(self, report_ids: Sequence[int]) -> dict[int, list[Evidence]]:
        out: dict[int, list[Evidence]] = {int(i): [] for i in report_ids}
        if out:
            rows = await self.conn.execute(
                select(evidence).where(evidence.c.report_id.in_(list(out)))
                .order_by(evidence.c.captured_at, evidence.c.id)
            )
            for row in rows.all():
                item = _evidence(row)
                out[item.report_id].append(item)
        return out

    async def get_evidence(self, evidence_id: int) -> Evidence | None:
        row = (await self.conn.execute(select(evidence).where(evidence.c.id == evidence_id))).first()
        return _evidence(row) if row else None

    async def last_report_by(self, reporter_device: str, reported_device: str) -> tuple[int, float] | None:
        """The latest manual report of ``reported_device`` by ``reporter_device``: (id, time)."""
        row = (await self.conn.execute(
            select(reports.c.id, reports.c.created_at)
            .where(reports.c.reporter_device == reporter_device, reports.c.reported_device == reported_device)
            .order_by(reports.c.created_at.desc()).limit(1)
        )).first()
        return (int(row.id), float(row.created_at)) if row else None

    async def report_times_by(self, reporter_device: str, since: float) -> list[float]:
        rows = await self.conn.execute(
            select(reports.c.created_at).where(reports.c.reporter_device == reporter_device,
                                               reports.c.created_at > since)
        )
        return [float(t) for t in rows.scalars()]

    async def reports_against(self, reported_device: str, since: float) -> list[tuple[float, str]]:
        """(time, reporter key) of manual reports against a device; the key is the reporter's address
        hash when known (one person with several devices counts once), else their device."""
        rows = await self.conn.execute(
            select(reports.c.created_at, reports.c.reporter_device, reports.c.reporter_address).where(
                reports.c.reported_device == reported_device, reports.c.source == "manual",
                reports.c.created_at > since,
            )
        )
        return [(float(r.created_at), r.reporter_address or f"device:{r.reporter_device}") for r in rows.all()]

    async def evidence_before(self, cutoff: float, limit: int = 1000) -> list[Evidence]:
        rows = await self.conn.execute(
            select(evidence).where(evidence.c.captured_at < cutoff).order_by(evidence.c.id).limit(limit)
        )
        return [_evidence(row) for row in rows.all()]

    async def delete_evidence(self, ids: Sequence[int]) -> int:
        if not ids:
            return 0
        result = await self.conn.execute(delete(evidence).where(evidence.c.id.in_(list(ids))))
        return int(result.rowcount or 0)

    async def evidence_paths(self) -> set[str]:
        return set((await self.conn.execute(select(evidence.c.path))).scalars())

    # -- bans --------------------------------------------------------------------------------------
    async def add_ban(self, *, device: str, address_hash: str | None, reason: str, now: float, until: float,
                      by: str, report_id: int | None) -> Ban:
        result = await self.conn.execute(
            insert(bans).values(device=device, address_hash=address_hash, reason=reason, created_at=now, until=until,
                                created_by=by, report_id=report_id).returning(bans.c.id)
        )
        return Ban(id=int(result.scalar_one()), device=device, address_hash=address_hash, reason=reason,
                   created_at=now, until=until, created_by=by, report_id=report_id)

    async def get_ban(self, ban_id: int) -> Ban | None:
        row = (await self.conn.execute(select(bans).where(bans.c.id == ban_id))).first()
        return _ban(row) if row else None

    async def lift_ban(self, ban_id: int, by: str, now: float) -> bool:
        result = await self.conn.execute(
            update(bans).where(bans.c.id == ban_id, bans.c.lifted_at.is_(None)).values(lifted_at=now, lifted_by=by)
        )
        return bool(result.rowcount)

    async def active_ban(self, identity: ModerationIdentity, now: float) -> Ban | None:
        """The active ban that lasts longest covering the device, or the address when banned by address."""
        match = bans.c.device == identity.device
        if identity.address_hash:
            match = or_(match, bans.c.address_hash == identity.address_hash)
        row = (await self.conn.execute(
            select(bans).where(match, bans.c.lifted_at.is_(None), bans.c.until > now)
            .order_by(bans.c.until.desc()).limit(1)
        )).first()
        return _ban(row) if row else None

    async def list_bans(self, *, now: float, active_only: bool = True, device: str | None = None,
                        limit: int = 100, before_id: int | None = None) -> list[Ban]:
        conditions: list[Any] = []
        if active_only:
            conditions += [bans.c.lifted_at.is_(None), bans.c.until > now]
        if device is not None:
            conditions.append(bans.c.device == device)
        if before_id is not None:
            conditions.append(bans.c.id < before_id)
        rows = await self.conn.execute(
            select(bans).where(and_(true(), *conditions)).order_by(bans.c.id.desc()).limit(max(1, min(limit, _MAX_PAGE)))
        )
        return [_ban(row) for row in rows.all()]

    async def count_active_bans(self, now: float) -> int:
        return int((await self.conn.execute(
            select(func.count()).select_from(bans).where(bans.c.lifted_at.is_(None), bans.c.until > now)
        )).scalar_one())

    async def prior_bans(self, device: str) -> list[PriorBan]:
        rows = await self.conn.execute(select(bans.c.created_at, bans.c.lifted_at).where(bans.c.device == device))
        return [PriorBan(created_at=float(r.created_at), lifted=r.lifted_at is not None) for r in rows.all()]

    # -- strikes -------------------------------------------------------------------------------
    async def add_strike(self, identity: ModerationIdentity, reason: str, now: float,
                         report_id: int | None) -> int:
        result = await self.conn.execute(
            insert(strikes).values(device=identity.device, address_hash=identity.address_hash, created_at=now,
                                   reason=reason, report_id=report_id).returning(strikes.c.id)
        )
        return int(result.scalar_one())

    async def strike_times(self, device: str, since: float) -> list[float]:
        rows = await self.conn.execute(
            select(strikes.c.created_at).where(strikes.c.device == device, strikes.c.created_at > since)
        )
        return [float(t) for t in rows.scalars()]

    async def history(self, device: str) -> dict[str, int]:
        """How often a device was reported, struck and banned (for the moderator)."""
        out = {}
        for name, table in (("reports", reports), ("strikes", strikes), ("bans", bans)):
            column = table.c.reported_device if table is reports else table.c.device
            out[name] = int((await self.conn.execute(
                select(func.count()).select_from(table).where(column == device)
            )).scalar_one())
        return out

    # -- audit log -----------------------------------------------------------------------------
    async def add_audit(self, *, now: float, actor: str, action: str, target_type: str,
                        target_id: str | None, detail: dict[str, Any] | None = None) -> int:
        result = await self.conn.execute(
            insert(audit_log).values(at=now, actor=actor, action=action, target_type=target_type,
                                     target_id=target_id, detail=json.dumps(detail or {}, sort_keys=True))
            .returning(audit_log.c.id)
        )
        return int(result.scalar_one())

    async def list_audit(self, *, limit: int = 100, before_id: int | None = None) -> list[AuditEntry]:
        query = select(audit_log).order_by(audit_log.c.id.desc()).limit(max(1, min(limit, _MAX_PAGE)))
        if before_id is not None:
            query = query.where(audit_log.c.id < before_id)
        return [
            AuditEntry(id=int(r.id), at=float(r.at), actor=r.actor, action=r.action, target_type=r.target_type,
                       target_id=r.target_id, detail=json.loads(r.detail or "{}"))
            for r in (await self.conn.execute(query)).all()
        ]


def _report(row: Row) -> Report:
    m = row._mapping
    reporter = (
        ModerationIdentity(m["reporter_device"], m["reporter_address"]) if m["reporter_device"] is not None else None
    )
    return Report(
        id=int(m["id"]),
        created_at=float(m["created_at"]),
        reporter=reporter,
        reported=ModerationIdentity(m["reported_device"], m["reported_address"]),
        reason=m["reason"],
        note=m["note"],
        status=m["status"],
        source=m["source"],
        labels=json.loads(m["labels"]) if m["labels"] else {},
        resolved_at=m["resolved_at"],
        resolved_by=m["resolved_by"],
        evidence_count=int(m["evidence_count"]),
    )


def _evidence(row: Row) -> Evidence:
    m = row._mapping
    return Evidence(id=int(m["id"]), report_id=int(m["report_id"]), path=m["path"], captured_at=float(m["captured_at"]),
                    width=int(m["width"]), height=int(m["height"]), size=int(m["size"]))


def _ban(row: Row) -> Ban:
    m = row._mapping
    return Ban(id=int(m["id"]), device=m["device"], address_hash=m["address_hash"], reason=m["reason"],
               created_at=float(m["created_at"]), until=float(m["until"]), created_by=m["created_by"],
               report_id=m["report_id"], lifted_at=m["lifted_at"], lifted_by=m["lifted_by"])
