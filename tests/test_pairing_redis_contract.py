"""The pairing rules (tests/pairing_contract.py) checked against the shared pool on a real redis-server,
through a synchronous adapter that runs each call to completion; every event returned must also
arrive, once and in order, in the inbox of the process serving the person it concerns."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from redis.asyncio import Redis

from sfu.pairing import Event, Paired, PairingState, Preferences
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

from .pairing_contract import PairingContract
from .redis_server import RedisServer, redis_server, unique_prefix  # noqa: F401  (fixture)


class SyncPairing:
    """The contract's synchronous interface over an asynchronous :class:`Pairing`.

    After each operation it reads the process's inbox and checks that exactly the returned events
    arrived, in order, numbered as one operation.
    """

    def __init__(self, runner: asyncio.Runner, pairing: RedisMatchmaker, feed: EventFeed, inbox: list[Delivery]) -> None:
        self.runner = runner
        self.pairing = pairing
        self.feed = feed
        self.inbox = inbox

    def _op(self, call: Any) -> list[Event]:
        events: list[Event] = self.runner.run(call)
        self.inbox.clear()
        self.runner.run(self.feed.poll())
        assert [d.event for d in self.inbox] == events
        if events:
            assert {d.op for d in self.inbox} == {self.pairing.last_op}
            assert [d.index for d in self.inbox] == list(range(1, len(events) + 1))
        return events

    def start(self, who: str, now: float, *, preferences: Preferences | None = None) -> list[Event]:
        return self._op(self.pairing.start(who, now, preferences=preferences))

    def next(self, who: str, now: float, *, preferences: Preferences | None = None) -> list[Event]:
        return self._op(self.pairing.next(who, now, preferences=preferences))

    def stop(self, who: str, now: float) -> list[Event]:
        return self._op(self.pairing.stop(who, now))

    def leave(self, who: str, now: float) -> list[Event]:
        return self._op(self.pairing.leave(who, now))

    def expire(self, now: float) -> list[Event]:
        return self._op(self.pairing.expire(now))

    def state(self, who: str) -> PairingState:
        return self.runner.run(self.pairing.state(who))

    def partner_of(self, who: str) -> str | None:
        return self.runner.run(self.pairing.partner_of(who))

    def _counts(self) -> PairingCounts:
        return self.runner.run(self.pairing.counts())

    @property
    def waiting_count(self) -> int:
        return self._counts().waiting

    @property
    def paired_count(self) -> int:
        return self._counts().paired


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
    from sfu.pairing import Matchmaker

    shared = RedisMatchmaker(client, ProcessId("node", "0"), keys=Keys(unique_prefix()))
    assert isinstance(LocalPairing(Matchmaker()), Pairing)
    assert isinstance(shared, Pairing)
    events = runner.run(shared.start("a", 0.0))
    assert runner.run(shared.start("b", 0.0)) == [Paired("b", "a", (), "any")] and events
