"""Whom each person may report: their partner, or their last partner for a while after they parted.

Pure logic: the caller passes ``now`` (any monotonic clock) and says when people pair and part. The
partner's moderation identity is kept from the moment they paired, so someone who disconnects to
escape a report can still be reported within the window. A partner served by another process is
known first by their id alone (:meth:`RecentPartners.met`); their identity, and which process serves
them, follow a moment later (:meth:`RecentPartners.identify`).
"""

from __future__ import annotations

from dataclasses import dataclass

from .identity import ModerationIdentity


@dataclass
class Partner:
    """Someone's current or last partner."""

    session: str
    #: ``None``: served elsewhere, identity not heard of yet.
    identity: ModerationIdentity | None
    #: When they parted (``None``: still paired).
    parted_at: float | None = None
    #: The process serving them when it is another one (``None``: this one, or not heard of yet).
    served_by: str | None = None


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

    def met(self, who: str, partner: str) -> None:
        """``who`` is paired with ``partner``, served by another process (identity to follow)."""
        self._last[who] = Partner(partner, None)

    def identify(self, who: str, partner: str, identity: ModerationIdentity, served_by: str) -> bool:
        """``who``'s current or last partner ``partner`` is ``identity``, served by ``served_by``;
        False when ``partner`` is not (or no longer) the one ``who`` may report."""
        last = self._last.get(who)
        if last is None or last.session != partner:
            return False
        last.identity = identity
        last.served_by = served_by
        return True

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
