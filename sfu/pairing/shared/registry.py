"""Processes sharing the pool: each renews its entry every ``interval`` seconds (it lives ``ttl``
seconds); any live process sweeps the dead, so that within about ``ttl + interval`` seconds of a
process dying its people leave the pool and their partners elsewhere are told and re-queued.

A heartbeat also notices when the pool lost this process's people, and says why (:attr:`Heartbeat.lost`):

- ``"pool_reset"``: Redis lost its data (restarted without persistence; a generation token under
  ``gen`` changed);
- ``"swept"``: this process was presumed dead (no heartbeat for ``ttl`` seconds) and swept.

Either way the caller must start again whoever it serves that should be looking for a partner.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, cast

from redis.asyncio import Redis
from redis.commands.core import AsyncScript
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from . import lua_ops
from .codec import text
from .feed import cancelling
from .keys import Keys, ProcessId
from .protocol import PairingUnavailable
from .redis_matchmaker import RedisMatchmaker, unavailable

log = logging.getLogger(__name__)

Lost = Literal["pool_reset", "swept"]


@dataclass(frozen=True)
class Heartbeat:
    generation: str
    #: Why this process's people are no longer in the pool, if they are not.
    lost: Lost | None = None


class ProcessRegistry:
    def __init__(
        self,
        matchmaker: RedisMatchmaker,
        *,
        ttl: float = 3.0,
        interval: float = 1.0,
        clock: Callable[[], float] = time.time,
        on_lost: Callable[[Lost], None] | None = None,
        info: str = "",
    ) -> None:
        if not 0 < interval < ttl:
            raise ValueError("the heartbeat interval must be shorter than its time to live")
        self.matchmaker = matchmaker
        self.redis: Redis = matchmaker.redis
        self.keys: Keys = matchmaker.keys
        self.process: ProcessId = matchmaker.process
        self.ttl = ttl
        self.interval = interval
        self.clock = clock
        self.on_lost = on_lost
        self.info = info
        self.generation: str | None = None
        self.reachable = True
        self.stopping = False
        self._heartbeat: AsyncScript = self.redis.register_script(lua_ops.HEARTBEAT)
        self._retire: AsyncScript = self.redis.register_script(lua_ops.RETIRE)

    async def beat(self) -> Heartbeat:
        """Register or renew this process."""
        try:
            reply = await self._heartbeat(args=[
                self.keys.prefix, str(self.process), str(int(self.ttl * 1000)), secrets.token_hex(8), self.info,
            ])
        except (RedisConnectionError, RedisTimeoutError, OSError) as error:
            raise unavailable(error) from error
        generation, known = cast(Sequence[object], reply)
        lost: Lost | None = None
        if self.generation is not None:
            if text(generation) != self.generation:
                lost = "pool_reset"
            elif not int(cast(int, known)):
                lost = "swept"
        self.generation = text(generation)
        return Heartbeat(self.generation, lost)

    async def sweep(self) -> dict[str, int]:
        """Sweep the processes that stopped beating; per process swept, how many people it had."""
        _outcome, swept = await self.matchmaker.sweep(self.clock())
        for process, people in swept.items():
            log.warning("process %s stopped: %d participant(s) removed from the pool", process, people,
                        extra={"event": "process_swept", "node_process": process, "participants": people})
        return swept

    async def retire(self) -> None:
        """Leave the pool for good (shutting down): this process's people go, partners elsewhere are told."""
        try:
            await self._retire(args=[self.keys.prefix, str(self.process)])
        except (RedisConnectionError, RedisTimeoutError, OSError) as error:
            raise unavailable(error) from error
        await self.sweep()

    def stop(self) -> None:
        """Make :meth:`run` return after the round under way."""
        self.stopping = True

    async def run(self) -> None:
        """Beat and sweep every ``interval`` seconds until :meth:`stop` (or cancelled)."""
        self.stopping = False
        while not self.stopping:
            try:
                heartbeat = await self.beat()
                if heartbeat.lost is not None:
                    log.warning("this process's participants were dropped from the pool (%s)", heartbeat.lost,
                                extra={"event": "pairing_lost", "reason": heartbeat.lost})
                    if self.on_lost is not None:
                        self.on_lost(heartbeat.lost)
                await self.sweep()
                if not self.reachable:
                    log.info("pairing pool: Redis reachable again", extra={"event": "pairing_pool_up"})
                    self.reachable = True
            except PairingUnavailable as error:
                if cancelling():
                    raise asyncio.CancelledError from error
                if self.reachable:
                    log.warning("pairing pool: %s", error, extra={"event": "pairing_pool_down"})
                    self.reachable = False
            await asyncio.sleep(self.interval)
