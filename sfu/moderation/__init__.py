"""Safety and moderation: rules, device identities, reports with server-captured evidence, strikes,
bans, the moderator console and its API.

The server holds one :class:`ModerationService` (``await ModerationService.open(settings, ...)``) and
mounts the console with :func:`sfu.moderation.api.setup_moderation_routes`.
"""

from .actions import ActionError, ActionResult, ReportDetail, Warned
from .identity import (
    DEVICE_COOKIE,
    DeviceToken,
    IdentityIssuer,
    ModerationIdentity,
    device_cookie_attributes,
)
from .policy import NOTHING_TO_REPORT, ReportRefused
from .records import AuditEntry, Ban, Evidence, EvidenceImage, Report, iso
from .rules import Rules, RulesError, load_rules
from .service import DetectionOutcome, ModerationService, PurgeResult, ReportOutcome
from .settings import REPORT_REASONS, ModerationSettings

__all__ = [
    "DEVICE_COOKIE",
    "NOTHING_TO_REPORT",
    "REPORT_REASONS",
    "ActionError",
    "ActionResult",
    "AuditEntry",
    "Ban",
    "DetectionOutcome",
    "DeviceToken",
    "Evidence",
    "EvidenceImage",
    "IdentityIssuer",
    "ModerationIdentity",
    "ModerationService",
    "ModerationSettings",
    "PurgeResult",
    "Report",
    "ReportDetail",
    "ReportOutcome",
    "ReportRefused",
    "Rules",
    "RulesError",
    "Warned",
    "device_cookie_attributes",
    "iso",
    "load_rules",
]
