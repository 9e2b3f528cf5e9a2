"""The pairing rules (tests/pairing_contract.py) checked against the shared pool on a real redis-server,
through a synchronous adapter that runs each call to completion; every event returned must also
arrive, once and in order, in the inbox of the process serving the person it concerns."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from redis.asyncio import Redis

from sfu.pairing import Event, Matchmaker, Paired, PairingState, PartnerLeft, Preferences, Waiting
from sfu.pairing.shared import (
    Delivery,
    EventFeed,
    Keys,
    LocalPairing,
    Pairing,
    PairingCounts,
    PairingRules,
    ProcessId,
    RedisMatchmaker,
    connect,
)

from .pairing_contract import PairingContract, config_strategy, operation_strategy
from .redis_server import RedisServer, redis_server, unique_prefix  # noqa: F401  (fixture)

SNAPSHOT_LIMIT = 16


class SyncPairing:
    """The contract's synchronous interface over an asynchronous :class:`Pairing`.

    After each operation it reads the process's inbox and checks that exactly the returned events
    arrived, in order, numbered as one operation. Queries after an operation read everyone's state
    and partner from Redis at once (:meth:`RedisMatchmaker.snapshot`, one round trip instead of two
    per person, with few people) and the counts once; the next operation forgets them.
    """

    def __init__(self, runner: asyncio.Runner, pairing: RedisMatchmaker, feed: EventFeed, inbox: list[Delivery]) -> None:
        self.runner = runner
        self.pairing = pairing
        self.feed = feed
        self.inbox = inbox
        self.people: dict[str, None] = {}
        self._snapshot: dict[str, tuple[PairingState, str | None]] | None = None
        self._counts: PairingCounts | None = None
        self.last_op = 0

    def _op(self, call: Any, who: str | None = None) -> list[Event]:
        if who is not None:
            self.people[who] = None
        self._snapshot, self._counts = None, None
        events: list[Event] = self.runner.run(call)
        self.inbox.clear()
        self.runner.run(self.feed.poll())
        assert [d.event for d in self.inbox] == events
        assert [d.index for d in self.inbox] == list(range(1, len(events) + 1))
        assert len({d.op for d in self.inbox}) <= 1
        if self.inbox:
            assert self.inbox[0].op > self.last_op
            self.last_op = self.inbox[0].op
        return events

    def start(self, who: str, now: float, *, preferences: Preferences | None = None) -> list[Event]:
        return self._op(self.pairing.start(who, now, preferences=preferences), who)

    def next(self, who: str, now: float, *, preferences: Preferences | None = None) -> list[Event]:
        return self._op(self.pairing.next(who, now, preferences=preferences), who)

    def stop(self, who: str, now: float) -> list[Event]:
        return self._op(self.pairing.stop(who, now), who)

    def leave(self, who: str, now: float) -> list[Event]:
        return self._op(self.pairing.leave(who, now), who)

    def expire(self, now: float) -> list[Event]:
        return self._op(self.pairing.expire(now))

    def _person(self, who: str) -> tuple[PairingState, str | None]:
        if len(self.people) > SNAPSHOT_LIMIT:  # long runs with many people ask about one at a time
            return self.runner.run(self.pairing.snapshot([who]))[who]
        if self._snapshot is None or who not in self._snapshot:
            self.people[who] = None
            self._snapshot = self.runner.run(self.pairing.snapshot(list(self.people)))
        return self._snapshot[who]

    def state(self, who: str) -> PairingState:
        return self._person(who)[0]

    def partner_of(self, who: str) -> str | None:
        return self._person(who)[1]

    def counts(self) -> PairingCounts:
        if self._counts is None:
            self._counts = self.runner.run(self.pairing.counts())
        return self._counts

    @property
    def waiting_count(self) -> int:
        return self.counts().waiting

    @property
    def paired_count(self) -> int:
        return self.counts().paired


@pytest.fixture(scope="module")
def runner() -> Iterator[asyncio.Runner]:
    with asyncio.Runner() as runner:
        yield runner


@pytest.fixture(scope="module")
def client(runner: asyncio.Runner, redis_server: RedisServer) -> Iterator[Redis]:  # noqa: F811
    client = runner.run(connect(redis_server.url))
    yield client
    runner.run(client.aclose())


class TestRedisMatchmaker(PairingContract):
    # The same property as the contract's, declared again so that Hypothesis sees a test of this
    # class's own (one @given test run from two classes fails its differing_executors check).
    @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(config=config_strategy, seed=st.integers(0, 2**16), operations=st.lists(operation_strategy, max_size=60))
    def test_random_operations_follow_the_rules(
        self, make_matchmaker: Callable[..., Any], config: dict, seed: int, operations: list
    ) -> None:
        PairingContract.test_random_operations_follow_the_rules.hypothesis.inner_test(  # type: ignore[attr-defined]
            self, make_matchmaker, config, seed, operations
        )

    @pytest.fixture
    def make_matchmaker(self, runner: asyncio.Runner, client: Redis) -> Callable[..., Any]:
        def make(
            *, rematch_cooldown: float = 5.0, interest_wait: float = 5.0, language_wait: float = 0.0, seed: int = 0
        ) -> SyncPairing:
            keys = Keys(unique_prefix())
            process = ProcessId("node", "0")
            rules = PairingRules(rematch_cooldown, interest_wait, language_wait)
            pairing = RedisMatchmaker(client, process, keys=keys, rules=rules, rng=random.Random(seed))
            inbox: list[Delivery] = []
            feed = EventFeed(client, process, inbox.append, keys=keys)
            return SyncPairing(runner, pairing, feed, inbox)

        return make


def test_both_matchmakers_offer_one_interface(runner: asyncio.Runner, client: Redis) -> None:
    shared = RedisMatchmaker(client, ProcessId("node", "0"), keys=Keys(unique_prefix()))
    local = LocalPairing(Matchmaker())
    for pairing in (shared, local):
        assert isinstance(pairing, Pairing)
        assert runner.run(pairing.start("a", 0.0, preferences=Preferences(("chess",), ("en",)))) == [Waiting("a")]
        assert runner.run(pairing.start("b", 0.0, preferences=Preferences(("chess",)))) == [
            Paired("b", "a", ("chess",), "interest")
        ]
        assert runner.run(pairing.state("a")) is PairingState.PAIRED
        assert runner.run(pairing.partner_of("a")) == "b"
        assert runner.run(pairing.preferences_of("a")) == Preferences(("chess",), ("en",))
        assert runner.run(pairing.preferences_of("nobody")) == Preferences()
        counts = runner.run(pairing.counts())
        assert (counts.waiting, counts.paired, counts.pairs_made) == (0, 2, 1)
        assert counts.pairs_by_basis == {"interest": 1, "language": 0, "any": 0}
        assert runner.run(pairing.leave("a", 1.0)) == [PartnerLeft("b"), Waiting("b")]
        assert runner.run(pairing.state("a")) is PairingState.IDLE
        assert runner.run(pairing.preferences_of("a")) == Preferences()


def test_the_in_memory_adapter_delivers_every_event_in_order(runner: asyncio.Runner) -> None:
    inbox: list[Delivery] = []
    local = LocalPairing(Matchmaker(rematch_cooldown=1.0), inbox.append)
    runner.run(local.start("a", 0.0))
    runner.run(local.start("b", 0.5))
    events = runner.run(local.next("a", 1.0))
    assert [d.event for d in inbox] == [Waiting("a"), Paired("b", "a"), *events]
    assert [(d.op, d.index, d.cause, d.at) for d in inbox[2:]] == [(3, i, "next", 1.0) for i in range(1, 4)]
