"""Moderation policy as pure logic: report checks, rate limit, dedupe, strikes and escalating bans.

Nothing here reads a clock or a database: callers pass ``now`` and the history they looked up.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass

from .settings import REPORT_REASONS, ModerationSettings

# Error codes a reporter may get (``{"type":"error","code":...}``).
BAD_REASON = "bad_reason"
NOTE_TOO_LONG = "note_too_long"
BAD_MESSAGE = "bad_message"
REPORT_RATE_LIMITED = "report_rate_limited"
#: For the server: ``report`` while neither paired nor within the window after the partner left.
NOTHING_TO_REPORT = "nothing_to_report"


class ReportRefused(Exception):
    """A report that is not accepted; ``code`` is stable, ``message`` for humans."""

    def __init__(self, code: str, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.retry_after = retry_after

    def to_json(self) -> dict:
        out: dict = {"type": "error", "code": self.code, "message": self.message}
        if self.retry_after is not None:
            out["retry_after"] = round(self.retry_after, 1)
        return out


def check_report(reason: object, note: object, max_note_length: int) -> tuple[str, str | None]:
    """The report's reason and note (stripped; empty -> ``None``), or :class:`ReportRefused`."""
    if not isinstance(reason, str) or reason not in REPORT_REASONS:
        raise ReportRefused(BAD_REASON, f"reason must be one of {', '.join(REPORT_REASONS)}")
    if note is None:
        return reason, None
    if not isinstance(note, str):
        raise ReportRefused(BAD_MESSAGE, "note must be text")
    note = "".join(ch for ch in note if ch in "\n\t" or ch.isprintable()).strip()
    if len(note) > max_note_length:
        raise ReportRefused(NOTE_TOO_LONG, f"note is longer than {max_note_length} characters")
    return reason, note or None


@dataclass(frozen=True)
class ReportLimits:
    """At most ``limit`` reports per reporter per ``window`` seconds; repeats within ``dedupe_window``
    of a report of the same person by the same reporter count once."""

    limit: int
    window: float
    dedupe_window: float

    @classmethod
    def from_settings(cls, settings: ModerationSettings) -> ReportLimits:
        return cls(settings.report_rate_limit, settings.report_rate_window, settings.report_dedupe_window)

    def retry_after(self, recent: Iterable[float], now: float) -> float | None:
        """Seconds until the reporter may report again, ``None`` if they may now."""
        in_window = sorted(t for t in recent if now - self.window < t <= now)
        if len(in_window) < self.limit:
            return None
        return max(0.0, in_window[-self.limit] + self.window - now)

    def since(self, now: float) -> float:
        return now - self.window

    def is_duplicate(self, previous: float | None, now: float) -> bool:
        """``previous``: when this reporter last reported this person (``None``: never)."""
        return previous is not None and now - previous < self.dedupe_window


@dataclass(frozen=True)
class BanDecision:
    duration: float
    #: ``strikes`` or ``reports``: what reached its limit.
    cause: str
    count: int

    def reason(self) -> str:
        if self.cause == "strikes":
            return f"automatic: {self.count} strikes"
        return f"automatic: reported by {self.count} people"


@dataclass(frozen=True)
class PriorBan:
    created_at: float
    lifted: bool


@dataclass(frozen=True)
class StrikePolicy:
    """Strikes (and reports from distinct people) within a window lead to an automatic ban whose length
    grows with the person's earlier bans. A ban uses up the strikes before it."""

    strikes_before_ban: int
    strike_window: float
    ban_durations: tuple[float, ...]
    ban_memory: float
    reports_before_ban: int = 0

    @classmethod
    def from_settings(cls, settings: ModerationSettings) -> StrikePolicy:
        return cls(
            strikes_before_ban=settings.strikes_before_ban,
            strike_window=settings.strike_window,
            ban_durations=tuple(settings.ban_durations),
            ban_memory=settings.ban_memory,
            reports_before_ban=settings.reports_before_ban,
        )

    def counting_since(self, prior_bans: Sequence[PriorBan], now: float) -> float:
        """Strikes and reports older than this no longer count (window start, or the latest ban)."""
        start = now - self.strike_window
        for ban in prior_bans:
            if ban.created_at <= now:
                start = max(start, ban.created_at)
        return start

    def ban_duration(self, prior_bans: Sequence[PriorBan], now: float) -> float:
        """The next ban's length: one step longer for every earlier ban (not lifted) in memory."""
        earlier = sum(1 for b in prior_bans if not b.lifted and now - self.ban_memory <= b.created_at <= now)
        return self.ban_durations[min(earlier, len(self.ban_durations) - 1)]

    def decide(
        self,
        *,
        strikes: Iterable[float],
        reports: Iterable[tuple[float, Hashable]],
        prior_bans: Sequence[PriorBan],
        now: float,
    ) -> BanDecision | None:
        """``strikes``: strike times; ``reports``: (time, reporter key) of manual reports against the
        person. A :class:`BanDecision` when either count is reached since :meth:`counting_since`."""
        since = self.counting_since(prior_bans, now)
        counted = sum(1 for t in strikes if since < t <= now)
        if counted >= self.strikes_before_ban:
            return BanDecision(self.ban_duration(prior_bans, now), "strikes", counted)
        if self.reports_before_ban > 0:
            reporters = {key for t, key in reports if since < t <= now}
            if len(reporters) >= self.reports_before_ban:
                return BanDecision(self.ban_duration(prior_bans, now), "reports", len(reporters))
        return None
