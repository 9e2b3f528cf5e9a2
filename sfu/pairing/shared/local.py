"""The in-memory :class:`~sfu.pairing.matchmaker.Matchmaker` behind the :class:`~.protocol.Pairing`
interface: one process, no network. Every event concerns a local participant, so each operation
hands its events to the sink before returning."""

from __future__ import annotations

import itertools
from collections.abc import Hashable

from ..events import Event
from ..matchmaker import Matchmaker, PairingState
from ..preferences import Preferences
from .protocol import Cause, Delivery, EventSink, PairingCounts


class LocalPairing:
    def __init__(self, matchmaker: Matchmaker, sink: EventSink | None = None) -> None:
        self.matchmaker = matchmaker
        self.sink = sink
        self._ops = itertools.count(1)

    async def start(self, who: str, now: float, *, preferences: Preferences | None = None) -> list[Event]:
        return self._deliver("start", now, self.matchmaker.start(who, now, preferences=preferences))

    async def next(self, who: str, now: float, *, preferences: Preferences | None = None) -> list[Event]:
        return self._deliver("next", now, self.matchmaker.next(who, now, preferences=preferences))

    async def stop(self, who: str, now: float) -> list[Event]:
        return self._deliver("stop", now, self.matchmaker.stop(who, now))

    async def leave(self, who: str, now: float) -> list[Event]:
        return self._deliver("leave", now, self.matchmaker.leave(who, now))

    async def expire(self, now: float) -> list[Event]:
        return self._deliver("expire", now, self.matchmaker.expire(now))

    async def state(self, who: str) -> PairingState:
        return self.matchmaker.state(who)

    async def partner_of(self, who: str) -> str | None:
        partner: Hashable | None = self.matchmaker.partner_of(who)
        return None if partner is None else str(partner)

    async def preferences_of(self, who: str) -> Preferences:
        return self.matchmaker.preferences_of(who)

    async def counts(self) -> PairingCounts:
        mm = self.matchmaker
        return PairingCounts(mm.waiting_count, mm.paired_count, mm.pairs_made, dict(mm.pairs_by_basis))

    def _deliver(self, cause: Cause, now: float, events: list[Event]) -> list[Event]:
        if self.sink is not None and events:
            op = next(self._ops)
            for index, event in enumerate(events, 1):
                self.sink(Delivery(event, now, op, index, cause))
        return events
