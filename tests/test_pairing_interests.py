"""The in-memory matchmaker with preferences: bounded work, its indexes, its counters.

The pairing rules themselves are in tests/pairing_contract.py (run by test_pairing_contract.py).
"""

from __future__ import annotations

import random

import pytest

from sfu.pairing import Matchmaker, Paired, Preferences, Waiting
from sfu.pairing.matchmaker import BUCKET_SCAN, SCAN_LIMIT
from sfu.pairing.waiting import Stage, WaitingRoom


def make(seed: int = 1, **kwargs: float) -> Matchmaker:
    return Matchmaker(rng=random.Random(seed), **kwargs)  # type: ignore[arg-type]


def test_a_search_reads_a_bounded_number_of_candidates_however_many_wait() -> None:
    """20,000 people waiting for common interests; each newcomer reads only its own queues."""
    m = make()
    for i in range(20_000):
        tags = (f"tag{3 * i}", f"tag{3 * i + 1}", f"tag{3 * i + 2}")
        m.start(f"w{i}", 0.0, preferences=Preferences(tags, ("en",), strict=True))
    assert m.waiting_count == 20_000
    rng = random.Random(3)
    for j in range(2_000):
        wanted = tuple(f"tag{rng.randrange(60_000)}" for _ in range(10))
        before = m.candidates_read
        m.start(f"n{j}", 1.0, preferences=Preferences(wanted, ("en", "fr")))
        assert m.candidates_read - before <= 10  # at most one person has each of its 10 tags
    assert m.pairs_by_basis["interest"] >= 1_900


def test_a_crowded_queue_is_read_only_at_its_front() -> None:
    """Even a queue of 10,000 (here all kept from the newcomer by cooldowns) is read 8 deep."""
    m = make(rematch_cooldown=100.0)
    for i in range(10_000):
        waiter = m._pool.add(f"w{i}", Preferences(("music",)), 0.0, Stage.INTERESTS)
        m._cooldowns.add("z", waiter.who, 100.0)
    assert m.start("z", 1.0, preferences=Preferences(("music",))) == [Waiting("z")]
    assert m.candidates_read == BUCKET_SCAN
    assert m.start("y", 1.0, preferences=Preferences(("music",))) == [Paired("y", "w0", ("music",), "interest")]


def test_a_crowded_open_pool_is_sampled() -> None:
    m = make(rematch_cooldown=100.0)
    for i in range(10_000):
        m._pool.add(i)  # accepting anyone, all kept from the newcomer by cooldowns
        m._cooldowns.add("z", i, 100.0)
    assert m.start("z", 1.0) == [Waiting("z")]
    assert m.candidates_read == SCAN_LIMIT


def test_expire_does_a_bounded_amount_of_work_per_call() -> None:
    m = make(interest_wait=5.0, expire_budget=1000)
    for i in range(3000):
        m.start(i, 0.0, preferences=Preferences((f"tag{i}",)))
    assert m.waiting_count == 3000
    assert m.expire(4.5) == []
    for _ in range(3):  # each due widening pairs with the one before it: 1000 widenings, 500 pairs
        events = m.expire(5.0)
        assert len(events) == 500 and all(e.basis == "any" for e in events)  # type: ignore[union-attr]
    assert m.waiting_count == 0 and m.expire(6.0) == []


def test_counters_and_wait_start() -> None:
    m = make(interest_wait=2.0)
    m.start("a", 0.0, preferences=Preferences(("chess",), ("en",)))
    assert m.waiting_since("a") == 0.0 and m.waiting_since("b") is None
    m.start("b", 0.5, preferences=Preferences(("chess",)))
    m.start("c", 1.0, preferences=Preferences((), ("en",)))
    m.start("d", 1.0, preferences=Preferences((), ("en",)))
    m.start("e", 1.0)
    m.start("f", 1.0)
    assert m.pairs_by_basis == {"interest": 1, "language": 1, "any": 1}
    assert m.pairs_made == 3
    assert m.preferences_of("a") == Preferences(("chess",), ("en",))


def test_everything_is_forgotten_when_everyone_leaves() -> None:
    m = make(interest_wait=1.0, language_wait=2.0, rematch_cooldown=3.0)
    rng = random.Random(5)
    people = [f"p{i}" for i in range(50)]
    now = 0.0
    for _ in range(3000):
        now += 0.1
        who = rng.choice(people)
        prefs = Preferences(tuple(rng.sample(["a", "b", "c", "d"], rng.randint(0, 2))), ("en",), rng.random() < 0.1)
        op = rng.choice(["start", "next", "stop", "expire"])
        if op == "expire":
            m.expire(now)
        elif op == "stop":
            m.stop(who, now)
        else:
            getattr(m, op)(who, now, preferences=prefs)
    for who in people:
        m.leave(who, now)
    m.expire(now + 10.0)
    assert m.waiting_count == m.paired_count == 0
    assert not m._prefs and not m._timeline and not len(m._cooldowns) and not m._cooldowns._until
    assert not m._pool._by_interest and not m._pool._by_language and not m._pool.open_count


def test_waiting_room_queues_keep_arrival_order_across_promotions() -> None:
    room = WaitingRoom()
    early = room.add("early", Preferences(("x",), ("en",)), 0.0, Stage.INTERESTS)
    room.add("middle", Preferences((), ("en",)), 1.0, Stage.LANGUAGE)
    room.add("late", Preferences((), ("en",)), 2.0, Stage.LANGUAGE)
    assert [w.who for w in room.with_language("en", 8)] == ["middle", "late"]
    room.promote(early, Stage.LANGUAGE)
    assert [w.who for w in room.with_language("en", 8)] == ["early", "middle", "late"]
    room.promote(early, Stage.INTERESTS)  # never narrows
    assert early.stage is Stage.LANGUAGE and room.open_count == 0
    room.promote(early, Stage.ANY)
    assert room.open_count == 1
    room.remove("middle")
    assert [w.who for w in room.with_language("en", 1)] == ["early"]
    assert [w.who for w in room.with_interest("x", 8)] == ["early"]


@pytest.mark.parametrize("bad", [{"interest_wait": -1.0}, {"rematch_cooldown": -0.5}, {"expire_budget": 0}])
def test_settings_are_checked(bad: dict) -> None:
    with pytest.raises(ValueError):
        Matchmaker(**bad)
