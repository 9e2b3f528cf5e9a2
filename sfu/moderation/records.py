"""Plain values for reports, evidence, bans, strikes and audit entries (what storage returns).

Times are wall-clock seconds since the epoch (``time.time()``): they outlive restarts and are shown to
moderators and banned people as ISO 8601.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from .identity import ModerationIdentity

#: Report states. ``open`` waits for a moderator; the others name the moderator's decision.
REPORT_STATUSES = ("open", "dismissed", "warned", "banned")
#: ``manual``: a person reported someone; ``automatic``: the classifier flagged a picture.
REPORT_SOURCES = ("manual", "automatic")
BAN_SCOPES = ("device", "device+address")


def iso(ts: float | None) -> str | None:
    """ISO 8601 in UTC with a ``Z`` (``None`` stays ``None``)."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, tz=UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class EvidenceImage:
    """One picture handed in with a report: JPEG bytes and when the server decoded it."""

    jpeg: bytes
    captured_at: float
    width: int
    height: int


@dataclass(frozen=True)
class Evidence:
    id: int
    report_id: int
    path: str
    captured_at: float
    width: int
    height: int
    size: int

    def to_json(self, url: str) -> dict:
        return {"id": self.id, "url": url, "captured_at": iso(self.captured_at), "width": self.width,
                "height": self.height, "bytes": self.size}


@dataclass(frozen=True)
class Report:
    id: int
    created_at: float
    reporter: ModerationIdentity | None
    reported: ModerationIdentity
    reason: str
    note: str | None
    status: str
    source: str
    labels: dict[str, float] = field(default_factory=dict)
    resolved_at: float | None = None
    resolved_by: str | None = None
    evidence_count: int = 0

    def to_json(self) -> dict:
        return {
            "id": self.id,
            "created_at": iso(self.created_at),
            "reason": self.reason,
            "note": self.note,
            "status": self.status,
            "source": self.source,
            "labels": self.labels,
            "reporter": _identity_json(self.reporter),
            "reported": _identity_json(self.reported),
            "resolved_at": iso(self.resolved_at),
            "resolved_by": self.resolved_by,
            "evidence_count": self.evidence_count,
        }


@dataclass(frozen=True)
class Ban:
    id: int
    device: str
    address_hash: str | None
    reason: str
    created_at: float
    until: float
    created_by: str
    report_id: int | None = None
    lifted_at: float | None = None
    lifted_by: str | None = None

    @property
    def scope(self) -> str:
        return "device+address" if self.address_hash else "device"

    def active(self, now: float) -> bool:
        return self.lifted_at is None and self.until > now

    def to_json(self, now: float | None = None) -> dict:
        out: dict[str, Any] = {
            "id": self.id,
            "device": self.device,
            "address_hash": self.address_hash,
            "scope": self.scope,
            "reason": self.reason,
            "created_at": iso(self.created_at),
            "until": iso(self.until),
            "created_by": self.created_by,
            "report_id": self.report_id,
            "lifted_at": iso(self.lifted_at),
            "lifted_by": self.lifted_by,
        }
        if now is not None:
            out["active"] = self.active(now)
        return out

    def client_error(self) -> dict:
        """What a banned person is told (no ids, no hashes)."""
        return {"type": "error", "code": "banned", "until": iso(self.until), "reason": self.reason}


@dataclass(frozen=True)
class Strike:
    id: int
    device: str
    address_hash: str | None
    created_at: float
    reason: str
    report_id: int | None = None


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: float
    actor: str
    action: str
    target_type: str
    target_id: str | None
    detail: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict:
        return {"id": self.id, "at": iso(self.at), "actor": self.actor, "action": self.action,
                "target_type": self.target_type, "target_id": self.target_id, "detail": self.detail}


def _identity_json(identity: ModerationIdentity | None) -> dict | None:
    if identity is None:
        return None
    return {"device": identity.device, "address_hash": identity.address_hash}
