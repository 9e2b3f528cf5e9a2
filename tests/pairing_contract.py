"""The pairing rules as a reusable test suite: every matchmaker implementation must pass it.

To run it against an implementation, subclass :class:`PairingContract` in a ``test_*`` module and
provide a ``make_matchmaker`` fixture returning a factory::

    factory(*, rematch_cooldown=5.0, interest_wait=5.0, language_wait=0.0, seed=0) -> matchmaker

The matchmaker offers the in-memory one's synchronous interface: ``start``/``next(who, now, *,
preferences=None)``, ``stop``/``leave(who, now)``, ``expire(now)`` (each returning the list of events
in the order they happened), ``state(who)``, ``partner_of(who)``, ``waiting_count``,
``paired_count``. An asynchronous implementation is wrapped in an adapter that runs each call to
completion. Every call on one factory's result must see the others' effects (one shared pool).

The random runs check each step against :class:`PairingModel`, an oracle written from the rules
alone: nobody paired twice or with themselves, partners symmetric, everyone's state as the events
said, every pair acceptable to both and announced with the right ``common``/``basis``, rematch
cooldowns honoured, and nobody left waiting while someone they could be paired with waits. Time acts
only through ``expire``: right after any call, two waiting people are never compatible by the rules
as they stood at the later of their arrival and the last ``expire``. The runs use at most 8 people,
so implementations that sample (the in-memory one tries 8 candidates per queue) are exact.
Times and waits are multiples of 1/4 s, exact in binary floating point.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sfu.pairing import NO_PREFERENCES, Idle, Paired, PartnerLeft, Preferences, Waiting

Factory = Callable[..., Any]


def prefs(*interests: str, languages: tuple[str, ...] = (), strict: bool = False) -> Preferences:
    return Preferences(tuple(interests), languages, strict)


# -- the oracle ----------------------------------------------------------------------------------
@dataclass
class Person:
    state: str = "idle"  # idle | waiting | paired | searching (only within one call)
    partner: Hashable | None = None
    prefs: Preferences = NO_PREFERENCES
    since: float = 0.0


class PairingModel:
    """What the rules say, tracked from the calls made and the events they returned."""

    def __init__(self, rematch_cooldown: float, interest_wait: float, language_wait: float) -> None:
        self.rematch_cooldown = rematch_cooldown
        self.interest_wait = interest_wait
        self.language_wait = language_wait
        self.people: dict[Hashable, Person] = {}
        self.apart_until: dict[frozenset[Hashable], float] = {}
        self.last_expire = -math.inf
        self.pairs: list[Paired] = []

    def stage(self, p: Person, at: float) -> int:
        """0: only a common interest; 1: also a common language; 2: anyone."""
        if p.prefs.strict and p.prefs.interests:
            return 0
        interest_wait = self.interest_wait if p.prefs.interests else 0.0
        language_wait = self.language_wait if p.prefs.languages else 0.0
        if at >= p.since + max(interest_wait, language_wait):
            return 2
        return 1 if at >= p.since + interest_wait else 0

    def basis(self, a: Person, b: Person, at_a: float, at_b: float) -> str | None:
        """What would make a match between ``a`` and ``b``, or None if one of them refuses."""
        if set(a.prefs.interests) & set(b.prefs.interests):
            return "interest"
        lower = min(self.stage(a, at_a), self.stage(b, at_b))
        shares_language = bool(set(a.prefs.languages) & set(b.prefs.languages))
        if lower >= 1 and shares_language:
            return "language"
        return "any" if lower == 2 else None

    def apart(self, a: Hashable, b: Hashable, at: float) -> bool:
        return self.apart_until.get(frozenset((a, b)), -math.inf) > at

    # -- one call --------------------------------------------------------------------------------
    def call(self, mm: Any, op: str, who: Hashable, now: float, preferences: Preferences | None) -> list:
        if op == "expire":
            events = mm.expire(now)
        elif op in ("start", "next"):
            p = self.people.setdefault(who, Person())
            changed = preferences is not None and preferences != p.prefs
            if preferences is not None:
                p.prefs = preferences
            if p.state == "idle" or (p.state == "waiting" and changed):
                p.state, p.since = "searching", now
            events = getattr(mm, op)(who, now, preferences=preferences)
        else:
            self.people.setdefault(who, Person())
            events = getattr(mm, op)(who, now)
        self._apply(op, who, now, events)
        if op == "expire":
            self.last_expire = now
        return events

    def _apply(self, op: str, who: Hashable, now: float, events: list) -> None:
        for event in events:
            if isinstance(event, Paired):
                self._paired(event, now)
            elif isinstance(event, Waiting):
                p = self.people[event.who]
                assert p.state in ("searching", "waiting"), (event, p)
                p.state = "waiting"
            elif isinstance(event, PartnerLeft):
                self._partner_left(op, who, event.who, now)
            elif isinstance(event, Idle):
                assert op == "stop" and event.who == who, event
                self.people[who].state = "idle"
            else:
                pytest.fail(f"unknown event {event!r}")
        if op == "stop":
            assert events and events[-1] == Idle(who), events
        if op == "leave":
            self.people[who] = Person()
        if op == "expire":
            assert all(isinstance(e, Paired) for e in events), events
        stuck = [name for name, p in self.people.items() if p.state == "searching"]
        assert not stuck, f"{stuck} neither waiting nor paired after {op}: {events}"

    def _paired(self, event: Paired, now: float) -> None:
        assert event.a != event.b, f"{event.a} paired with themselves"
        a, b = self.people[event.a], self.people[event.b]
        for name, p in ((event.a, a), (event.b, b)):
            assert p.state in ("waiting", "searching"), f"{name} paired while {p.state}: {event}"
        assert not self.apart(event.a, event.b, now), f"cooldown broken: {event} at {now}"
        basis = self.basis(a, b, now, now)
        assert basis is not None, f"{event} not acceptable to both at {now}: {a} {b}"
        assert event.basis == basis, (event, basis)
        assert event.common == tuple(sorted(set(a.prefs.interests) & set(b.prefs.interests))), event
        a.state, a.partner = "paired", event.b
        b.state, b.partner = "paired", event.a
        self.pairs.append(event)

    def _partner_left(self, op: str, who: Hashable, left: Hashable, now: float) -> None:
        x = self.people[left]
        assert x.state == "paired" and x.partner == who, (op, who, left, x)
        assert op in ("next", "stop", "leave"), f"{op} split a pair"
        x.state, x.partner, x.since = "searching", None, now
        y = self.people[who]
        y.partner = None
        if op == "next":
            y.state, y.since = "searching", now
            key = frozenset((who, left))
            self.apart_until[key] = max(self.apart_until.get(key, -math.inf), now + self.rematch_cooldown)
        else:
            y.state = "idle"

    # -- checks after a call ---------------------------------------------------------------------
    def check(self, mm: Any) -> None:
        for name, p in self.people.items():
            assert mm.state(name).value == p.state, (name, mm.state(name), p)
            assert mm.partner_of(name) == p.partner, (name, mm.partner_of(name), p)
            if p.partner is not None:
                assert self.people[p.partner].partner == name
        waiting = [name for name, p in self.people.items() if p.state == "waiting"]
        assert mm.waiting_count == len(waiting)
        assert mm.paired_count == sum(p.state == "paired" for p in self.people.values())
        for x, y in itertools.combinations(waiting, 2):
            a, b = self.people[x], self.people[y]
            at_a, at_b = max(a.since, self.last_expire), max(b.since, self.last_expire)
            if self.apart(x, y, max(at_a, at_b)):
                continue
            basis = self.basis(a, b, at_a, at_b)
            assert basis is None, f"{x} and {y} both waiting though compatible ({basis}): {a} {b}"


# -- strategies ----------------------------------------------------------------------------------
PEOPLE = [f"p{i}" for i in range(8)]
TAGS = ["chess", "film", "music"]
LANGUAGES = ["en", "fr"]
STEPS = [0.0, 0.25, 0.5, 1.0, 2.5]
OPS = ["start", "start", "next", "next", "stop", "leave", "expire", "expire"]

preferences_strategy = st.none() | st.builds(
    Preferences,
    st.lists(st.sampled_from(TAGS), unique=True, max_size=3).map(tuple),
    st.lists(st.sampled_from(LANGUAGES), unique=True, max_size=2).map(tuple),
    st.booleans(),
)
operation_strategy = st.tuples(
    st.sampled_from(OPS), st.sampled_from(PEOPLE), st.sampled_from(STEPS), preferences_strategy
)
config_strategy = st.fixed_dictionaries({
    "rematch_cooldown": st.sampled_from([0.0, 1.0, 2.5]),
    "interest_wait": st.sampled_from([0.0, 1.0, 2.5]),
    "language_wait": st.sampled_from([0.0, 1.5]),
})


def random_preferences(rng: random.Random) -> Preferences | None:
    if rng.random() < 0.3:
        return None
    return Preferences(
        tuple(rng.sample(TAGS, rng.randint(0, 3))),
        tuple(rng.sample(LANGUAGES, rng.randint(0, 2))),
        rng.random() < 0.2,
    )


class PairingContract:
    """Subclass with a ``make_matchmaker`` fixture (see the module docstring)."""

    # -- random runs against the oracle ------------------------------------------------------------
    @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(config=config_strategy, seed=st.integers(0, 2**16), operations=st.lists(operation_strategy, max_size=60))
    def test_random_operations_follow_the_rules(
        self, make_matchmaker: Factory, config: dict, seed: int, operations: list
    ) -> None:
        mm = make_matchmaker(seed=seed, **config)
        model = PairingModel(**config)
        now = 0.0
        for op, who, step, preferences in operations:
            now += step
            model.call(mm, op, who, now, preferences)
            model.check(mm)

    @pytest.mark.parametrize("seed", range(4))
    def test_long_random_runs_follow_the_rules(self, make_matchmaker: Factory, seed: int) -> None:
        rng = random.Random(seed)
        config = {"rematch_cooldown": 2.5, "interest_wait": 2.5, "language_wait": 1.5 * (seed % 2)}
        mm = make_matchmaker(seed=seed, **config)
        model = PairingModel(**config)
        now = 0.0
        for _ in range(3000):
            now += rng.choice(STEPS)
            op = rng.choice(OPS)
            model.call(mm, op, rng.choice(PEOPLE), now, random_preferences(rng))
            model.check(mm)
        assert {p.basis for p in model.pairs} == {"interest", "language", "any"}

    # -- the rules, one at a time ----------------------------------------------------------------
    def test_most_interests_in_common_first(self, make_matchmaker: Factory) -> None:
        mm = make_matchmaker()
        mm.start("a", 0.0, preferences=prefs("music"))
        mm.start("b", 0.25, preferences=prefs("film", "chess"))
        events = mm.start("c", 0.5, preferences=prefs("music", "film", "chess"))
        assert events == [Paired("c", "b", ("chess", "film"), "interest")]
        assert mm.state("a").value == "waiting"

    def test_longest_waiting_first_among_equals(self, make_matchmaker: Factory) -> None:
        mm = make_matchmaker()
        mm.start("a", 0.0, preferences=prefs("music"))
        mm.start("b", 0.25, preferences=prefs("film"))
        assert mm.start("c", 0.5, preferences=prefs("film", "music")) == [Paired("c", "a", ("music",), "interest")]
        assert mm.start("d", 0.75, preferences=prefs("film", "music")) == [Paired("d", "b", ("film",), "interest")]

    def test_a_shared_language_breaks_ties(self, make_matchmaker: Factory) -> None:
        mm = make_matchmaker()
        mm.start("a", 0.0, preferences=prefs("music", languages=("en",)))
        mm.start("b", 0.25, preferences=prefs("film", languages=("fr",)))
        events = mm.start("c", 0.5, preferences=prefs("music", "film", languages=("fr", "de")))
        assert events == [Paired("c", "b", ("film",), "interest")]

    def test_a_shared_language_is_preferred_among_strangers(self, make_matchmaker: Factory) -> None:
        for seed in range(20):
            mm = make_matchmaker(seed=seed)
            mm.start("en", 0.0, preferences=prefs(languages=("en",)))
            mm.start("fr", 0.0, preferences=prefs(languages=("fr",)))
            mm.next("en", 1.0)  # both wait again, kept apart by the cooldown: two to choose from
            assert mm.start("c", 1.25, preferences=prefs(languages=("fr",))) == [Paired("c", "fr", (), "language")]
            assert mm.start("d", 1.5, preferences=prefs(languages=("en",))) == [Paired("d", "en", (), "language")]

    def test_a_language_is_never_a_wall(self, make_matchmaker: Factory) -> None:
        mm = make_matchmaker()
        mm.start("a", 0.0, preferences=prefs(languages=("en",)))
        assert mm.start("b", 0.0, preferences=prefs(languages=("tr",))) == [Paired("b", "a", (), "any")]

    def test_language_wait_keeps_people_in_their_language_for_a_while(self, make_matchmaker: Factory) -> None:
        mm = make_matchmaker(language_wait=2.0)
        assert mm.start("a", 0.0, preferences=prefs(languages=("en",))) == [Waiting("a")]
        assert mm.start("b", 0.25, preferences=prefs(languages=("fr",))) == [Waiting("b")]
        assert mm.start("c", 0.5, preferences=prefs(languages=("en",))) == [Paired("c", "a", (), "language")]
        assert mm.expire(2.0) == []
        assert mm.expire(2.25) == []  # b accepts anyone now, but nobody else waits
        assert mm.start("d", 3.0, preferences=prefs(languages=("de",))) == [Waiting("d")]  # d's turn to hope
        assert mm.expire(5.0) == [Paired("d", "b", (), "any")]

    def test_anyone_will_do_after_the_interest_wait(self, make_matchmaker: Factory) -> None:
        mm = make_matchmaker(interest_wait=5.0)
        assert mm.start("a", 0.0, preferences=prefs("music")) == [Waiting("a")]
        assert mm.start("b", 1.0) == [Waiting("b")]  # a still hopes for a common interest
        assert mm.expire(4.75) == []
        assert mm.expire(5.0) == [Paired("a", "b", (), "any")]

    def test_two_fallbacks_meet_each_other(self, make_matchmaker: Factory) -> None:
        mm = make_matchmaker(interest_wait=5.0)
        mm.start("a", 0.0, preferences=prefs("music", languages=("en",)))
        mm.start("b", 1.0, preferences=prefs("chess", languages=("en",)))
        assert mm.expire(5.0) == []
        assert mm.expire(6.0) == [Paired("b", "a", (), "language")]

    def test_strict_never_falls_back(self, make_matchmaker: Factory) -> None:
        mm = make_matchmaker(interest_wait=5.0)
        mm.start("a", 0.0, preferences=prefs("music", strict=True))
        mm.start("b", 0.0)
        assert mm.expire(1000.0) == []
        assert mm.start("c", 1000.0, preferences=prefs("film")) == [Waiting("c")]
        assert mm.expire(1005.0) == [Paired("c", "b", (), "any")]
        assert mm.state("a").value == "waiting"
        assert mm.start("d", 1006.0, preferences=prefs("jazz", "music")) == [Paired("d", "a", ("music",), "interest")]

    def test_an_overdue_waiter_is_not_starved_by_better_matches(self, make_matchmaker: Factory) -> None:
        """Newcomers sharing more keep arriving; the earlier waiter is served once overdue."""
        mm = make_matchmaker(interest_wait=5.0)
        mm.start("w", 0.0, preferences=prefs("chess", strict=True))
        served_at = None
        for i in range(40):
            now = 0.5 * i + 0.25
            mm.start(f"y{i}", now, preferences=prefs("film", "go"))
            events = mm.start(f"x{i}", now, preferences=prefs("chess", "film", "go"))
            mm.expire(now)
            (paired,) = events
            if paired.b == "w":
                served_at = now
                break
            assert paired.b == f"y{i}" and now < 5.0  # more in common wins while w is not overdue
        assert served_at == 5.25

    def test_cooldown_holds_for_people_with_interests(self, make_matchmaker: Factory) -> None:
        mm = make_matchmaker(rematch_cooldown=5.0)
        mm.start("a", 0.0, preferences=prefs("music"))
        mm.start("b", 0.0, preferences=prefs("music"))
        assert mm.next("a", 1.0) == [PartnerLeft("b"), Waiting("b"), Waiting("a")]
        assert mm.expire(5.75) == []
        assert mm.expire(6.0) == [Paired("a", "b", ("music",), "interest")]

    def test_cooldown_covers_every_recent_partner(self, make_matchmaker: Factory) -> None:
        """a leaves b, then d; b leaves c: a and b still may not meet before their cooldown ends."""
        mm = make_matchmaker(rematch_cooldown=5.0, interest_wait=0.0)
        mm.start("a", 0.0, preferences=prefs("jazz"))
        mm.start("b", 0.0, preferences=prefs("music"))
        mm.next("a", 1.0)
        assert mm.start("c", 1.0, preferences=prefs("music", strict=True)) == [Paired("c", "b", ("music",), "interest")]
        assert mm.start("d", 1.0, preferences=prefs("jazz", strict=True)) == [Paired("d", "a", ("jazz",), "interest")]
        mm.next("a", 2.0)
        assert mm.next("b", 2.0) == [PartnerLeft("c"), Waiting("c"), Waiting("b")]
        assert mm.expire(5.75) == []
        assert mm.expire(6.0) == [Paired("a", "b", (), "any")]

    def test_next_with_new_preferences(self, make_matchmaker: Factory) -> None:
        mm = make_matchmaker()
        mm.start("a", 0.0, preferences=prefs("music"))
        mm.start("b", 0.0, preferences=prefs("music"))
        mm.start("c", 0.0, preferences=prefs("film"))
        events = mm.next("a", 1.0, preferences=prefs("film"))
        assert events == [PartnerLeft("b"), Waiting("b"), Paired("a", "c", ("film",), "interest")]

    def test_waiting_with_changed_preferences_searches_again(self, make_matchmaker: Factory) -> None:
        mm = make_matchmaker()
        mm.start("a", 0.0, preferences=prefs("music"))
        mm.start("b", 0.0, preferences=prefs("film"))
        assert mm.start("a", 1.0, preferences=prefs("music")) == [Waiting("a")]
        assert mm.start("a", 1.0, preferences=prefs("film")) == [Paired("a", "b", ("film",), "interest")]

    def test_preferences_persist_until_leave(self, make_matchmaker: Factory) -> None:
        mm = make_matchmaker()
        mm.start("a", 0.0, preferences=prefs("music", strict=True))
        mm.stop("a", 1.0)
        mm.start("a", 2.0)  # no preferences sent: the earlier ones still hold
        mm.start("b", 2.0)
        assert mm.expire(100.0) == [] and mm.partner_of("a") is None
        mm.leave("a", 101.0)
        mm.start("a", 102.0)
        assert mm.partner_of("a") == "b"

    def test_steady_stream_everyone_is_paired_within_a_bound(self, make_matchmaker: Factory) -> None:
        """Arrivals every 0.25 s with random interests; each conversation ends after 2 s, when both
        leave (the one left first is re-queued for a moment, and may meet someone else)."""
        rng = random.Random(7)
        mm = make_matchmaker(seed=7, interest_wait=5.0)
        looking_since: dict[Hashable, float] = {}
        waits: list[float] = []
        ends: list[tuple[float, Hashable, Hashable]] = []
        tags = [f"t{i}" for i in range(12)]

        def handle(events: list, now: float) -> None:
            for event in events:
                if isinstance(event, PartnerLeft):
                    looking_since[event.who] = now
                elif isinstance(event, Paired):
                    waits.extend(now - looking_since.pop(x) for x in (event.a, event.b))
                    ends.append((now + 2.0, event.a, event.b))

        now = 0.0
        for i in range(1200):
            now = 0.25 * i
            while ends and ends[0][0] <= now:
                _, a, b = ends.pop(0)
                if mm.partner_of(a) == b:
                    for x in (a, b):
                        handle(mm.leave(x, now), now)
                        looking_since.pop(x, None)
            if i % 2 == 0:
                handle(mm.expire(now), now)
            who = f"p{i}"
            looking_since[who] = now
            interests = rng.sample(tags, rng.randint(0, 3))
            handle(mm.start(who, now, preferences=prefs(*interests, languages=(rng.choice(["en", "fr"]),))), now)
        still_waiting = [now - since for since in looking_since.values()]
        assert len(waits) > 1000
        # the interest wait, plus a little for the sweep and for someone open to anyone to turn up
        assert max(waits + still_waiting) <= 5.0 + 2.0, (max(waits), max(still_waiting))
