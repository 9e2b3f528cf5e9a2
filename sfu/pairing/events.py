"""What the matchmaker tells its caller, in the order it happened."""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from typing import Literal

ParticipantId = Hashable

Basis = Literal["interest", "language", "any"]
"""What made a match: a common interest, else a common language, else nothing in particular."""

BASES: tuple[Basis, ...] = ("interest", "language", "any")


@dataclass(frozen=True)
class Paired:
    """``a`` and ``b`` now talk to each other.

    ``a`` is the one whose search found ``b``. ``common`` holds their shared interests, sorted;
    ``basis`` says what made the match.
    """

    a: ParticipantId
    b: ParticipantId
    common: tuple[str, ...] = ()
    basis: Basis = "any"


@dataclass(frozen=True)
class Waiting:
    """``who`` is in the queue, looking for a partner."""

    who: ParticipantId


@dataclass(frozen=True)
class PartnerLeft:
    """``who``'s partner pressed Next, stopped or left; ``who`` is re-queued (an event follows)."""

    who: ParticipantId


@dataclass(frozen=True)
class Idle:
    """``who`` is no longer looking (after stop)."""

    who: ParticipantId


Event = Paired | Waiting | PartnerLeft | Idle
