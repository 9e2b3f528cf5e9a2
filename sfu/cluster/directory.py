"""Who is in the pool: every live process (what its heartbeat says of it) and who serves whom.

A process's heartbeat carries a :class:`ProcessInfo` (JSON): its people connected, waiting and
paired, and where other processes send media for its participants (pipe address and key). The
directory reads every live process's info once per heartbeat round (one round trip), and remembers
which process serves each partner of a local participant (asked once per pairing).
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from typing import Optional

from redis.asyncio import Redis

from ..pairing.shared import Keys, ProcessId, RedisMatchmaker
from ..pairing.shared.codec import text

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ProcessInfo:
    node: str
    worker: str
    connected: int = 0
    waiting: int = 0
    paired: int = 0
    #: Where this process receives piped media ("host:port"; empty: no pipe).
    pipe_address: str = ""
    #: The key other processes encrypt piped media with for it (hex; empty: no pipe).
    pipe_key: str = ""

    def encode(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def decode(cls, raw: str | bytes) -> Optional[ProcessInfo]:
        try:
            value = json.loads(raw)
            return cls(**{k: value[k] for k in cls.__dataclass_fields__ if k in value})
        except (ValueError, TypeError, KeyError):
            return None


@dataclass(frozen=True)
class PoolCounts:
    processes: int
    connected: int
    waiting: int
    paired: int


class Directory:
    def __init__(self, redis: Redis, keys: Keys, matchmaker: RedisMatchmaker, me: ProcessId) -> None:
        self.redis = redis
        self.keys = keys
        self.matchmaker = matchmaker
        self.me = str(me)
        #: Every live process's latest info, by process id (this one included).
        self.processes: dict[str, ProcessInfo] = {}
        #: Which process serves each remote partner of a local participant.
        self._serving: dict[str, str] = {}

    async def refresh(self) -> None:
        """Read every live process's info (processes whose heartbeat lapsed are left out)."""
        names = [text(n) for n in await self.redis.smembers(self.keys.processes)]
        values = await self.redis.mget([self.keys.process(n) for n in names]) if names else []
        found = {}
        for name, raw in zip(names, values):
            info = ProcessInfo.decode(raw) if raw is not None else None
            if info is not None:
                found[name] = info
        self.processes = found

    def live(self) -> list[str]:
        return list(self.processes)

    def counts(self, here: ProcessInfo) -> PoolCounts:
        """Sums over the live processes, with this process's own figures fresh."""
        infos = dict(self.processes)
        infos[self.me] = here
        values = list(infos.values())
        return PoolCounts(len(values), sum(i.connected for i in values), sum(i.waiting for i in values),
                          sum(i.paired for i in values))

    async def locate(self, participant: str) -> Optional[str]:
        """The process serving ``participant`` (asked once, then remembered until :meth:`forget`)."""
        process = self._serving.get(participant)
        if process is None:
            process = await self.matchmaker.owner_of(participant)
            if process is not None:
                self._serving[participant] = process
        return process

    def located(self, participant: str) -> Optional[str]:
        return self._serving.get(participant)

    def info(self, process: str) -> Optional[ProcessInfo]:
        return self.processes.get(process)

    async def fresh_info(self, process: str) -> Optional[ProcessInfo]:
        """``process``'s info with its pipe, read again from Redis if the last look predates it
        (a process that joined since)."""
        info = self.processes.get(process)
        if info is None or not info.pipe_address:
            await self.refresh()
            info = self.processes.get(process)
        return info

    def forget(self, participant: str) -> None:
        self._serving.pop(participant, None)
