"""1:1 matchmaking: random by default, by common interests and languages for those who ask.

The rules (every matchmaker keeps them; ``tests/pairing_contract.py`` checks them):

- A waiting person's *stage* says whom they accept; it only widens while they wait.

  - With interests: only someone sharing one, for ``interest_wait`` seconds, then anyone. A strict
    person (``Preferences.strict``) accepts only a common interest, however long it takes.
  - With languages, when ``language_wait`` > 0: also someone sharing a language once the interest
    wait is over, and anyone once ``language_wait`` seconds have passed since they started waiting.
    With the default ``language_wait`` of 0, a language never delays anyone: it only breaks ties.
  - With neither: anyone, at once.

- Two people may be paired when each accepts the other (they share an interest; or both accept a
  language partner and share a language; or both accept anyone) and no rematch cooldown holds
  between them: whoever presses Next is not paired straight back with that partner for
  ``rematch_cooldown`` seconds.
- Whoever looks for a partner (arriving, re-queued, or whose stage just widened) takes the best
  acceptable waiting person, in this order:

  1. sharing interests: most interests in common, then a shared language, then longest waiting.
     Anyone who has already waited ``interest_wait`` seconds comes before all of these, longest
     waiting first, so a stream of newcomers with more in common cannot keep them waiting forever;
  2. else sharing a language: longest waiting first;
  3. else anyone: a uniformly random choice (among people waiting this long, everyone accepts
     everyone, so this pool holds at most a few people kept apart by cooldowns). In a pool shared
     by several processes (:mod:`sfu.pairing.shared`), someone served by the searcher's own process,
     or who has waited a second already, is taken before the others drawn.

  With no preferences anywhere only step 3 applies: random matchmaking, exactly as before.

- Time acts only through :meth:`Matchmaker.expire`, called about twice a second: it ends cooldowns
  (pairing two people who were waiting only for each other) and widens the stages that are due, in
  due order, at most ``expire_budget`` per call, pairing whoever that makes compatible.

Cost: finding a partner reads at most ``BUCKET_SCAN`` people per interest and per language of the
searcher, and ``SCAN_LIMIT`` from the open pool: O(tags), whatever the number of people waiting.
"""

from __future__ import annotations

import enum
import heapq
import math
import random
from dataclasses import dataclass

from .cooldowns import Cooldowns
from .events import (
    BASES,
    Basis,
    Event,
    Idle,
    Paired,
    ParticipantId,
    PartnerLeft,
    Waiting,
)
from .preferences import NO_PREFERENCES, Preferences
from .waiting import Stage, Waiter, WaitingRoom

#: Open pools up to this size are tried in full (shuffled); bigger ones are sampled this many times.
SCAN_LIMIT = 8
#: At most this many people are read from each interest or language queue per search.
BUCKET_SCAN = 8


class PairingState(str, enum.Enum):
    IDLE = "idle"
    WAITING = "waiting"
    PAIRED = "paired"


@dataclass(frozen=True)
class _Match:
    partner: Waiter
    basis: Basis
    common: tuple[str, ...]


class Matchmaker:
    def __init__(
        self,
        *,
        rematch_cooldown: float = 5.0,
        interest_wait: float = 5.0,
        language_wait: float = 0.0,
        rng: random.Random | None = None,
        expire_budget: int = 1000,
    ) -> None:
        if min(rematch_cooldown, interest_wait, language_wait) < 0 or expire_budget < 1:
            raise ValueError("waits and cooldowns must be >= 0 and expire_budget >= 1")
        self.rematch_cooldown = rematch_cooldown
        self.interest_wait = interest_wait
        self.language_wait = language_wait
        self.expire_budget = expire_budget
        self._rng = rng or random.Random()
        self._pool = WaitingRoom()
        self._partner: dict[ParticipantId, ParticipantId] = {}
        self._prefs: dict[ParticipantId, Preferences] = {}
        self._cooldowns = Cooldowns()
        # (when, seq, who): a waiter's stage is due to widen; entries of people gone are skipped.
        self._timeline: list[tuple[float, int, ParticipantId]] = []
        self.pairs_made = 0
        self.pairs_by_basis: dict[Basis, int] = dict.fromkeys(BASES, 0)
        #: Waiting people looked at while searching, in all: the work done, whatever the clock says.
        self.candidates_read = 0

    # -- queries ---------------------------------------------------------------------------------
    def state(self, who: ParticipantId) -> PairingState:
        if who in self._partner:
            return PairingState.PAIRED
        if who in self._pool:
            return PairingState.WAITING
        return PairingState.IDLE

    def partner_of(self, who: ParticipantId) -> ParticipantId | None:
        return self._partner.get(who)

    def preferences_of(self, who: ParticipantId) -> Preferences:
        return self._prefs.get(who, NO_PREFERENCES)

    def waiting_since(self, who: ParticipantId) -> float | None:
        waiter = self._pool.get(who)
        return None if waiter is None else waiter.since

    @property
    def waiting_count(self) -> int:
        return len(self._pool)

    @property
    def paired_count(self) -> int:
        return len(self._partner)

    # -- operations ------------------------------------------------------------------------------
    def start(self, who: ParticipantId, now: float, *, preferences: Preferences | None = None) -> list[Event]:
        """Look for a partner. ``preferences`` replace the person's (None keeps them).

        A no-op for someone paired (new preferences apply from their next search) or waiting with
        unchanged preferences; someone waiting with changed preferences searches again afresh.
        """
        changed = self._set_preferences(who, preferences)
        state = self.state(who)
        if state is PairingState.PAIRED:
            return []
        if state is PairingState.WAITING:
            if not changed:
                return [Waiting(who)]
            self._pool.remove(who)
        return self._enqueue(who, now)

    def next(self, who: ParticipantId, now: float, *, preferences: Preferences | None = None) -> list[Event]:
        """Leave the current partner (if any) and look for another."""
        partner = self._partner.get(who)
        if partner is None:
            return self.start(who, now, preferences=preferences)
        self._set_preferences(who, preferences)
        self._unpair(who, partner)
        self._cooldowns.add(who, partner, now + self.rematch_cooldown)
        events: list[Event] = [PartnerLeft(partner)]
        events += self._enqueue(partner, now)
        if self.state(who) is PairingState.IDLE:
            events += self._enqueue(who, now)
        return events

    def stop(self, who: ParticipantId, now: float) -> list[Event]:
        """Stop looking and leave the current partner, who is re-queued."""
        return self._detach(who, now) + [Idle(who)]

    def leave(self, who: ParticipantId, now: float) -> list[Event]:
        """Forget ``who`` (disconnect); the partner, if any, is re-queued. Cooldowns run out alone."""
        events = self._detach(who, now)
        self._prefs.pop(who, None)
        return events

    def expire(self, now: float) -> list[Event]:
        """Let time act: end cooldowns that are over, widen the stages that are due, pair whoever
        that makes compatible."""
        events: list[Event] = []
        for a, b in self._cooldowns.pop_ended(now):
            waiter, other = self._pool.get(a), self._pool.get(b)
            if waiter is not None and other is not None:
                match = self._match(waiter, other, now)
                if match is not None:
                    events.append(self._pair(waiter, match))
        budget = self.expire_budget
        while self._timeline and self._timeline[0][0] <= now and budget > 0:
            _, seq, who = heapq.heappop(self._timeline)
            budget -= 1
            waiter = self._pool.get(who)
            if waiter is None or waiter.seq != seq:
                continue  # paired or gone since
            stage = self._stage(waiter.prefs, waiter.since, now)
            if stage <= waiter.stage:
                continue
            self._pool.promote(waiter, stage)
            match = self._find_partner(waiter, now)
            if match is not None:
                events.append(self._pair(waiter, match))
        return events

    # -- internals -------------------------------------------------------------------------------
    def _set_preferences(self, who: ParticipantId, preferences: Preferences | None) -> bool:
        if preferences is None or preferences == self._prefs.get(who, NO_PREFERENCES):
            return False
        if preferences == NO_PREFERENCES:
            del self._prefs[who]
        else:
            self._prefs[who] = preferences
        return True

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

    def _pair(self, waiter: Waiter, match: _Match) -> Paired:
        a, b = waiter.who, match.partner.who
        self._pool.discard(a)
        self._pool.remove(b)
        self._partner[a] = b
        self._partner[b] = a
        self.pairs_made += 1
        self.pairs_by_basis[match.basis] += 1
        return Paired(a, b, match.common, match.basis)

    def _compatible(self, a: ParticipantId, b: ParticipantId, now: float) -> bool:
        """No rematch cooldown keeps ``a`` and ``b`` apart."""
        return self._cooldowns.allows(a, b, now)

    def _opens_at(self, prefs: Preferences, since: float) -> tuple[float, float]:
        """When someone waiting since ``since`` starts accepting a language partner, and anyone."""
        if prefs.only_common:
            return math.inf, math.inf
        interest_wait = self.interest_wait if prefs.interests else 0.0
        language_wait = self.language_wait if prefs.languages else 0.0
        return since + interest_wait, since + max(interest_wait, language_wait)

    def _stage(self, prefs: Preferences, since: float, now: float) -> Stage:
        to_language, to_any = self._opens_at(prefs, since)
        if now >= to_any:
            return Stage.ANY
        return Stage.LANGUAGE if now >= to_language else Stage.INTERESTS

    def _enqueue(self, who: ParticipantId, now: float) -> list[Event]:
        prefs = self._prefs.get(who, NO_PREFERENCES)
        searcher = Waiter(who, prefs, now, Stage.ANY)
        if prefs is NO_PREFERENCES:  # most people: only the open pool can have a partner for them
            match = self._anyone(searcher, now)
        else:
            searcher.stage = self._stage(prefs, now, now)
            match = self._find_partner(searcher, now)
        if match is not None:
            return [self._pair(searcher, match)]
        waiter = self._pool.add(who, prefs, now, searcher.stage)
        if waiter.stage is not Stage.ANY:
            to_language, to_any = self._opens_at(prefs, now)
            for stage, at in ((Stage.LANGUAGE, to_language), (Stage.ANY, to_any)):
                if waiter.stage < stage and at < math.inf and (stage is Stage.LANGUAGE or at != to_language):
                    heapq.heappush(self._timeline, (at, waiter.seq, who))
        return [Waiting(who)]

    def _find_partner(self, searcher: Waiter, now: float) -> _Match | None:
        return (
            self._by_interest(searcher, now)
            or self._by_language(searcher, now)
            or self._anyone(searcher, now)
        )

    def _by_interest(self, searcher: Waiter, now: float) -> _Match | None:
        best: Waiter | None = None
        best_rank: tuple[int, int, int, int] | None = None
        seen: set[ParticipantId] = set()
        for tag in searcher.prefs.interests:
            for candidate in self._pool.with_interest(tag, BUCKET_SCAN):
                self.candidates_read += 1
                if candidate.who == searcher.who or candidate.who in seen:
                    continue
                seen.add(candidate.who)
                if not self._cooldowns.allows(searcher.who, candidate.who, now):
                    continue
                rank = self._rank(searcher, candidate, now)
                if best_rank is None or rank > best_rank:
                    best, best_rank = candidate, rank
        return None if best is None else self._describe(searcher, best)

    def _rank(self, searcher: Waiter, candidate: Waiter, now: float) -> tuple[int, int, int, int]:
        """Higher is better: overdue waiters first (oldest first), then overlap, language, age."""
        if now - candidate.since >= self.interest_wait:
            return (1, -candidate.seq, 0, 0)
        overlap = len(searcher.prefs.interest_set & candidate.prefs.interest_set)
        shared_language = not searcher.prefs.language_set.isdisjoint(candidate.prefs.language_set)
        return (0, overlap, int(shared_language), -candidate.seq)

    def _by_language(self, searcher: Waiter, now: float) -> _Match | None:
        if searcher.stage < Stage.LANGUAGE:
            return None
        best: Waiter | None = None
        for language in searcher.prefs.languages:
            for candidate in self._pool.with_language(language, BUCKET_SCAN):
                self.candidates_read += 1
                if candidate.who != searcher.who and self._cooldowns.allows(searcher.who, candidate.who, now):
                    if best is None or candidate.seq < best.seq:
                        best = candidate
                    break  # the first acceptable one is the longest waiting in this queue
        return None if best is None else self._describe(searcher, best)

    def _anyone(self, searcher: Waiter, now: float) -> _Match | None:
        if searcher.stage is not Stage.ANY:
            return None
        for who in self._pool.open_sample(self._rng, SCAN_LIMIT):
            self.candidates_read += 1
            if who != searcher.who and self._cooldowns.allows(searcher.who, who, now):
                candidate = self._pool.get(who)
                assert candidate is not None
                return self._describe(searcher, candidate)
        return None

    def _describe(self, a: Waiter, b: Waiter) -> _Match:
        if a.prefs is NO_PREFERENCES or b.prefs is NO_PREFERENCES:
            return _Match(b, "any", ())
        common = tuple(sorted(a.prefs.interest_set & b.prefs.interest_set))
        if common:
            return _Match(b, "interest", common)
        if not a.prefs.language_set.isdisjoint(b.prefs.language_set):
            return _Match(b, "language", common)
        return _Match(b, "any", common)

    def _match(self, a: Waiter, b: Waiter, now: float) -> _Match | None:
        """How ``a`` and ``b`` may be paired now, or None when one of them would refuse."""
        if not self._cooldowns.allows(a.who, b.who, now):
            return None
        match = self._describe(a, b)
        lower = min(a.stage, b.stage)
        if match.basis == "interest" or lower is Stage.ANY:
            return match
        if match.basis == "language" and lower >= Stage.LANGUAGE:
            return match
        return None
