"""Whom each person may report: their partner, or their last partner for a while after they parted.

Pure logic: the caller passes ``now`` (any monotonic clock) and says when people pair and part. The
partner's moderation identity is kept from the moment they paired, so someone who disconnects to
escape a report can still be reported within the window.
"""

from __future__ import annotations

from dataclasses import dataclass

from .identity import ModerationIdentity


@dataclass
class Partner:
    """Someone's current or last partner."""

    session: str
    identity: ModerationIdentity
    #: When they parted (``None``: still paired).
    parted_at: float | None = None


class RecentPartners:
    """Each person's current or last partner; reportable while paired and ``window`` seconds after."""

    def __init__(self, window: float) -> None:
        self.window = window
        self._last: dict[str, Partner] = {}

    def __len__(self) -> int:
        return len(self._last)

    def paired(self, a: str, a_identity: ModerationIdentity, b: str, b_identity: ModerationIdentity) -> None:
        self._last[a] = Partner(b, b_identity)
        self._last[b] = Partner(a, a_identity)

    def parted(self, who: str, now: float) -> None:
        """``who`` is no longer with their partner (Next, Stop, the partner left)."""
        partner = self._last.get(who)
        if partner is not None and partner.parted_at is None:
            partner.parted_at = now

    def reportable(self, who: str, now: float) -> Partner | None:
        """The partner ``who`` may report at ``now``, if any."""
        partner = self._last.get(who)
        if partner is None:
            return None
        if partner.parted_at is not None and now - partner.parted_at > self.window:
            return None
        return partner

    def current(self, who: str) -> Partner | None:
        """The partner ``who`` is still paired with, if any."""
        partner = self._last.get(who)
        return partner if partner is not None and partner.parted_at is None else None

    def forget(self, who: str) -> None:
        """``who`` left the server: they report nobody any more (others may still report them)."""
        self._last.pop(who, None)
