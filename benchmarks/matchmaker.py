"""Matchmaker benchmark: 10,000 simulated people arriving, talking, pressing Next, leaving and coming
back, on a simulated clock (pure logic: no media, no network).

    python benchmarks/matchmaker.py --people 10000 --seconds 300

Scenarios, each with the same arrivals and conversation lengths:

- ``random``: nobody sends preferences (purely random pairing, as without interests);
- ``interests``: most people have 1-5 interests (a long-tailed choice among 500), a few are strict;
  everyone has a language or two; the default waits (interest 5 s, language 0 s);
- ``interests+language``: the same with ``language_wait`` 2 s (people wait up to 2 s for someone
  sharing a language);
- ``backlog``: ``interests`` while 10,000 more strict people wait throughout for interests nobody
  else has: the cost of a call must not grow with the number of people waiting.

Prints, per scenario: matchmaker calls per second (the calls of the simulation are recorded, then
replayed on a fresh matchmaker in a tight loop, best of five, in CPU time so that other processes on
the machine do not count), time to pair
in simulated seconds (p50/p95/p99, from pressing Start or Next, or the partner leaving, to being
paired), how many waiting people a call looked at on average (the work, free of timing noise), what
made the matches, the share of pairs with a language in common, and the ratio of each
scenario to ``random``.
"""

from __future__ import annotations

import argparse
import heapq
import itertools
import random
import sys
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sfu.pairing import Event, Matchmaker, Paired, PartnerLeft, Preferences

LANGUAGES = [("en", 45), ("es", 15), ("pt", 10), ("fr", 8), ("de", 7), ("ru", 7), ("tr", 5), ("ar", 3)]
TAGS = 500
EXPIRE_EVERY = 0.5


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def random_languages(rng: random.Random) -> tuple[str, ...]:
    names, weights = zip(*LANGUAGES)
    first = rng.choices(names, weights)[0]
    second = rng.choices(names, weights)[0] if rng.random() < 0.2 else first
    return tuple(dict.fromkeys((first, second)))


def interested(rng: random.Random) -> Preferences:
    """1-5 interests drawn from a long tail (tag k chosen with weight 1/(k+1)), or none (20%)."""
    languages = random_languages(rng)
    if rng.random() < 0.2:
        return Preferences((), languages)
    count = rng.randint(1, 5)
    tags = {f"tag{int(TAGS ** rng.random()) - 1}" for _ in range(count)}
    return Preferences(tuple(sorted(tags)), languages, strict=rng.random() < 0.05)


def no_preferences(rng: random.Random) -> Preferences | None:
    return None


@dataclass
class Scenario:
    name: str
    preferences: Callable[[random.Random], Preferences | None]
    language_wait: float = 0.0
    backlog: int = 0


Call = tuple[str, tuple, dict]


@dataclass
class Result:
    name: str
    setup: list[Call] = field(default_factory=list)
    calls: list[Call] = field(default_factory=list)
    cpu: float = float("inf")
    reads: int = 0
    waits: list[float] = field(default_factory=list)
    bases: dict[str, int] = field(default_factory=lambda: {"interest": 0, "language": 0, "any": 0})
    same_language: int = 0
    waiting_at_end: int = 0
    peak_waiting: int = 0

    @property
    def pairs(self) -> int:
        return sum(self.bases.values())


def simulate(scenario: Scenario, people: int, seconds: float, seed: int) -> Result:
    rng = random.Random(seed)  # the same stream of arrivals and conversations for every scenario
    prefs_rng = random.Random(seed + 1)
    mm = Matchmaker(rng=random.Random(seed + 2), language_wait=scenario.language_wait)
    result = Result(scenario.name)
    prefs: dict[Hashable, Preferences | None] = {i: scenario.preferences(prefs_rng) for i in range(people)}
    looking_since: dict[Hashable, float] = {}
    counter = itertools.count()
    queue: list[tuple[float, int, str, Hashable, Hashable]] = []
    recording = [result.setup]

    def at(when: float, kind: str, who: Hashable, other: Hashable = None) -> None:
        heapq.heappush(queue, (when, next(counter), kind, who, other))

    def call(name: str, *args: object, **kwargs: object) -> list[Event]:
        recording[0].append((name, args, kwargs))
        events: list[Event] = getattr(mm, name)(*args, **kwargs)
        return events

    def handle(events: list[Event], now: float) -> None:
        for event in events:
            if isinstance(event, PartnerLeft):
                looking_since[event.who] = now
            elif isinstance(event, Paired):
                for x in (event.a, event.b):
                    result.waits.append(now - looking_since.pop(x))
                result.bases[event.basis] += 1
                a, b = mm.preferences_of(event.a), mm.preferences_of(event.b)
                result.same_language += bool(set(a.languages) & set(b.languages))
                at(now + rng.expovariate(1 / 30.0), "end", event.a, event.b)

    for i in range(scenario.backlog):
        tags = (f"backlog{3 * i}", f"backlog{3 * i + 1}", f"backlog{3 * i + 2}")
        call("start", f"b{i}", 0.0, preferences=Preferences(tags, ("en",), strict=True))
    recording[0] = result.calls
    reads_before = mm.candidates_read
    for person in range(people):
        at(rng.uniform(0.0, 10.0), "start", person)
    for k in range(int(seconds / EXPIRE_EVERY) + 1):
        at(k * EXPIRE_EVERY, "expire", None)

    while queue and queue[0][0] <= seconds:
        now, _, kind, who, other = heapq.heappop(queue)
        if kind == "expire":
            handle(call("expire", now), now)
            result.peak_waiting = max(result.peak_waiting, mm.waiting_count - scenario.backlog)
        elif kind == "start":
            looking_since[who] = now
            handle(call("start", who, now, preferences=prefs[who]), now)
        elif kind == "end" and mm.partner_of(who) == other:
            presser = who if rng.random() < 0.5 else other
            if rng.random() < 0.9:  # Next: both look again
                looking_since[presser] = now
                handle(call("next", presser, now), now)
            else:  # leaves, comes back later (preferences sent again on Start)
                handle(call("leave", presser, now), now)
                at(now + rng.expovariate(1 / 20.0), "start", presser)
    result.waiting_at_end = mm.waiting_count - scenario.backlog
    result.reads = mm.candidates_read - reads_before
    return result


def replay(scenario: Scenario, seed: int, result: Result) -> float:
    """CPU seconds a fresh matchmaker spends on the recorded calls (after the backlog is set up)."""
    mm = Matchmaker(rng=random.Random(seed + 2), language_wait=scenario.language_wait)
    for name, args, kwargs in result.setup:
        getattr(mm, name)(*args, **kwargs)
    calls = [(getattr(mm, name), args, kwargs) for name, args, kwargs in result.calls]
    began = time.process_time()
    for method, args, kwargs in calls:
        method(*args, **kwargs)
    return time.process_time() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--people", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=120.0, help="simulated time")
    parser.add_argument("--backlog", type=int, default=10_000, help="strict people waiting throughout")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=5, help="timed replays per scenario (best kept)")
    args = parser.parse_args()

    scenarios = [
        Scenario("random", no_preferences),
        Scenario("interests", interested),
        Scenario("interests+language", interested, language_wait=2.0),
        Scenario("backlog", interested, backlog=args.backlog),
    ]
    print(f"{args.people} people, {args.seconds:.0f} simulated seconds, conversations ~30 s, "
          f"expire every {EXPIRE_EVERY} s, seed {args.seed}")
    results = [simulate(s, args.people, args.seconds, args.seed) for s in scenarios]
    for _ in range(args.rounds):  # round-robin, so that a busy moment does not favour one scenario
        for scenario, result in zip(scenarios, results):
            result.cpu = min(result.cpu, replay(scenario, args.seed, result))
    header = (f"{'scenario':<20} {'calls':>7} {'calls/s':>9} {'us/call':>7} {'read/call':>9} {'pairs':>6} "
              f"{'pair p50':>8} {'p95':>6} {'p99':>6} {'peak queue':>10} {'waiting':>7} "
              f"{'interest/lang/any %':>20} {'same lang':>9}")
    print(header)
    print("-" * len(header))
    for r in results:
        mix = "/".join(f"{100 * r.bases[b] / max(r.pairs, 1):.0f}" for b in ("interest", "language", "any"))
        calls = len(r.calls)
        print(f"{r.name:<20} {calls:>7} {calls / r.cpu:>9,.0f} {1e6 * r.cpu / calls:>7.1f} {r.reads / calls:>9.2f} {r.pairs:>6} "
              f"{percentile(r.waits, 0.5):>7.2f}s {percentile(r.waits, 0.95):>5.2f}s {percentile(r.waits, 0.99):>5.2f}s "
              f"{r.peak_waiting:>10} {r.waiting_at_end:>7} {mix:>20} {100 * r.same_language / max(r.pairs, 1):>8.0f}%")
    base = results[0]
    print()
    for r in results[1:]:
        print(f"{r.name}: {(len(r.calls) / r.cpu) / (len(base.calls) / base.cpu):.2f}x the calls per second of random; "
              f"time to pair p50 {percentile(r.waits, 0.5):.2f}s vs {percentile(base.waits, 0.5):.2f}s, "
              f"p95 {percentile(r.waits, 0.95):.2f}s vs {percentile(base.waits, 0.95):.2f}s")


if __name__ == "__main__":
    main()
