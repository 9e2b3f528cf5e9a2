"""The shared pool on Redis against the in-memory matchmaker: operations per second and time to pair,
with one and two processes, on the real clock.

    python benchmarks/matchmaker_redis.py --seconds 4

Simulated people, driven by the deliveries their process receives (as a server would be): each one
presses Start, and once paired talks for a while and presses Next; whoever is left is re-queued by the
pool. Every process also calls ``expire`` twice a second. Nobody sends preferences; the rematch
cooldown is short (``--cooldown``) so that it does not dominate the waits.

- **saturated**: many people who talk for no time at all: operations per second is the most the
  setup does (calls completed by all processes together);
- **light**: fewer people talking ``--talk`` seconds: time to pair is the machinery's latency plus
  the wait for someone free, from pressing Start or Next to the pairing reaching the person's
  process through its inbox (people re-queued because their partner left are not timed).

With two processes, "pairs within one process" is the share of pairs whose two people the same
process serves (their media need not cross a pipe): 50% if partners were drawn regardless of process.

A ``redis-server`` is started on a free loopback port in a temporary directory (``--save ''``),
unless ``--redis-url`` names one; its CPU time per operation is read from ``/proc``. Prints a table.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sfu.pairing import Matchmaker, Paired, PartnerLeft  # noqa: E402
from sfu.pairing.shared import (  # noqa: E402
    Delivery,
    EventFeed,
    Keys,
    LocalPairing,
    Pairing,
    PairingRules,
    PairingUnavailable,
    ProcessId,
    RedisMatchmaker,
    connect,
)

EXPIRE_EVERY = 0.5


@dataclass
class Load:
    name: str
    people: int
    talk: tuple[float, float]


@dataclass
class Tally:
    ops: int = 0
    errors: int = 0
    seconds: float = 0.0
    cpu: float = 0.0
    waits: list[float] = field(default_factory=list)
    pairs: int = 0  #: pairs formed whose first person this process serves
    within: int = 0  #: of those, pairs whose two people this process serves


class Crowd:
    """People of one process cycling Start → talk → Next, moved by their process's deliveries."""

    def __init__(self, pairing: Pairing, people: list[str], talk: tuple[float, float], seed: int) -> None:
        self.pairing = pairing
        self.people = people
        self.talk = talk
        self.rng = random.Random(seed)
        self.looking_since: dict[str, float] = {}
        self.partner: dict[str, str | None] = dict.fromkeys(people)
        self.paired: dict[str, asyncio.Event] = {who: asyncio.Event() for who in people}
        self.tally = Tally()
        self.running = True

    def deliver(self, delivery: Delivery) -> None:
        event, now = delivery.event, time.time()
        if isinstance(event, Paired):
            if event.a in self.partner and self.running:
                self.tally.pairs += 1
                self.tally.within += event.b in self.partner
            for who, other in ((event.a, event.b), (event.b, event.a)):
                if who in self.partner:
                    self.partner[str(who)] = str(other)
                    since = self.looking_since.pop(str(who), None)
                    if since is not None and self.running:
                        self.tally.waits.append(now - since)
                    self.paired[str(who)].set()
        elif isinstance(event, PartnerLeft) and event.who in self.partner:
            self.partner[str(event.who)] = None  # re-queued by the pool: not timed (often paired at once)
            self.paired[str(event.who)].clear()
            self.looking_since.pop(str(event.who), None)

    async def call(self, op: str, who: str | None = None) -> None:
        now = time.time()
        try:
            if op == "expire":
                await self.pairing.expire(now)
            else:
                self.looking_since[str(who)] = now
                await getattr(self.pairing, op)(who, now)
        except PairingUnavailable:
            self.tally.errors += 1
            return
        self.tally.ops += 1

    async def person(self, who: str) -> None:
        await self.call("start", who)
        while self.running:
            await self.paired[who].wait()
            partner = self.partner[who]
            await asyncio.sleep(self.rng.uniform(*self.talk))
            if self.running and self.partner[who] == partner and partner is not None:
                self.paired[who].clear()
                self.partner[who] = None
                await self.call("next", who)

    async def expirer(self) -> None:
        while self.running:
            await asyncio.sleep(EXPIRE_EVERY)
            await self.call("expire")

    async def run(self, seconds: float, start_at: float) -> Tally:
        await asyncio.sleep(max(0.0, start_at - time.time()))
        cpu, began = time.process_time(), time.monotonic()
        tasks = [asyncio.create_task(self.person(who)) for who in self.people]
        tasks.append(asyncio.create_task(self.expirer()))
        await asyncio.sleep(seconds)
        self.running = False
        self.tally.seconds = time.monotonic() - began
        self.tally.cpu = time.process_time() - cpu
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for who in self.people:
            await self.pairing.leave(who, time.time())
        return self.tally


async def in_memory(load: Load, seconds: float, cooldown: float) -> Tally:
    people = [f"p{i}" for i in range(load.people)]
    pairing = LocalPairing(Matchmaker(rematch_cooldown=cooldown))
    crowd = Crowd(pairing, people, load.talk, seed=1)
    pairing.sink = crowd.deliver
    return await crowd.run(seconds, time.time())


async def shared(url: str, prefix: str, worker: int, people: list[str], load: Load, seconds: float,
                 cooldown: float, start_at: float) -> Tally:
    client = await connect(url)
    keys, process = Keys(prefix), ProcessId("bench", str(worker))
    mm = RedisMatchmaker(client, process, keys=keys, rules=PairingRules(rematch_cooldown=cooldown))
    crowd = Crowd(mm, people, load.talk, seed=worker)
    feed = EventFeed(client, process, crowd.deliver, keys=keys, block=0.2)
    reader = asyncio.create_task(feed.run())
    tally = await crowd.run(seconds, start_at)
    feed.stop()
    await reader
    await client.aclose()
    return tally


def shared_process(args: tuple, results: multiprocessing.Queue) -> None:
    results.put(asyncio.run(shared(*args)))


def run_shared(url: str, processes: int, load: Load, seconds: float, cooldown: float) -> Tally:
    prefix = f"bench-{uuid.uuid4().hex[:8]}:"
    start_at = time.time() + 1.5 + 0.5 * processes  # everyone starts together, after imports
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    workers = []
    for w in range(processes):
        people = [f"w{w}-p{i}" for i in range(w, load.people, processes)]
        args = (url, prefix, w, people, load, seconds, cooldown, start_at)
        workers.append(context.Process(target=shared_process, args=(args, queue)))
    for worker in workers:
        worker.start()
    tallies = [queue.get(timeout=seconds + 120) for _ in workers]
    for worker in workers:
        worker.join()
    total = Tally(seconds=max(t.seconds for t in tallies))
    for t in tallies:
        total.ops += t.ops
        total.errors += t.errors
        total.cpu += t.cpu
        total.waits += t.waits
        total.pairs += t.pairs
        total.within += t.within
    return total


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_redis(directory: str) -> tuple[str, subprocess.Popen[bytes]]:
    binary = shutil.which("redis-server")
    if binary is None:
        sys.exit("redis-server is not installed (Debian: apt-get install redis-server), or pass --redis-url")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", directory],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    for _ in range(500):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2) as s:
                s.sendall(b"PING\r\n")
                if s.recv(16).startswith(b"+PONG"):
                    break
        except OSError:
            time.sleep(0.01)
    return f"redis://127.0.0.1:{port}/0", process


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=4.0, help="length of each run")
    parser.add_argument("--saturated-people", type=int, default=200)
    parser.add_argument("--light-people", type=int, default=40)
    parser.add_argument("--talk", type=float, default=0.2, help="mean conversation length under light load (s)")
    parser.add_argument("--cooldown", type=float, default=0.2, help="rematch cooldown (s)")
    parser.add_argument("--redis-url", help="use this Redis instead of starting one (its CPU is then not measured)")
    args = parser.parse_args()

    loads = [
        Load("saturated", args.saturated_people, (0.0, 0.0)),
        Load("light", args.light_people, (0.5 * args.talk, 1.5 * args.talk)),
    ]
    rows: list[tuple[str, int, Load, Tally, float | None]] = []
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as directory:
        url, redis = (args.redis_url, None) if args.redis_url else start_redis(directory)
        try:
            for load in loads:
                tally = asyncio.run(in_memory(load, args.seconds, args.cooldown))
                rows.append(("in-memory", 1, load, tally, None))
                for processes in (1, 2):
                    before = cpu_seconds(redis.pid) if redis else None
                    tally = run_shared(url, processes, load, args.seconds, args.cooldown)
                    redis_cpu = cpu_seconds(redis.pid) - before if redis and before is not None else None
                    rows.append(("redis", processes, load, tally, redis_cpu))
        finally:
            if redis is not None:
                redis.kill()
                redis.wait()

    print(f"{os.cpu_count()} cores, load average {load_before:.1f} → {os.getloadavg()[0]:.1f}; {args.seconds:.0f} s per run; "
          f"rematch cooldown {args.cooldown} s; "
          f"light load: {args.light_people} people talking ~{args.talk} s")
    print()
    print("| matchmaker | processes | load | people | operations/s | client CPU µs/op | Redis CPU µs/op "
          "| Start/Next → paired p50 / p95 / p99 (ms) | timed pairings | pairs within one process | errors |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for name, processes, load, tally, redis_cpu in rows:
        ops = tally.ops / tally.seconds
        client = 1e6 * tally.cpu / max(1, tally.ops)
        server = "-" if redis_cpu is None else f"{1e6 * redis_cpu / max(1, tally.ops):.0f}"
        waits = " / ".join(f"{1000 * percentile(tally.waits, q):.1f}" for q in (0.5, 0.95, 0.99))
        print(f"| {name} | {processes} | {load.name} | {load.people} | {ops:,.0f} | {client:.0f} | {server} "
              f"| {waits} | {len(tally.waits):,} | {100 * tally.within / max(1, tally.pairs):.0f}% | {tally.errors} |")


if __name__ == "__main__":
    main()
