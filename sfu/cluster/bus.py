"""Messages between processes: one Redis stream per process (``bus:<process>``).

Why a stream and not pub/sub: a process whose connection to Redis is being re-established loses
whatever pub/sub published meanwhile, while a stream keeps it until read (a chat line, a ban to
carry out, a partner told their video is hidden). Each stream is short (``MAXLEN ~ 1000``) and expires a
minute after its last message, so a dead process's stream goes away by itself. Messages are small
JSON objects with a ``t`` (type); the reader hands each to a handler, in order.

While Redis is unreachable, messages to send wait in an outbox (in order, at most
:data:`OUTBOX_SECONDS` old and :data:`OUTBOX_BYTES` in all) and go as soon as it is back: a chat
line typed to a partner served elsewhere during an outage arrives late, not never.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any, cast

from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from ..pairing.shared.codec import text
from ..pairing.shared.feed import cancelling

log = logging.getLogger(__name__)

#: Seconds a process's stream lives after its last message.
STREAM_TTL = 60
#: Messages a stream holds at most (approximately).
STREAM_LENGTH = 1000
#: Messages kept to send while Redis is unreachable: how old, and how many bytes in all, at most.
OUTBOX_SECONDS = 30.0
OUTBOX_BYTES = 8_000_000

_UNREACHABLE = (RedisConnectionError, RedisTimeoutError, OSError)

Message = dict[str, Any]
Handler = Callable[[Message], None]


class Bus:
    def __init__(self, redis: Redis, prefix: str, me: str, handler: Handler, *, block: float = 1.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.redis = redis
        self.prefix = prefix
        self.me = me
        self.handler = handler
        self.block_ms = max(1, int(block * 1000))
        self.last_id = "$"
        self.connected = True
        self.received = 0
        self._clock = clock
        #: (when, process, encoded message) waiting for Redis, oldest first; and their bytes.
        self._outbox: deque[tuple[float, str, str]] = deque()
        self._outbox_bytes = 0
        self.expired = 0  #: messages dropped from the outbox: too old, or no room
        self._flushing: asyncio.Lock = asyncio.Lock()

    def stream(self, process: str) -> str:
        return f"{self.prefix}bus:{process}"

    async def send(self, process: str, message: Message) -> None:
        """Append ``message`` to ``process``'s stream; while Redis is unreachable it waits in the
        outbox (after anything already waiting there: order is kept)."""
        encoded = json.dumps(message, separators=(",", ":"))
        if self._outbox:
            self._hold(process, encoded)
            await self.flush()
            return
        try:
            await self._append(process, encoded)
        except _UNREACHABLE:
            self._hold(process, encoded)

    @property
    def waiting(self) -> int:
        """Messages in the outbox."""
        return len(self._outbox)

    async def flush(self) -> bool:
        """Send what waits in the outbox, in order; False if Redis is still unreachable."""
        async with self._flushing:
            outbox = self._outbox
            while outbox:
                at, process, encoded = outbox[0]
                if self._clock() - at > OUTBOX_SECONDS:
                    self._drop_oldest()
                    continue
                try:
                    await self._append(process, encoded)
                except _UNREACHABLE:
                    return False
                if outbox and outbox[0][2] is encoded:
                    outbox.popleft()
                    self._outbox_bytes -= len(encoded)
            return True

    async def _append(self, process: str, encoded: str) -> None:
        pipe = self.redis.pipeline(transaction=False)
        key = self.stream(process)
        pipe.xadd(key, {"m": encoded}, maxlen=STREAM_LENGTH, approximate=True)
        pipe.expire(key, STREAM_TTL)
        await pipe.execute()

    def _hold(self, process: str, encoded: str) -> None:
        if not self._outbox:
            log.info("message bus: Redis unreachable, holding messages to send", extra={"event": "bus_holding"})
        self._outbox.append((self._clock(), process, encoded))
        self._outbox_bytes += len(encoded)
        while self._outbox_bytes > OUTBOX_BYTES and self._outbox:
            self._drop_oldest()

    def _drop_oldest(self) -> None:
        _, _, encoded = self._outbox.popleft()
        self._outbox_bytes -= len(encoded)
        self.expired += 1

    async def send_all(self, processes: Iterable[str], message: Message) -> None:
        for process in processes:
            if process != self.me:
                await self.send(process, message)

    async def start(self) -> None:
        """Begin after the messages already there (none are meant for this run of the process)."""
        info = await self.redis.xinfo_stream(self.stream(self.me)) if await self.redis.exists(
            self.stream(self.me)) else None
        self.last_id = text(info["last-generated-id"]) if info else "0"

    async def run(self) -> None:
        while True:
            try:
                if self._outbox:
                    await self.flush()
                reply = await self.redis.xread({self.stream(self.me): self.last_id}, count=200, block=self.block_ms)
                if not self.connected:
                    log.info("message bus: Redis reachable again", extra={"event": "bus_up"})
                    self.connected = True
                if self._outbox:
                    await self.flush()
            except _UNREACHABLE as error:
                if cancelling():
                    raise asyncio.CancelledError from error
                if self.connected:
                    log.warning("message bus: Redis unreachable (%s); retrying", error, extra={"event": "bus_down"})
                    self.connected = False
                await asyncio.sleep(0.5)
                continue
            for _stream, entries in cast(list, reply or []):
                for entry_id, fields in entries:
                    self.last_id = text(entry_id)
                    self.received += 1
                    try:
                        message = json.loads(text(fields.get(b"m", fields.get("m", b"{}"))))
                        if not isinstance(message, dict):
                            raise ValueError("not an object")
                        self.handler(message)
                    except Exception:
                        log.exception("message bus: message %s not handled", self.last_id)
