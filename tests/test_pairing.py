"""Unit tests of the matchmaker: pure logic, no media, no network."""

from __future__ import annotations

import random

import pytest

from sfu.pairing import Idle, Matchmaker, Paired, PairingState, PartnerLeft, Waiting


def make(seed: int = 1, cooldown: float = 5.0) -> Matchmaker:
    return Matchmaker(rematch_cooldown=cooldown, rng=random.Random(seed))


def test_first_waits_second_pairs() -> None:
    m = make()
    assert m.start("a", 0) == [Waiting("a")]
    events = m.start("b", 0)
    assert len(events) == 1 and isinstance(events[0], Paired)
    assert {events[0].a, events[0].b} == {"a", "b"}
    assert m.partner_of("a") == "b" and m.partner_of("b") == "a"
    assert m.state("a") is PairingState.PAIRED
    assert m.waiting_count == 0 and m.paired_count == 2


def test_start_is_idempotent() -> None:
    m = make()
    m.start("a", 0)
    assert m.start("a", 0) == [Waiting("a")]
    assert m.waiting_count == 1
    m.start("b", 0)
    assert m.start("a", 0) == []  # already paired: nothing changes
    assert m.partner_of("a") == "b"


def test_next_requeues_both_and_avoids_immediate_rematch() -> None:
    m = make()
    m.start("a", 0)
    m.start("b", 0)
    events = m.next("a", 1)
    assert events == [PartnerLeft("b"), Waiting("b"), Waiting("a")]
    assert m.state("a") is PairingState.WAITING and m.state("b") is PairingState.WAITING


def test_next_prefers_anyone_else_waiting() -> None:
    for seed in range(50):
        m = make(seed)
        m.start("a", 0)
        m.start("b", 0)
        m.start("c", 0)  # waits
        events = m.next("a", 1)
        # b is re-queued first and meets c; a waits rather than going straight back to b
        assert PartnerLeft("b") in events
        assert m.partner_of("a") is None
        assert m.partner_of("b") == "c"
        assert m.state("a") is PairingState.WAITING


def test_next_presser_meets_third_party() -> None:
    m = make()
    m.start("a", 0)
    m.start("b", 0)
    m.start("c", 0)
    m.start("d", 0)  # c-d paired
    m.start("e", 0)  # e waits
    m.next("a", 1)  # b is re-queued first and pairs with e; a waits
    assert m.partner_of("b") == "e"
    assert m.state("a") is PairingState.WAITING
    m.start("f", 2)
    assert m.partner_of("a") == "f"


def test_cooldown_expiry_pairs_the_two_left_alone() -> None:
    m = make(cooldown=5)
    m.start("a", 0)
    m.start("b", 0)
    m.next("a", 1)
    assert m.expire(3) == []
    events = m.expire(6.5)
    assert len(events) == 1 and {events[0].a, events[0].b} == {"a", "b"}
    assert m.waiting_count == 0


def test_cooldown_expiry_ignores_people_who_moved_on() -> None:
    m = make(cooldown=5)
    m.start("a", 0)
    m.start("b", 0)
    m.next("a", 1)
    m.start("c", 2)
    assert m.partner_of("c") in ("a", "b")
    assert m.expire(10) == []


def test_stop_frees_and_requeues_partner() -> None:
    m = make()
    m.start("a", 0)
    m.start("b", 0)
    events = m.stop("a", 1)
    assert events == [PartnerLeft("b"), Waiting("b"), Idle("a")]
    assert m.state("a") is PairingState.IDLE
    assert m.state("b") is PairingState.WAITING


def test_stop_while_waiting_and_idle() -> None:
    m = make()
    m.start("a", 0)
    assert m.stop("a", 0) == [Idle("a")]
    assert m.waiting_count == 0
    assert m.stop("a", 0) == [Idle("a")]


def test_leave_notifies_partner_and_forgets() -> None:
    m = make()
    m.start("a", 0)
    m.start("b", 0)
    m.start("c", 0)
    events = m.leave("a", 1)
    assert events[0] == PartnerLeft("b")
    assert m.partner_of("b") == "c"
    assert m.state("a") is PairingState.IDLE
    assert m.leave("a", 1) == []


def test_next_while_idle_starts() -> None:
    m = make()
    assert m.next("a", 0) == [Waiting("a")]


def test_random_partner_distribution() -> None:
    """Who you meet is random among the waiting, not first-come."""
    met = {}
    for seed in range(300):
        m = make(seed)
        for who in ("a", "b", "c", "d"):
            m._pool.add(who)  # four people already waiting
        m.start("z", 0)
        met[m.partner_of("z")] = met.get(m.partner_of("z"), 0) + 1
    assert set(met) == {"a", "b", "c", "d"}
    assert min(met.values()) > 40


@pytest.mark.parametrize("seed", range(5))
def test_random_operations_keep_invariants(seed: int) -> None:
    rng = random.Random(seed)
    m = Matchmaker(rematch_cooldown=2.0, rng=random.Random(seed))
    people = [f"p{i}" for i in range(30)]
    now = 0.0
    for _ in range(5000):
        now += rng.random() * 0.1
        who = rng.choice(people)
        op = rng.choice(["start", "next", "stop", "leave", "expire"])
        if op == "expire":
            m.expire(now)
        else:
            getattr(m, op)(who, now)
        # invariants: partners are symmetric; nobody is both waiting and paired
        for p in people:
            partner = m.partner_of(p)
            if partner is not None:
                assert m.partner_of(partner) == p and partner != p
                assert p not in m._pool
        # nobody waits while a compatible partner waits too, in small pools
        waiting = list(m._pool)
        for i, a in enumerate(waiting):
            for b in waiting[i + 1 :]:
                assert not m._compatible(a, b, now) or m._cooldowns, (a, b)


def test_large_pool_operations_are_constant_time() -> None:
    """100k participants: each operation touches a bounded number of candidates."""
    m = make()
    for i in range(100_000):
        m.start(i, 0)
    assert m.paired_count == 100_000
    for i in range(0, 100_000, 2):
        m.next(i, 1)
    assert m.paired_count + m.waiting_count == 100_000
