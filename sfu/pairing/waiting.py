"""The people waiting for a partner, indexed so that finding one never scans the whole room.

- by interest: for each tag, everyone waiting with it, oldest first;
- by language: for each language, everyone waiting who already accepts a partner sharing only a
  language (stage :attr:`Stage.LANGUAGE` or later), oldest first;
- the open pool: everyone who accepts anyone (stage :attr:`Stage.ANY`), with O(1) random choice.

Insertion order is arrival order (``seq``), so iterating a bucket from its start meets the longest
waiting first. Buckets are ``OrderedDict``s: removing from the front and iterating from the front stay
O(1) per step however much churn the bucket has seen (a plain dict leaves holes there).
"""

from __future__ import annotations

import enum
import itertools
import random
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass

from .events import ParticipantId
from .pool import RandomPool
from .preferences import NO_PREFERENCES, Preferences


class Stage(enum.IntEnum):
    """Whom a waiting person accepts; it only widens while they wait."""

    INTERESTS = 0  # only someone sharing an interest
    LANGUAGE = 1  # also someone sharing a language
    ANY = 2  # anyone


@dataclass(eq=False)
class Waiter:
    who: ParticipantId
    prefs: Preferences
    since: float
    stage: Stage
    seq: int = -1  # arrival order, set when admitted to the room


class WaitingRoom:
    def __init__(self) -> None:
        self._waiters: dict[ParticipantId, Waiter] = {}
        self._by_interest: dict[str, OrderedDict[ParticipantId, Waiter]] = {}
        self._by_language: dict[str, OrderedDict[ParticipantId, Waiter]] = {}
        self._open: RandomPool[ParticipantId] = RandomPool()
        self._seq = itertools.count()

    def __len__(self) -> int:
        return len(self._waiters)

    def __contains__(self, who: object) -> bool:
        return who in self._waiters

    def __iter__(self) -> Iterator[ParticipantId]:
        return iter(list(self._waiters))

    def get(self, who: ParticipantId) -> Waiter | None:
        return self._waiters.get(who)

    @property
    def open_count(self) -> int:
        return len(self._open)

    # -- changes ---------------------------------------------------------------------------------
    def add(
        self, who: ParticipantId, prefs: Preferences = NO_PREFERENCES, since: float = 0.0, stage: Stage = Stage.ANY
    ) -> Waiter:
        """Admit ``who`` (not already waiting) at the back of every queue they belong to."""
        waiter = Waiter(who, prefs, since, stage, next(self._seq))
        self._waiters[who] = waiter
        for tag in prefs.interests:
            self._by_interest.setdefault(tag, OrderedDict())[who] = waiter
        self._index_stage(waiter, Stage.INTERESTS, stage)
        return waiter

    def remove(self, who: ParticipantId) -> Waiter:
        waiter = self._waiters.pop(who)
        for tag in waiter.prefs.interests:
            _drop(self._by_interest, tag, who)
        if waiter.stage >= Stage.LANGUAGE:
            for language in waiter.prefs.languages:
                _drop(self._by_language, language, who)
        if waiter.stage is Stage.ANY:
            self._open.remove(who)
        return waiter

    def discard(self, who: ParticipantId) -> None:
        if who in self._waiters:
            self.remove(who)

    def promote(self, waiter: Waiter, stage: Stage) -> None:
        """Widen whom ``waiter`` accepts (never narrows); their place in every queue is kept."""
        if stage > waiter.stage:
            self._index_stage(waiter, waiter.stage, stage)
            waiter.stage = stage

    def _index_stage(self, waiter: Waiter, old: Stage, new: Stage) -> None:
        if old < Stage.LANGUAGE <= new:
            for language in waiter.prefs.languages:
                bucket = self._by_language.setdefault(language, OrderedDict())
                bucket[waiter.who] = waiter
                _restore_order(bucket, waiter)
        if old < Stage.ANY <= new:
            self._open.add(waiter.who)

    # -- candidates ------------------------------------------------------------------------------
    def with_interest(self, tag: str, limit: int) -> Iterator[Waiter]:
        """Up to ``limit`` people waiting with ``tag``, longest waiting first."""
        return itertools.islice(self._by_interest.get(tag, {}).values(), limit)

    def with_language(self, language: str, limit: int) -> Iterator[Waiter]:
        """Up to ``limit`` people accepting a partner by ``language``, longest waiting first."""
        return itertools.islice(self._by_language.get(language, {}).values(), limit)

    def open_sample(self, rng: random.Random, limit: int) -> list[ParticipantId]:
        """Random candidates among those accepting anyone: all of them, shuffled, in a small pool;
        otherwise ``limit`` uniform draws."""
        if len(self._open) <= limit:
            return self._open.shuffled(rng)
        return [self._open.choice(rng) for _ in range(limit)]


def _drop(index: dict[str, OrderedDict[ParticipantId, Waiter]], key: str, who: ParticipantId) -> None:
    bucket = index[key]
    del bucket[who]
    if not bucket:
        del index[key]


def _restore_order(bucket: OrderedDict[ParticipantId, Waiter], waiter: Waiter) -> None:
    """Keep a bucket in arrival order when someone who arrived earlier joins it late (promotion).

    This walks back only over the people who joined the bucket after ``waiter`` arrived and are
    still in it: few, since any two people in one language bucket are already acceptable to each
    other and only a rematch cooldown keeps them both waiting.
    """
    later: list[ParticipantId] = []
    for other in reversed(bucket.values()):
        if other is waiter:
            continue
        if other.seq < waiter.seq:
            break
        later.append(other.who)
    for who in reversed(later):
        bucket.move_to_end(who)
