"""Random 1:1 matchmaking.

Every operation is O(1) expected: the waiting pool supports O(1) random choice, and finding a
compatible partner tries a bounded number of candidates. A participant who presses Next is not paired
straight back with the same partner for ``rematch_cooldown`` seconds; when the cooldown ends and the
two are still waiting for each other alone, :meth:`Matchmaker.expire` pairs them.
"""

from __future__ import annotations

import enum
import random
from collections import deque
from dataclasses import dataclass

from .events import Event, Idle, Paired, ParticipantId, PartnerLeft, Waiting
from .pool import RandomPool

#: Pools up to this size are scanned in full; bigger pools are sampled this many times.
SCAN_LIMIT = 8


class PairingState(str, enum.Enum):
    IDLE = "idle"
    WAITING = "waiting"
    PAIRED = "paired"


@dataclass
class _Avoid:
    other: ParticipantId
    until: float


class Matchmaker:
    def __init__(self, *, rematch_cooldown: float = 5.0, rng: random.Random | None = None) -> None:
        self.rematch_cooldown = rematch_cooldown
        self._rng = rng or random.Random()
        self._pool: RandomPool[ParticipantId] = RandomPool()
        self._partner: dict[ParticipantId, ParticipantId] = {}
        self._avoid: dict[ParticipantId, _Avoid] = {}
        self._cooldowns: deque[tuple[float, ParticipantId, ParticipantId]] = deque()
        self.pairs_made = 0

    # -- queries ---------------------------------------------------------------------------------
    def state(self, who: ParticipantId) -> PairingState:
        if who in self._partner:
            return PairingState.PAIRED
        if who in self._pool:
            return PairingState.WAITING
        return PairingState.IDLE

    def partner_of(self, who: ParticipantId) -> ParticipantId | None:
        return self._partner.get(who)

    @property
    def waiting_count(self) -> int:
        return len(self._pool)

    @property
    def paired_count(self) -> int:
        return len(self._partner)

    # -- operations ------------------------------------------------------------------------------
    def start(self, who: ParticipantId, now: float) -> list[Event]:
        """Look for a partner. A no-op for someone already waiting or paired."""
        state = self.state(who)
        if state is PairingState.PAIRED:
            return []
        if state is PairingState.WAITING:
            return [Waiting(who)]
        return self._enqueue(who, now)

    def next(self, who: ParticipantId, now: float) -> list[Event]:
        """Leave the current partner (if any) and look for another."""
        partner = self._partner.get(who)
        if partner is None:
            return self.start(who, now)
        self._unpair(who, partner)
        until = now + self.rematch_cooldown
        self._avoid[who] = _Avoid(partner, until)
        self._avoid[partner] = _Avoid(who, until)
        self._cooldowns.append((until, who, partner))
        events: list[Event] = [PartnerLeft(partner)]
        events += self._enqueue(partner, now)
        if self.state(who) is PairingState.IDLE:
            events += self._enqueue(who, now)
        return events

    def stop(self, who: ParticipantId, now: float) -> list[Event]:
        """Stop looking and leave the current partner, who is re-queued."""
        return self._detach(who, now) + [Idle(who)]

    def leave(self, who: ParticipantId, now: float) -> list[Event]:
        """Forget ``who`` entirely (disconnect); the partner, if any, is re-queued."""
        events = self._detach(who, now)
        self._avoid.pop(who, None)
        return events

    def expire(self, now: float) -> list[Event]:
        """End rematch cooldowns that are over; pair people who were only waiting for each other."""
        events: list[Event] = []
        while self._cooldowns and self._cooldowns[0][0] <= now:
            _, a, b = self._cooldowns.popleft()
            for x, y in ((a, b), (b, a)):
                avoid = self._avoid.get(x)
                if avoid is not None and avoid.other == y and avoid.until <= now:
                    del self._avoid[x]
            if a in self._pool and b in self._pool and self._compatible(a, b, now):
                self._pool.remove(a)
                self._pool.remove(b)
                events.append(self._pair(a, b))
        return events

    # -- internals -------------------------------------------------------------------------------
    def _detach(self, who: ParticipantId, now: float) -> list[Event]:
        partner = self._partner.get(who)
        if partner is not None:
            self._unpair(who, partner)
            return [PartnerLeft(partner)] + self._enqueue(partner, now)
        self._pool.discard(who)
        return []

    def _unpair(self, a: ParticipantId, b: ParticipantId) -> None:
        del self._partner[a]
        del self._partner[b]

    def _pair(self, a: ParticipantId, b: ParticipantId) -> Paired:
        self._partner[a] = b
        self._partner[b] = a
        self.pairs_made += 1
        return Paired(a, b)

    def _compatible(self, a: ParticipantId, b: ParticipantId, now: float) -> bool:
        for x, y in ((a, b), (b, a)):
            avoid = self._avoid.get(x)
            if avoid is not None and avoid.other == y and avoid.until > now:
                return False
        return True

    def _find_partner(self, who: ParticipantId, now: float) -> ParticipantId | None:
        if len(self._pool) <= SCAN_LIMIT:
            candidates = self._pool.shuffled(self._rng)
        else:
            candidates = [self._pool.choice(self._rng) for _ in range(SCAN_LIMIT)]
        for candidate in candidates:
            if candidate != who and self._compatible(who, candidate, now):
                return candidate
        return None

    def _enqueue(self, who: ParticipantId, now: float) -> list[Event]:
        partner = self._find_partner(who, now)
        if partner is None:
            self._pool.add(who)
            return [Waiting(who)]
        self._pool.remove(partner)
        return [self._pair(who, partner)]
