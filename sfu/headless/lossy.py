"""A lossy, jittery link for a headless client: each RTP datagram it sends or receives is dropped
with probability ``loss`` and otherwise delayed by ``delay`` ± ``jitter`` seconds (so packets may
also be reordered). DTLS and RTCP are delayed but never dropped. The kernel here has no netem; this
emulates it in user space for aiortc clients."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from typing import Any

from aiortc import RTCPeerConnection

from ..media.aiortc_hooks import testing


def _is_rtp(data: bytes) -> bool:
    return len(data) > 1 and 127 < data[0] < 192 and not 192 <= data[1] <= 223


class LossyLink:
    def __init__(self, loss: float = 0.05, delay: float = 0.03, jitter: float = 0.01, seed: int = 1) -> None:
        self.loss = loss
        self.delay = delay
        self.jitter = jitter
        self._random = random.Random(seed)
        self.dropped = 0
        self.passed = 0
        self._pending: set[asyncio.Future] = set()

    def attach(self, pc: RTCPeerConnection, *, inbound: bool = True, outbound: bool = True) -> None:
        """Shape ``pc``'s traffic from now on (call after negotiation)."""
        if inbound:
            testing.wrap_inbound_datagrams(pc, self._wrap_recv)
        if outbound:
            testing.wrap_outbound_datagrams(pc, self._wrap_send)

    def _lag(self) -> float:
        return max(0.0, self.delay + self._random.uniform(-self.jitter, self.jitter))

    def _drop(self, data: bytes) -> bool:
        if _is_rtp(data) and self._random.random() < self.loss:
            self.dropped += 1
            return True
        self.passed += 1
        return False

    def _wrap_recv(self, recv: Callable[[], Awaitable[bytes]]) -> Callable[[], Awaitable[bytes]]:
        queue: asyncio.Queue[Any] = asyncio.Queue()
        loop = asyncio.get_event_loop()
        started: list[asyncio.Task] = []

        async def pump() -> None:
            try:
                while True:
                    data = await recv()
                    if not self._drop(data):
                        loop.call_later(self._lag(), queue.put_nowait, data)
            except ConnectionError:
                queue.put_nowait(None)

        async def lossy() -> bytes:
            if not started:
                started.append(asyncio.ensure_future(pump()))
                self._pending.add(started[0])
            data = await queue.get()
            if data is None:
                queue.put_nowait(None)
                raise ConnectionError
            return data

        return lossy

    def _wrap_send(self, send: Callable[[bytes], Awaitable[None]]) -> Callable[[bytes], Awaitable[None]]:
        loop = asyncio.get_event_loop()

        def later(data: bytes) -> None:
            task = asyncio.ensure_future(send(data))
            self._pending.add(task)
            task.add_done_callback(self._done)

        async def lossy(data: bytes) -> None:
            if not self._drop(data):
                loop.call_later(self._lag(), later, data)

        return lossy

    def _done(self, task: asyncio.Future) -> None:
        self._pending.discard(task)
        if not task.cancelled():
            task.exception()  # a send on a closed link: nothing to report

    async def close(self) -> None:
        for task in list(self._pending):
            task.cancel()
        await asyncio.gather(*self._pending, return_exceptions=True)
        self._pending.clear()
