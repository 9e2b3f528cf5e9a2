"""Rematch cooldowns: two people split by Next are kept apart for a while.

Each person remembers every partner they left (or who left them) within the cooldown, not only the
last one, so pressing Next twice quickly never leads straight back to the first partner.
"""

from __future__ import annotations

from collections import deque

from .events import ParticipantId


class Cooldowns:
    def __init__(self) -> None:
        self._until: dict[ParticipantId, dict[ParticipantId, float]] = {}
        self._queue: deque[tuple[float, ParticipantId, ParticipantId]] = deque()

    def __len__(self) -> int:
        """Cooldowns not yet swept by :meth:`pop_ended` (some may be over already)."""
        return len(self._queue)

    def add(self, a: ParticipantId, b: ParticipantId, until: float) -> None:
        """Keep ``a`` and ``b`` apart until ``until``; calls must come in non-decreasing ``until``."""
        self._until.setdefault(a, {})[b] = until
        self._until.setdefault(b, {})[a] = until
        self._queue.append((until, a, b))

    def allows(self, a: ParticipantId, b: ParticipantId, now: float) -> bool:
        until = self._until.get(a, {}).get(b)
        return until is None or until <= now

    def pop_ended(self, now: float) -> list[tuple[ParticipantId, ParticipantId]]:
        """Forget the cooldowns over by ``now``; the pairs that may meet again, in order."""
        ended: list[tuple[ParticipantId, ParticipantId]] = []
        while self._queue and self._queue[0][0] <= now:
            until, a, b = self._queue.popleft()
            if self._until.get(a, {}).get(b) != until:
                continue  # split again since: a later cooldown holds
            for x, y in ((a, b), (b, a)):
                others = self._until[x]
                del others[y]
                if not others:
                    del self._until[x]
            ended.append((a, b))
        return ended
