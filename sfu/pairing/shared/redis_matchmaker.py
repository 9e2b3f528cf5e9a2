"""The shared pool: matchmaking on Redis, one atomic Lua script per operation.

Same rules, same events in the same order as the in-memory :class:`~sfu.pairing.matchmaker.Matchmaker`
(checked by the same contract suite). Differences: participant ids are strings; each participant is
served by the process that first asked for them (others get :class:`~.protocol.NotOwner`); every
event is also delivered to the inbox of each process serving someone it concerns; ``expire`` ends at
most ``expire_budget`` cooldowns per call as well (the in-memory one ends them all); equal cooldown
ends are taken in name order rather than in the order they began.

``now`` must be the same clock in every process sharing the pool: wall-clock time (``time.time()``)
on machines kept in sync (NTP). The pool's time never goes back (a call a little behind acts at the
pool's latest time, see :mod:`.lua_pool`); :meth:`RedisMatchmaker.operate` says when each call acted.
Every process must use the same :class:`PairingRules`.

Errors: :class:`~.protocol.PairingUnavailable` when Redis cannot be reached (nothing was done, or
the call was done once: calls are idempotent and retried by the client of :func:`~.connect.connect`);
:class:`~.protocol.NotOwner`; ``ValueError`` for a bad id, preference or time, before anything is sent.
"""

from __future__ import annotations

import itertools
import logging
import math
import random
import time
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from typing import Literal, TypeVar, cast

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.commands.core import AsyncScript
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from ..events import BASES, Basis, Event
from ..matchmaker import BUCKET_SCAN, SCAN_LIMIT, PairingState
from ..preferences import NO_PREFERENCES, Preferences
from . import lua_ops
from .codec import Outcome, decode_preferences, decode_reply, encode_preferences, number, text
from .keys import Keys, ProcessId, check_name
from .lua_ops import MAX_SKEW
from .protocol import NotOwner, PairingCounts, PairingUnavailable

log = logging.getLogger(__name__)

#: An inbox holds at most about this many unread entries (one per operation concerning the process);
#: a process that far behind has lost the oldest.
INBOX_LIMIT = 100_000

T = TypeVar("T")

Operation = Literal["start", "next", "stop", "leave", "expire"]
OPERATIONS: tuple[Operation, ...] = ("start", "next", "stop", "leave", "expire")

_STATES = {"i": PairingState.IDLE, "w": PairingState.WAITING, "p": PairingState.PAIRED}


@dataclass(frozen=True)
class PairingRules:
    rematch_cooldown: float = 5.0
    interest_wait: float = 5.0
    language_wait: float = 0.0
    #: Cooldown ends and stage changes handled per ``expire`` call, at most (each kind).
    expire_budget: int = 1000

    def __post_init__(self) -> None:
        if min(self.rematch_cooldown, self.interest_wait, self.language_wait) < 0 or self.expire_budget < 1:
            raise ValueError("waits and cooldowns must be >= 0 and expire_budget >= 1")


def unavailable(error: Exception) -> PairingUnavailable:
    return PairingUnavailable(f"the shared pairing pool (Redis) is unreachable: {error}")


class RedisMatchmaker:
    """The matchmaking operations of one process on the pool under ``keys.prefix``."""

    def __init__(
        self,
        redis: Redis,
        process: ProcessId,
        *,
        keys: Keys | None = None,
        rules: PairingRules | None = None,
        rng: random.Random | None = None,
        inbox_limit: int = INBOX_LIMIT,
    ) -> None:
        self.redis = redis
        self.process = process
        self.keys = keys or Keys()
        self.rules = rules or PairingRules()
        self.inbox_limit = inbox_limit
        self._rng = rng or random.Random()
        self._requests = itertools.count(1)
        self._scripts: dict[str, AsyncScript] = {
            name: redis.register_script(getattr(lua_ops, name.upper()))
            for name in ("start", "next", "stop", "leave", "expire", "sweep")
        }
        #: Waiting people looked at while searching, by this process's calls.
        self.candidates_read = 0
        self._skew_warned = -math.inf

    # -- operations ------------------------------------------------------------------------------
    async def start(self, who: str, now: float, *, preferences: Preferences | None = None) -> list[Event]:
        return (await self.operate("start", now, who, preferences)).events

    async def next(self, who: str, now: float, *, preferences: Preferences | None = None) -> list[Event]:
        return (await self.operate("next", now, who, preferences)).events

    async def stop(self, who: str, now: float) -> list[Event]:
        return (await self.operate("stop", now, who)).events

    async def leave(self, who: str, now: float) -> list[Event]:
        return (await self.operate("leave", now, who)).events

    async def expire(self, now: float) -> list[Event]:
        return (await self.operate("expire", now)).events

    async def operate(
        self, op: Operation, now: float, who: str | None = None, preferences: Preferences | None = None
    ) -> Outcome:
        """One operation, with its number and the time it acted at (the methods above return its events)."""
        if op not in OPERATIONS:
            raise ValueError(f"unknown pairing operation {op!r}")
        extra: tuple[str, ...] = ()
        if op != "expire":
            extra = (check_name("participant id", who),)
            if op in ("start", "next"):
                extra += _preference_args(preferences)
        return self._outcome(await self._call(op, now, *extra))

    async def sweep(self, now: float) -> tuple[Outcome, dict[str, int]]:
        """Remove the people of every process whose heartbeat stopped (see :mod:`.registry`).

        Returns the outcome (partners told and re-queued) and, per process swept, how many people it had.
        """
        result, swept = cast(Sequence[Sequence[object]], await self._call("sweep", now))
        names = [text(x) for x in swept[0::2]]
        return self._outcome(result), dict(zip(names, (int(cast(int, n)) for n in swept[1::2])))

    # -- queries ---------------------------------------------------------------------------------
    async def state(self, who: str) -> PairingState:
        value = await self._query(self.redis.hget(self.keys.participant(who), "st"))
        return PairingState.IDLE if value is None else _STATES[text(value)]

    async def partner_of(self, who: str) -> str | None:
        value = await self._query(self.redis.hget(self.keys.participant(who), "pa"))
        return text(value) or None if value is not None else None

    async def preferences_of(self, who: str) -> Preferences:
        values = await self._query(self.redis.hmget(self.keys.participant(who), ["i", "l", "s"]))
        return NO_PREFERENCES if values[0] is None else decode_preferences(*values)

    async def snapshot(self, people: Sequence[str]) -> dict[str, tuple[PairingState, str | None]]:
        """State and partner of each of ``people``, read at one instant (one round trip)."""
        pipe: Pipeline = self.redis.pipeline(transaction=True)
        for who in people:
            pipe.hmget(self.keys.participant(who), ["st", "pa"])
        rows = await self._query(pipe.execute())
        return {
            who: (PairingState.IDLE if st is None else _STATES[text(st)], text(pa) or None if pa is not None else None)
            for who, (st, pa) in zip(people, rows)
        }

    async def owner_of(self, who: str) -> str | None:
        value = await self._query(self.redis.hget(self.keys.participant(who), "o"))
        return None if value is None else text(value)

    async def counts(self) -> PairingCounts:
        pipe: Pipeline = self.redis.pipeline(transaction=False)
        pipe.scard(self.keys.waiting)
        pipe.scard(self.keys.paired)
        pipe.hgetall(self.keys.stats)
        waiting, paired, stats = await self._query(pipe.execute())
        values = {text(k): int(text(v)) for k, v in stats.items()}
        by_basis: dict[Basis, int] = {basis: values.get(f"by:{basis}", 0) for basis in BASES}
        return PairingCounts(int(waiting), int(paired), sum(by_basis.values()), by_basis)

    # -- calls -----------------------------------------------------------------------------------
    def _outcome(self, reply: object) -> Outcome:
        outcome = decode_reply(cast(Sequence[object], reply))
        self.candidates_read += outcome.reads
        if outcome.skew > MAX_SKEW and time.monotonic() - self._skew_warned > 60.0:
            self._skew_warned = time.monotonic()
            log.warning(
                "a pairing call acted %.3f s behind the pool's clock: machines' clocks apart (keep them in sync "
                "with NTP), or calls waiting that long before reaching Redis", outcome.skew,
                extra={"event": "pairing_clock_skew", "skew": outcome.skew},
            )
        return outcome

    async def _call(self, name: str, now: float, *extra: str) -> object:
        rules = self.rules
        args = [
            self.keys.prefix, number(now), str(self.process), str(self._rng.randrange(2**31)),
            number(rules.rematch_cooldown), number(rules.interest_wait), number(rules.language_wait),
            str(rules.expire_budget), str(BUCKET_SCAN), str(SCAN_LIMIT), str(self.inbox_limit),
            f"{self.process}:{next(self._requests)}", *extra,
        ]
        try:
            return await self._scripts[name](args=args)
        except ResponseError as error:
            if str(error).startswith("NOT_OWNER"):
                raise NotOwner(str(error).removeprefix("NOT_OWNER ")) from None
            raise
        except (RedisConnectionError, RedisTimeoutError, OSError) as error:
            raise unavailable(error) from error

    async def _query(self, pending: Awaitable[T]) -> T:
        try:
            return await pending
        except (RedisConnectionError, RedisTimeoutError, OSError) as error:
            raise unavailable(error) from error


def _preference_args(preferences: Preferences | None) -> tuple[str, ...]:
    if preferences is None:
        return ("0", "", "", "0")
    return ("1", *encode_preferences(preferences))
