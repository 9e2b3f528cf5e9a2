"""One interface for every matchmaker: the in-memory one (through :class:`~.local.LocalPairing`) and
the shared one on Redis (:class:`~.redis_matchmaker.RedisMatchmaker`).

Operations are asynchronous (the shared pool is across the network) and return the events they
caused, in order, wherever the people concerned are served. Independently of that return value, each
process receives the events of *its own* participants as :class:`Delivery` objects, in one total
order per process, through an :data:`EventSink`: the in-memory adapter calls the sink during the
operation; the shared pool appends to the process's inbox stream, read by :class:`~.feed.EventFeed`.
A server acts on deliveries only, never on return values: then a pairing decided by another process
and one decided by this process arrive the same way and in the order the pool decided them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

from ..events import Basis, Event
from ..matchmaker import PairingState
from ..preferences import Preferences

Cause = Literal["start", "next", "stop", "leave", "expire", "sweep"]
CAUSES: tuple[Cause, ...] = ("start", "next", "stop", "leave", "expire", "sweep")


@dataclass(frozen=True)
class Delivery:
    """One event for a participant this process serves."""

    event: Event
    #: The ``now`` of the operation that caused it.
    at: float
    #: The operation's number: increasing over the whole pool, so deliveries of one process (and
    #: those of several processes, merged) can be put back in the order they were decided.
    op: int
    #: The event's place in that operation's events (from 1).
    index: int
    cause: Cause


EventSink = Callable[[Delivery], None]
"""Receives the deliveries of one process, one at a time, in order. It must not raise."""


@dataclass(frozen=True)
class PairingCounts:
    waiting: int
    paired: int
    pairs_made: int
    pairs_by_basis: Mapping[Basis, int]


class PairingUnavailable(RuntimeError):
    """The shared pool cannot be reached (Redis down or restarting); nothing was done. Try again later."""

    code = "pairing_unavailable"


class NotOwner(ValueError):
    """The participant is served by another process; only that process may act for them."""

    code = "not_owner"


@runtime_checkable
class Pairing(Protocol):
    """Matchmaking with the rules of :mod:`sfu.pairing.matchmaker`, whoever keeps the pool."""

    async def start(self, who: str, now: float, *, preferences: Preferences | None = None) -> list[Event]: ...

    async def next(self, who: str, now: float, *, preferences: Preferences | None = None) -> list[Event]: ...

    async def stop(self, who: str, now: float) -> list[Event]: ...

    async def leave(self, who: str, now: float) -> list[Event]: ...

    async def expire(self, now: float) -> list[Event]: ...

    async def state(self, who: str) -> PairingState: ...

    async def partner_of(self, who: str) -> str | None: ...

    async def preferences_of(self, who: str) -> Preferences: ...

    async def counts(self) -> PairingCounts: ...
