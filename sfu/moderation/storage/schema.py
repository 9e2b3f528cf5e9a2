"""The tables as the current schema version has them (queries use these).

Changing a table here needs a new step in :mod:`.migrations` that brings existing databases to it.
"""

from __future__ import annotations

from sqlalchemy import (
    Column,
    Double,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData()

#: Length of identity columns (device ids and address hashes are 22-24 characters).
ID_LEN = 64
ACTOR_LEN = 128

reports = Table(
    "mod_reports",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("created_at", Double, nullable=False),
    Column("reporter_device", String(ID_LEN)),
    Column("reporter_address", String(ID_LEN)),
    Column("reported_device", String(ID_LEN), nullable=False),
    Column("reported_address", String(ID_LEN)),
    Column("reason", String(32), nullable=False),
    Column("note", Text),
    Column("status", String(16), nullable=False),
    Column("source", String(16), nullable=False),
    Column("labels", Text),
    Column("resolved_at", Double),
    Column("resolved_by", String(ACTOR_LEN)),
)

evidence = Table(
    "mod_evidence",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("report_id", Integer, ForeignKey("mod_reports.id", ondelete="CASCADE"), nullable=False),
    Column("path", String(255), nullable=False),
    Column("captured_at", Double, nullable=False),
    Column("width", Integer, nullable=False),
    Column("height", Integer, nullable=False),
    Column("size", Integer, nullable=False),
)

bans = Table(
    "mod_bans",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("device", String(ID_LEN), nullable=False),
    Column("address_hash", String(ID_LEN)),
    Column("reason", String(500), nullable=False),
    Column("created_at", Double, nullable=False),
    Column("until", Double, nullable=False),
    Column("created_by", String(ACTOR_LEN), nullable=False),
    Column("report_id", Integer, ForeignKey("mod_reports.id", ondelete="SET NULL")),
    Column("lifted_at", Double),
    Column("lifted_by", String(ACTOR_LEN)),
)

strikes = Table(
    "mod_strikes",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("device", String(ID_LEN), nullable=False),
    Column("address_hash", String(ID_LEN)),
    Column("created_at", Double, nullable=False),
    Column("reason", String(500), nullable=False),
    Column("report_id", Integer, ForeignKey("mod_reports.id", ondelete="SET NULL")),
)

audit_log = Table(
    "mod_audit_log",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", Double, nullable=False),
    Column("actor", String(ACTOR_LEN), nullable=False),
    Column("action", String(32), nullable=False),
    Column("target_type", String(16), nullable=False),
    Column("target_id", String(ID_LEN)),
    Column("detail", Text),
)

schema_version = Table(
    "mod_schema_version",
    metadata,
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("description", String(200), nullable=False),
    Column("applied_at", Double, nullable=False),
)
