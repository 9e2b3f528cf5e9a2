"""What the matchmaker tells its caller, in the order it happened."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Hashable, Union

ParticipantId = Hashable


@dataclass(frozen=True)
class Paired:
    """``a`` and ``b`` now talk to each other."""

    a: ParticipantId
    b: ParticipantId


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


Event = Union[Paired, Waiting, PartnerLeft, Idle]
