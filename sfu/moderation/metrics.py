"""Prometheus metrics of moderation, created on the registry the server passes in (no globals)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge


class ModerationMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        r = registry
        self.reports = Counter(
            "sfu_moderation_reports", "Reports stored, by reason and source (manual or automatic)",
            ["reason", "source"], registry=r,
        )
        self.reports_refused = Counter(
            "sfu_moderation_reports_refused", "Reports refused or counted once, by code", ["code"], registry=r,
        )
        self.detections = Counter(
            "sfu_moderation_detections", "Pictures the classifier flagged, by reason", ["reason"], registry=r,
        )
        self.strikes = Counter("sfu_moderation_strikes", "Strikes recorded", registry=r)
        self.bans = Counter(
            "sfu_moderation_bans", "Bans made, by who made them (moderator or automatic)", ["by"], registry=r,
        )
        self.bans_active = Gauge("sfu_moderation_bans_active", "Bans in force", registry=r)
        self.actions = Counter(
            "sfu_moderation_moderator_actions", "Moderator actions, by action", ["action"], registry=r,
        )
        self.evidence_purged = Counter(
            "sfu_moderation_evidence_purged", "Evidence pictures deleted by the retention purge", registry=r,
        )
        self.connections_refused = Counter(
            "sfu_moderation_banned_refused", "Connections refused because of a ban", registry=r,
        )
