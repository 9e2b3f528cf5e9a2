"""Reports, evidence metadata, bans, strikes and the audit log in SQLite or PostgreSQL; pictures on disk."""

from .engine import database_url_problem, normalise_url, sqlite_url
from .files import EvidenceFiles
from .migrations import LATEST as SCHEMA_VERSION
from .migrations import SchemaTooNew, current_version, migrate
from .store import ModerationStore, Queries

__all__ = [
    "SCHEMA_VERSION",
    "EvidenceFiles",
    "ModerationStore",
    "Queries",
    "SchemaTooNew",
    "current_version",
    "database_url_problem",
    "migrate",
    "normalise_url",
    "sqlite_url",
]
