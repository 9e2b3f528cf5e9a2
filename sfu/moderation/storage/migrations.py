"""Versioned schema migrations: ordered steps, each applied once and recorded in ``mod_schema_version``.

Every step is frozen: it builds exactly the tables or indexes of its version, whatever
:mod:`.schema` says today. All pending steps run in one transaction (DDL is transactional on both
SQLite and PostgreSQL); on PostgreSQL an advisory lock keeps nodes starting together from racing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import (
    Column,
    Connection,
    Double,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    func,
    insert,
    select,
    text,
)
from sqlalchemy.ext.asyncio import AsyncEngine

from .schema import schema_version

log = logging.getLogger(__name__)

#: Key of the PostgreSQL advisory lock held while migrating ("sfu-mod" in ASCII).
_LOCK_KEY = 0x7366752D6D6F64


class SchemaTooNew(RuntimeError):
    """The database was migrated by a newer version of this program."""


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    apply: Callable[[Connection], None]


def _v1_tables(conn: Connection) -> None:
    md = MetaData()
    Table(
        "mod_reports", md,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("created_at", Double, nullable=False),
        Column("reporter_device", String(64)),
        Column("reporter_address", String(64)),
        Column("reported_device", String(64), nullable=False),
        Column("reported_address", String(64)),
        Column("reason", String(32), nullable=False),
        Column("note", Text),
        Column("status", String(16), nullable=False),
        Column("source", String(16), nullable=False),
        Column("labels", Text),
        Column("resolved_at", Double),
        Column("resolved_by", String(128)),
    )
    Table(
        "mod_evidence", md,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("report_id", Integer, ForeignKey("mod_reports.id", ondelete="CASCADE"), nullable=False),
        Column("path", String(255), nullable=False),
        Column("captured_at", Double, nullable=False),
        Column("width", Integer, nullable=False),
        Column("height", Integer, nullable=False),
        Column("size", Integer, nullable=False),
    )
    Table(
        "mod_bans", md,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("device", String(64), nullable=False),
        Column("address_hash", String(64)),
        Column("reason", String(500), nullable=False),
        Column("created_at", Double, nullable=False),
        Column("until", Double, nullable=False),
        Column("created_by", String(128), nullable=False),
        Column("report_id", Integer, ForeignKey("mod_reports.id", ondelete="SET NULL")),
        Column("lifted_at", Double),
        Column("lifted_by", String(128)),
    )
    Table(
        "mod_strikes", md,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("device", String(64), nullable=False),
        Column("address_hash", String(64)),
        Column("created_at", Double, nullable=False),
        Column("reason", String(500), nullable=False),
        Column("report_id", Integer, ForeignKey("mod_reports.id", ondelete="SET NULL")),
    )
    Table(
        "mod_audit_log", md,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("at", Double, nullable=False),
        Column("actor", String(128), nullable=False),
        Column("action", String(32), nullable=False),
        Column("target_type", String(16), nullable=False),
        Column("target_id", String(64)),
        Column("detail", Text),
    )
    md.create_all(conn)


def _v2_indexes(conn: Connection) -> None:
    md = MetaData()
    md.reflect(conn, only=["mod_reports", "mod_evidence", "mod_bans", "mod_strikes", "mod_audit_log"])
    t = md.tables
    for index in (
        Index("ix_mod_reports_status", t["mod_reports"].c.status, t["mod_reports"].c.id),
        Index("ix_mod_reports_reported", t["mod_reports"].c.reported_device, t["mod_reports"].c.created_at),
        Index("ix_mod_reports_reporter", t["mod_reports"].c.reporter_device, t["mod_reports"].c.created_at),
        Index("ix_mod_evidence_report", t["mod_evidence"].c.report_id),
        Index("ix_mod_evidence_captured", t["mod_evidence"].c.captured_at),
        Index("ix_mod_bans_device", t["mod_bans"].c.device, t["mod_bans"].c.until),
        Index("ix_mod_bans_address", t["mod_bans"].c.address_hash, t["mod_bans"].c.until),
        Index("ix_mod_strikes_device", t["mod_strikes"].c.device, t["mod_strikes"].c.created_at),
        Index("ix_mod_audit_at", t["mod_audit_log"].c.at),
    ):
        index.create(conn)


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "reports, evidence, bans, strikes, audit log", _v1_tables),
    Migration(2, "indexes for the queue, ban look-ups, strikes and retention", _v2_indexes),
)
LATEST = MIGRATIONS[-1].version


async def current_version(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        exists = await conn.run_sync(lambda c: c.dialect.has_table(c, schema_version.name))
        if not exists:
            return 0
        return int((await conn.execute(select(func.max(schema_version.c.version)))).scalar() or 0)


async def migrate(engine: AsyncEngine, now: float, target: int | None = None) -> list[int]:
    """Apply every pending step up to ``target`` (default: all); returns the versions applied."""
    target = LATEST if target is None else target
    applied: list[int] = []
    async with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK_KEY})
        await conn.run_sync(lambda c: schema_version.create(c, checkfirst=True))
        current = int((await conn.execute(select(func.max(schema_version.c.version)))).scalar() or 0)
        if current > LATEST:
            raise SchemaTooNew(
                f"the moderation database is at schema version {current}; this program knows up to {LATEST}"
            )
        for step in MIGRATIONS:
            if current < step.version <= target:
                await conn.run_sync(step.apply)
                await conn.execute(
                    insert(schema_version).values(version=step.version, description=step.description, applied_at=now)
                )
                applied.append(step.version)
    for version in applied:
        log.info("moderation database migrated to schema version %d", version)
    return applied
