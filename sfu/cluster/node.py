"""This process as one member of the shared pool: its identity, its connection to Redis, the pool's
matchmaker for it, its inbox reader, and its heartbeat round.

Every ``interval`` seconds a round renews this process's entry with what others need to know of it
(:class:`~.directory.ProcessInfo`), sweeps processes whose heartbeat stopped (their people's partners
here and elsewhere are told and re-queued), and reads every live process's info. The round also says
whether Redis is reachable, when it came back, and when the pool lost this process's people (Redis
restarted empty: ``pool_reset``; or this process was presumed dead: ``swept``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from ..pairing.shared import (
    EventFeed,
    EventSink,
    Keys,
    PairingRules,
    PairingUnavailable,
    ProcessId,
    ProcessRegistry,
    RedisMatchmaker,
    connect,
)
from ..pairing.shared.feed import cancelling
from ..pairing.shared.registry import Lost
from .directory import Directory, ProcessInfo

log = logging.getLogger(__name__)

#: Seconds between two heartbeats, and how long a process counts as alive after its last one.
HEARTBEAT_INTERVAL = 1.0
HEARTBEAT_TTL = 3.0


@dataclass
class NodeHooks:
    #: What this process says of itself at each heartbeat.
    info: Callable[[], ProcessInfo]
    #: The pool lost this process's people (they must look again).
    lost: Callable[[Lost], Awaitable[None]]
    #: Redis is reachable again after being unreachable.
    back: Callable[[], Awaitable[None]]


class Node:
    def __init__(self, redis: Redis, process: ProcessId, rules: PairingRules, keys: Keys | None = None) -> None:
        self.redis = redis
        self.process = process
        self.keys = keys or Keys()
        self.matchmaker = RedisMatchmaker(redis, process, keys=self.keys, rules=rules)
        self.registry = ProcessRegistry(self.matchmaker, ttl=HEARTBEAT_TTL, interval=HEARTBEAT_INTERVAL)
        self.directory = Directory(redis, self.keys, self.matchmaker, process)
        self.reachable = True
        self.feed: EventFeed | None = None

    @classmethod
    async def open(cls, url: str, process: ProcessId, rules: PairingRules, keys: Keys | None = None) -> Node:
        """Connected to Redis, or :class:`PairingUnavailable` (one line saying why)."""
        redis = await connect(url, name=f"sfu:{process}")
        return cls(redis, process, rules, keys)

    def inbox(self, sink: EventSink) -> EventFeed:
        self.feed = EventFeed(self.redis, self.process, sink, keys=self.keys)
        return self.feed

    async def join(self, info: ProcessInfo) -> None:
        """The first heartbeat (the pool knows this process from now on) and a first look at the others."""
        self.registry.info = info.encode()
        await self.registry.beat()
        await self.directory.refresh()

    async def run(self, hooks: NodeHooks) -> None:
        while True:
            await asyncio.sleep(self.registry.interval)
            try:
                await self.round(hooks)
            except PairingUnavailable as error:
                if cancelling():
                    raise asyncio.CancelledError from error
                if self.reachable:
                    log.warning("pairing unavailable: %s", error, extra={"event": "pairing_pool_down"})
                    self.reachable = False
            except Exception:
                if cancelling():
                    raise
                log.exception("pool heartbeat round failed")

    async def round(self, hooks: NodeHooks) -> None:
        self.registry.info = hooks.info().encode()
        heartbeat = await self.registry.beat()
        if not self.reachable:
            log.info("pairing available again", extra={"event": "pairing_pool_up"})
            self.reachable = True
            if heartbeat.lost is None:
                await hooks.back()
        if heartbeat.lost is not None:
            log.warning("this process's participants were dropped from the pool (%s); they look again",
                        heartbeat.lost, extra={"event": "pairing_lost", "reason": heartbeat.lost})
            await hooks.lost(heartbeat.lost)
        await self.registry.sweep()
        try:
            await self.directory.refresh()
        except (RedisConnectionError, RedisTimeoutError, OSError) as error:
            raise PairingUnavailable(str(error)) from error

    async def close(self) -> None:
        try:
            await self.registry.retire()
        except PairingUnavailable:
            pass
        await self.redis.aclose()
