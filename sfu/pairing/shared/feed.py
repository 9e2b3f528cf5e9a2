"""A process's inbox: the events of the participants it serves, read in order and acknowledged.

The inbox is a Redis stream (``inbox:<process>``) that the pairing scripts append to. One reader per
process: it reads with ``XREAD`` (blocking up to ``block`` seconds), hands each entry's events to the sink in
order, and trims what it has handled (``XTRIM MINID``, sent with the next read), so entries stay
until acknowledged. If
Redis goes away the reader logs once, waits and resumes after the last entry it handled.
"""

from __future__ import annotations

import asyncio
import logging
from typing import cast

from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from .codec import decode_deliveries, text
from .keys import Keys, ProcessId
from .protocol import EventSink

log = logging.getLogger(__name__)


def cancelling() -> bool:
    """The current task was asked to stop (a library may have turned that into another error)."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


def after(entry_id: str) -> str:
    """The smallest stream id after ``entry_id``."""
    ms, seq = entry_id.split("-")
    return f"{ms}-{int(seq) + 1}"


class EventFeed:
    def __init__(
        self,
        redis: Redis,
        process: ProcessId,
        sink: EventSink,
        *,
        keys: Keys | None = None,
        block: float = 1.0,
        batch: int = 500,
        retry_every: float = 0.5,
    ) -> None:
        self.redis = redis
        self.sink = sink
        self.stream = (keys or Keys()).inbox(process)
        self.block_ms = max(1, int(block * 1000))
        self.batch = batch
        self.retry_every = retry_every
        #: The id of the last entry handed to the sink ("0": none yet).
        self.last_id = "0"
        self._handled = "0"  # the last entry acknowledged (trimmed)
        self.delivered = 0
        self.connected = True
        self.stopping = False

    async def run(self) -> None:
        """Read until :meth:`stop` (or cancelled)."""
        self.stopping = False
        while not self.stopping:
            try:
                await self.poll(self.block_ms)
            except (RedisConnectionError, RedisTimeoutError, OSError) as error:
                if cancelling():
                    raise asyncio.CancelledError from error
                if self.connected:
                    log.warning("pairing inbox: Redis unreachable (%s); retrying", error,
                                extra={"event": "pairing_inbox_down"})
                    self.connected = False
                await asyncio.sleep(self.retry_every)

    def stop(self) -> None:
        """Make :meth:`run` return after the read under way (at most ``block`` seconds)."""
        self.stopping = True

    async def poll(self, block_ms: int | None = None) -> int:
        """One read: hand what arrived (waiting up to ``block_ms``, or not at all) to the sink,
        acknowledge it, and return how many entries there were."""
        if self._handled == self.last_id:
            reply = await self.redis.xread({self.stream: self.last_id}, count=self.batch, block=block_ms)
        else:  # acknowledge what was handled in the same round trip as the next read
            pipe = self.redis.pipeline(transaction=False)
            pipe.xtrim(self.stream, minid=after(self.last_id))
            pipe.xread({self.stream: self.last_id}, count=self.batch, block=block_ms)
            _trimmed, reply = await pipe.execute()
            self._handled = self.last_id
        if not self.connected:
            log.info("pairing inbox: Redis reachable again", extra={"event": "pairing_inbox_up"})
            self.connected = True
        count = 0
        for _stream, entries in cast(list, reply or []):
            for entry_id, fields in entries:
                self.last_id = text(entry_id)
                count += 1
                try:
                    deliveries = decode_deliveries(fields)
                except (KeyError, ValueError) as error:
                    log.error("pairing inbox: unreadable entry %s skipped: %s", self.last_id, error,
                              extra={"event": "pairing_inbox_bad_entry"})
                    continue
                self.delivered += len(deliveries)
                for delivery in deliveries:
                    self.sink(delivery)
        return count
