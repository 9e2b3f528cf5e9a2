"""Several OS processes share one pool on a real redis-server, each serving its own people and doing
random start/next/stop/leave/expire as fast as it can, with the real clock.

Afterwards every operation, put back in the order the pool applied it (its number), is replayed
through the contract's oracle (tests/pairing_contract.py): nobody paired twice or with themselves,
partners symmetric, every pair acceptable to both with the right basis, cooldowns honoured, nobody
left waiting while a compatible person waited (checked whenever few enough people wait for the
matchmaker's bounded search to be exhaustive). Each process must have received, through its inbox,
exactly the events of its own people, once each and in order; Redis's final state must be the
oracle's; and once time has moved on, nobody may wait while someone compatible waits.
"""

from __future__ import annotations

import asyncio
import itertools
import multiprocessing
import queue as queue_module
import random
import time
from collections.abc import Hashable
from dataclasses import dataclass
from multiprocessing.synchronize import Barrier
from typing import Any

from sfu.pairing import Event, Paired, PairingState, Preferences
from sfu.pairing.matchmaker import SCAN_LIMIT
from sfu.pairing.shared import Delivery, EventFeed, Keys, PairingRules, ProcessId, RedisMatchmaker, connect

from .pairing_contract import PairingModel, random_preferences
from .redis_server import RedisServer, redis_server, unique_prefix  # noqa: F401  (fixture)

PROCESSES = 3
PEOPLE_PER_PROCESS = 10
OPERATIONS = 500
OPS = ["start", "start", "next", "next", "stop", "leave", "expire", "expire"]
RULES: dict[str, Any] = {"rematch_cooldown": 0.2, "interest_wait": 0.1, "language_wait": 0.15}


@dataclass(frozen=True)
class Record:
    """One operation as the process that made it saw it."""

    op: str
    who: str | None
    preferences: Preferences | None
    number: int
    at: float
    events: list[Event]


def process_id(worker: int) -> ProcessId:
    return ProcessId("node", f"w{worker}", "run")


def owner(who: Hashable) -> ProcessId:
    return process_id(int(str(who).split("-")[0][1:]))


def people_of(worker: int) -> list[str]:
    return [f"w{worker}-p{i}" for i in range(PEOPLE_PER_PROCESS)]


Result = tuple[list[Record], list[Delivery], str]


def serve(url: str, prefix: str, worker: int, seed: int, together: Barrier, results: multiprocessing.Queue) -> None:
    """One process: its operations, the deliveries its inbox handed over, and the last entry read."""
    results.put((worker, asyncio.run(_serve(url, prefix, worker, seed, together))))


def run_processes(url: str, prefix: str, timeout: float = 300.0) -> list[Result]:
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    together = context.Barrier(PROCESSES)
    processes = [
        context.Process(target=serve, args=(url, prefix, w, 1000 + w, together, queue), daemon=True)
        for w in range(PROCESSES)
    ]
    for process in processes:
        process.start()
    results: dict[int, Result] = {}
    deadline = time.monotonic() + timeout
    try:
        while len(results) < PROCESSES:
            try:
                worker, result = queue.get(timeout=1.0)
                results[worker] = result
            except queue_module.Empty:
                failed = [p.exitcode for p in processes if p.exitcode not in (None, 0)]
                assert not failed, f"a process failed (exit codes {failed})"
                assert time.monotonic() < deadline, "the processes did not finish in time"
    finally:
        for process in processes:
            process.join(10)
            if process.is_alive():
                process.kill()
    return [results[w] for w in range(PROCESSES)]


async def _serve(url: str, prefix: str, worker: int, seed: int, together: Barrier) -> Result:
    client = await connect(url)
    await asyncio.to_thread(together.wait, 120.0)  # all connected: start at once
    keys, process = Keys(prefix), process_id(worker)
    rng = random.Random(seed)
    mm = RedisMatchmaker(client, process, keys=keys, rules=PairingRules(**RULES), rng=random.Random(seed))
    inbox: list[Delivery] = []
    feed = EventFeed(client, process, inbox.append, keys=keys, block=0.1)
    reader = asyncio.create_task(feed.run())
    records: list[Record] = []
    people = people_of(worker)
    for _ in range(OPERATIONS):
        op, who = rng.choice(OPS), rng.choice(people)
        prefs = random_preferences(rng) if op in ("start", "next") else None
        outcome = await mm.operate(op, time.time(), None if op == "expire" else who, prefs)  # type: ignore[arg-type]
        records.append(Record(op, None if op == "expire" else who, prefs, outcome.op, outcome.at, outcome.events))
        await asyncio.sleep(rng.choice([0.0, 0.0, 0.001, 0.003]))
    feed.stop()
    await asyncio.wait_for(reader, 30.0)
    await client.aclose()
    return records, inbox, feed.last_id


class Replayed:
    """Stands for the matchmaker in the oracle: each call returns what the real call returned."""

    def __init__(self, events: list[Event]) -> None:
        self.events = events

    def start(self, who: str, now: float, *, preferences: Preferences | None = None) -> list[Event]:
        return self.events

    next = start

    def stop(self, who: str, now: float) -> list[Event]:
        return self.events

    leave = stop

    def expire(self, now: float) -> list[Event]:
        return self.events


class ReplayModel(PairingModel):
    def compatible_waiting(self) -> list[tuple[Hashable, Hashable]] | None:
        """Two waiting people the rules say should have been paired (the contract's check); None when
        too many wait for a bounded search to be exhaustive."""
        waiting = [name for name, p in self.people.items() if p.state == "waiting"]
        if len(waiting) > SCAN_LIMIT:
            return None
        found = []
        for x, y in itertools.combinations(waiting, 2):
            a, b = self.people[x], self.people[y]
            at_a, at_b = max(a.since, self.last_expire), max(b.since, self.last_expire)
            if not self.apart(x, y, max(at_a, at_b)) and self.basis(a, b, at_a, at_b) is not None:
                found.append((x, y))
        return found


def test_many_processes_keep_every_rule(redis_server: RedisServer) -> None:  # noqa: F811
    prefix = unique_prefix()
    results = run_processes(redis_server.url, prefix)
    asyncio.run(_check(redis_server.url, prefix, results))


async def _check(url: str, prefix: str, results: list[Result]) -> None:
    client = await connect(url)
    keys = Keys(prefix)
    records = sorted((r for result in results for r in result[0]), key=lambda r: r.number)
    assert len({r.number for r in records}) == len(records) == PROCESSES * OPERATIONS
    assert all(a.at <= b.at for a, b in itertools.pairwise(records)), "the pool's time went back"
    by_process = {r.number: w for w, result in enumerate(results) for r in result[0]}
    switches = sum(by_process[a.number] != by_process[b.number] for a, b in itertools.pairwise(records))
    assert switches > len(records) // 5, f"the processes hardly ran at the same time ({switches} switches)"

    # What each process's inbox received, including what it had not read yet when it stopped.
    received: dict[ProcessId, list[Delivery]] = {}
    for worker, (_records, inbox, last_id) in enumerate(results):
        feed = EventFeed(client, process_id(worker), inbox.append, keys=keys)
        feed.last_id = last_id
        while await feed.poll():
            pass
        received[process_id(worker)] = inbox

    # Replay in the pool's order through the oracle.
    model = ReplayModel(**RULES)
    checked = 0
    expected: dict[ProcessId, list[tuple[int, int, Event]]] = {p: [] for p in received}
    for record in records:
        model.call(Replayed(record.events), record.op, record.who, record.at, record.preferences)
        found = model.compatible_waiting()
        if found is not None:
            checked += 1
            assert not found, f"waiting though compatible after operation {record.number}: {found}"
        for index, event in enumerate(record.events, 1):
            concerned = (event.a, event.b) if isinstance(event, Paired) else (event.who,)
            for process in dict.fromkeys(owner(who) for who in concerned):
                expected[process].append((record.number, index, event))
    across = sum(owner(p.a) != owner(p.b) for p in model.pairs)
    print(f"{len(records)} operations ({switches} switches between processes), {len(model.pairs)} pairs "
          f"({across} across processes), the waiting room checked after {checked}")
    assert across > len(model.pairs) // 3
    assert checked > len(records) // 2, checked
    assert len(model.pairs) > 100 and {p.basis for p in model.pairs} == {"interest", "language", "any"}

    # Every process got exactly its people's events, each once, in the pool's order.
    acted_at = {r.number: r.at for r in records}
    for process, inbox in received.items():
        assert [(d.op, d.index, d.event) for d in inbox] == expected[process], process
        assert all(d.at == acted_at[d.op] for d in inbox)

    # Redis holds what the oracle holds.
    mm = RedisMatchmaker(client, ProcessId("node", "checker"), keys=keys, rules=PairingRules(**RULES))
    everyone = [who for w in range(PROCESSES) for who in people_of(w)]
    await _same_state(mm, model, everyone)

    # Once every wait and cooldown is over, nobody waits while someone compatible does.
    later = records[-1].at + 100.0
    while True:
        outcome = await mm.operate("expire", later)
        model.call(Replayed(outcome.events), "expire", None, outcome.at, None)
        if not outcome.events:
            break
    waiting = [who for who in everyone if model.people.get(who) and model.people[who].state == "waiting"]
    for x, y in itertools.combinations(waiting, 2):
        assert model.basis(model.people[x], model.people[y], later, later) is None, (x, y)
    await _same_state(mm, model, everyone)
    await client.aclose()


async def _same_state(mm: RedisMatchmaker, model: PairingModel, everyone: list[str]) -> None:
    snapshot = await mm.snapshot(everyone)
    for who in everyone:
        person = model.people.get(who)
        state, partner = snapshot[who]
        if person is None:
            assert state is PairingState.IDLE
            continue
        assert (state.value, partner) == (person.state, person.partner), who
        if partner is not None:
            assert snapshot[partner] == (PairingState.PAIRED, who)
    counts = await mm.counts()
    assert counts.waiting == sum(p.state == "waiting" for p in model.people.values())
    assert counts.paired == sum(p.state == "paired" for p in model.people.values())
