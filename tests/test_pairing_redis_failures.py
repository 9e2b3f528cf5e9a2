"""The shared pool when things go wrong: a process killed with SIGKILL, Redis restarted (its data lost),
Redis unreachable, a process acting for someone it does not serve, a reply lost and the call retried."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import multiprocessing
import os
import signal
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from multiprocessing.synchronize import Event as ProcessEvent

import pytest
from redis.asyncio import Redis

from sfu.pairing import Paired, PairingState, PartnerLeft, Preferences, Waiting
from sfu.pairing.shared import (
    Delivery,
    EventFeed,
    Keys,
    NotOwner,
    PairingRules,
    PairingUnavailable,
    ProcessId,
    ProcessRegistry,
    RedisMatchmaker,
    connect,
)
from sfu.pairing.shared.registry import Lost

from .redis_server import RedisServer, own_redis_server, redis_server, unique_prefix  # noqa: F401  (fixtures)

TTL, INTERVAL = 2.0, 0.5


def strict(*interests: str) -> Preferences:
    return Preferences(interests, (), True)


@dataclass
class Live:
    """One process on the pool: matchmaker, inbox reader, heartbeat and sweeper running."""

    mm: RedisMatchmaker
    registry: ProcessRegistry
    inbox: list[Delivery] = field(default_factory=list)
    lost: list[Lost] = field(default_factory=list)

    async def wait_for(self, count: int, timeout: float = 30.0) -> list[Delivery]:
        deadline = time.monotonic() + timeout
        while len(self.inbox) < count and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        return self.inbox


@contextlib.asynccontextmanager
async def live(client: Redis, keys: Keys, worker: str) -> AsyncIterator[Live]:
    process = ProcessId("node", worker)
    mm = RedisMatchmaker(client, process, keys=keys, rules=PairingRules())
    proc = Live(mm, ProcessRegistry(mm, ttl=TTL, interval=INTERVAL))
    proc.registry.on_lost = proc.lost.append
    await proc.registry.beat()
    feed = EventFeed(client, process, proc.inbox.append, keys=keys, block=0.2, retry_every=0.1)
    tasks = [asyncio.create_task(feed.run()), asyncio.create_task(proc.registry.run())]
    try:
        yield proc
    finally:
        feed.stop()
        proc.registry.stop()
        await asyncio.wait_for(asyncio.gather(*tasks), 30.0)


def doomed(url: str, prefix: str, ready: ProcessEvent) -> None:
    """A process that registers, takes people into the pool, says so, and runs until killed."""
    asyncio.run(_doomed(url, prefix, ready))


async def _doomed(url: str, prefix: str, ready: ProcessEvent) -> None:
    client = await connect(url)
    keys = Keys(prefix)
    async with live(client, keys, "doomed") as proc:
        for i in range(3):  # each meets the live process's person with the same interest
            await proc.mm.start(f"d{i}", time.time(), preferences=strict(f"t{i}"))
        await proc.mm.start("d3", time.time(), preferences=strict("ours"))
        await proc.mm.start("d4", time.time(), preferences=strict("ours"))  # a pair inside this process
        await proc.mm.start("d5", time.time(), preferences=strict("alone"))  # waits
        ready.set()
        await asyncio.sleep(3600)


async def test_a_killed_process_is_swept_and_partners_elsewhere_requeued(redis_server: RedisServer) -> None:  # noqa: F811
    keys = Keys(unique_prefix())
    client = await connect(redis_server.url)
    async with live(client, keys, "alive") as proc:
        for i in range(3):
            await proc.mm.start(f"l{i}", time.time(), preferences=strict(f"t{i}"))
        context = multiprocessing.get_context("spawn")
        ready = context.Event()
        other = context.Process(target=doomed, args=(redis_server.url, keys.prefix, ready))
        other.start()
        try:
            assert await asyncio.to_thread(ready.wait, 60.0), "the other process did not start"
            paired = [d.event for d in await proc.wait_for(6)]
            assert {e.b for e in paired if isinstance(e, Paired)} == {"l0", "l1", "l2"}
            counts = await proc.mm.counts()
            assert (counts.waiting, counts.paired) == (1, 8)
            await asyncio.sleep(TTL + INTERVAL)  # beating: nobody is swept while it lives
            assert len(proc.inbox) == 6 and (await proc.mm.counts()).paired == 8
            os.kill(other.pid, signal.SIGKILL)  # type: ignore[arg-type]
            killed = time.monotonic()
            other.join(10)
        finally:
            other.kill()
        events = [d.event for d in await proc.wait_for(12)][6:]
        print(f"partners told {time.monotonic() - killed:.2f} s after the kill (ttl {TTL} s, sweep every {INTERVAL} s)")
        told = events[0::2]  # in the order the sweep met their partners: each told, then re-queued
        assert sorted(str(e.who) for e in told if isinstance(e, PartnerLeft)) == ["l0", "l1", "l2"]
        assert events[1::2] == [Waiting(e.who) for e in told if isinstance(e, PartnerLeft)]
        assert all(d.cause == "sweep" for d in proc.inbox[6:])
        for i in range(3):
            assert await proc.mm.state(f"l{i}") is PairingState.WAITING
        for who in ("d0", "d3", "d5"):
            assert await proc.mm.state(who) is PairingState.IDLE and await proc.mm.owner_of(who) is None
        counts = await proc.mm.counts()
        assert (counts.waiting, counts.paired) == (3, 0)
        left = [k async for k in client.scan_iter(f"{keys.prefix}*doomed*")]
        assert [k for k in left if not k.startswith(f"{keys.prefix}req:".encode())] == []  # replies expire alone
        assert proc.lost == []
    await client.aclose()


async def test_redis_restarted_clear_errors_then_pairing_resumes(own_redis_server: RedisServer, caplog) -> None:  # noqa: F811
    keys = Keys(unique_prefix())
    client = await connect(own_redis_server.url)
    caplog.set_level(logging.INFO, logger="sfu.pairing.shared")
    async with live(client, keys, "0") as proc:
        await proc.mm.start("a", time.time())
        await proc.mm.start("b", time.time())
        assert [d.event for d in await proc.wait_for(2)] == [Waiting("a"), Paired("b", "a")]

        own_redis_server.stop()
        with pytest.raises(PairingUnavailable, match="unreachable"):
            await proc.mm.next("a", time.time())
        with pytest.raises(PairingUnavailable):
            await proc.mm.state("a")
        await asyncio.sleep(3 * INTERVAL)  # the inbox reader and the heartbeat notice, and carry on

        own_redis_server.start()  # empty: nothing was saved
        assert await proc.mm.start("c", time.time()) == [Waiting("c")]
        assert await proc.mm.state("a") is PairingState.IDLE
        assert [d.event for d in await proc.wait_for(3)][2:] == [Waiting("c")]
        deadline = time.monotonic() + 30
        while not proc.lost and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert proc.lost == ["pool_reset"]
        assert await proc.mm.start("a", time.time()) == [Paired("a", "c")]
        assert [d.event for d in await proc.wait_for(4)][3:] == [Paired("a", "c")]
    messages = [r.getMessage() for r in caplog.records]
    assert any("Redis unreachable" in m for m in messages) and any("reachable again" in m for m in messages)
    await client.aclose()


async def test_unreachable_redis_is_one_clear_line() -> None:
    with pytest.raises(PairingUnavailable) as caught:
        await connect("redis://user:secret@127.0.0.1:1/0")
    message = str(caught.value)
    assert "cannot reach Redis at redis://user:***@127.0.0.1:1/0" in message
    assert "secret" not in message and "\n" not in message


async def test_only_the_serving_process_acts_for_someone(redis_server: RedisServer) -> None:  # noqa: F811
    keys = Keys(unique_prefix())
    client = await connect(redis_server.url)
    mine = RedisMatchmaker(client, ProcessId("node", "1"), keys=keys)
    theirs = RedisMatchmaker(client, ProcessId("node", "2"), keys=keys)
    await mine.start("a", 0.0, preferences=strict("chess"))
    for call in (theirs.start("a", 1.0), theirs.next("a", 1.0), theirs.stop("a", 1.0), theirs.leave("a", 1.0)):
        with pytest.raises(NotOwner, match="a is served by another process"):
            await call
    assert await mine.state("a") is PairingState.WAITING
    assert await mine.preferences_of("a") == strict("chess")
    assert await theirs.start("b", 1.0, preferences=strict("chess")) == [Paired("b", "a", ("chess",), "interest")]
    assert await mine.owner_of("b") == str(theirs.process)
    await client.aclose()


async def test_bad_input_is_refused_before_reaching_the_pool(redis_server: RedisServer) -> None:  # noqa: F811
    keys = Keys(unique_prefix())
    client = await connect(redis_server.url)
    mm = RedisMatchmaker(client, ProcessId("node", "1"), keys=keys)
    for who in ("", "a\x1fb", "x" * 201, 7):
        with pytest.raises(ValueError, match="participant id"):
            await mm.start(who, 0.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="normalised interest"):
        await mm.start("a", 0.0, preferences=Preferences(("chess\x1fgo",)))
    with pytest.raises(ValueError, match="finite"):
        await mm.expire(float("nan"))
    with pytest.raises(ValueError, match="node id"):
        ProcessId("no/de", "1")
    assert (await mm.counts()).waiting == 0 and await mm.state("a") is PairingState.IDLE
    await client.aclose()


async def test_a_retried_call_is_done_once(redis_server: RedisServer) -> None:  # noqa: F811
    """A call whose reply was lost is sent again with the same request id: the pool answers what it
    answered the first time and does nothing more (here: Next is not pressed twice)."""
    keys = Keys(unique_prefix())
    client = await connect(redis_server.url)
    mm = RedisMatchmaker(client, ProcessId("node", "1"), keys=keys)
    await mm.start("a", 0.0)
    await mm.start("b", 0.0)
    await mm.start("c", 0.0)
    await mm.start("d", 0.0)  # a-b and c-d
    mm._requests = itertools.count(100)
    first = await mm.operate("next", 1.0, "a")
    assert first.events == [PartnerLeft("b"), Waiting("b"), Waiting("a")]
    mm._requests = itertools.count(100)  # the same request again
    assert await mm.operate("next", 1.0, "a") == first
    following = await mm.operate("expire", 2.0)
    assert following.op == first.op + 1  # nothing was done in between
    assert await mm.state("a") is PairingState.WAITING and (await mm.counts()).waiting == 2
    await client.aclose()


async def test_a_process_shutting_down_retires_its_people(redis_server: RedisServer) -> None:  # noqa: F811
    keys = Keys(unique_prefix())
    client = await connect(redis_server.url)
    async with live(client, keys, "staying") as staying:
        leaving = RedisMatchmaker(client, ProcessId("node", "leaving"), keys=keys)
        registry = ProcessRegistry(leaving, ttl=TTL, interval=INTERVAL)
        await registry.beat()
        await staying.mm.start("s", time.time())
        await leaving.start("l1", time.time())
        await leaving.start("l2", time.time(), preferences=strict("alone"))
        assert [d.event for d in await staying.wait_for(2)] == [Waiting("s"), Paired("l1", "s")]
        await registry.retire()
        assert [d.event for d in await staying.wait_for(4)][2:] == [PartnerLeft("s"), Waiting("s")]
        assert staying.inbox[2].cause == "sweep"
        counts = await staying.mm.counts()
        assert (counts.waiting, counts.paired) == (1, 0)
        assert await client.sismember(keys.processes, str(leaving.process)) == 0
        assert await client.exists(keys.inbox(leaving.process), keys.owned(leaving.process)) == 0
    await client.aclose()
