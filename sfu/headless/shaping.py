"""A capped, lossy inbound link for a headless client: its media arrives through a bottleneck.

:class:`LinkShaper` emulates a FIFO bottleneck of ``rate_bps`` in front of a client's peer
connection: RTP packets leave the queue at that rate and are dropped when the queue already holds
more than ``max_delay`` seconds (tail drop), like a slow home link. Control traffic (DTLS, RTCP)
queues behind media but is never dropped.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiortc import RTCPeerConnection

from ..media.aiortc_hooks.testing import wrap_inbound_datagrams


def _is_rtp(data: bytes) -> bool:
    return len(data) > 1 and 127 < data[0] < 192 and not 192 <= data[1] <= 223


class LinkShaper:
    def __init__(self, rate_bps: int, max_delay: float = 0.25) -> None:
        self.rate_bps = rate_bps
        self.max_delay = max_delay
        self.passed_bytes = 0
        self.passed = 0
        self.dropped = 0
        self._free_at = 0.0
        self._tasks: list[asyncio.Task] = []

    def attach(self, pc: RTCPeerConnection) -> None:
        """Shape everything ``pc`` receives from now on (call after negotiation)."""
        wrap_inbound_datagrams(pc, self._wrap)

    def _wrap(self, recv: Callable[[], Awaitable[bytes]]) -> Callable[[], Awaitable[bytes]]:
        queue: asyncio.Queue[tuple[float, Any]] = asyncio.Queue()
        started: list[bool] = []

        async def pump() -> None:
            try:
                while True:
                    data = await recv()
                    now = time.monotonic()
                    deliver = now
                    if _is_rtp(data):
                        start = max(now, self._free_at)
                        if start - now > self.max_delay:
                            self.dropped += 1
                            continue
                        self._free_at = deliver = start + len(data) * 8 / self.rate_bps
                        self.passed += 1
                        self.passed_bytes += len(data)
                    queue.put_nowait((deliver, data))
            except ConnectionError:
                queue.put_nowait((0.0, None))

        async def shaped() -> bytes:
            if not started:  # first read: the link is up (reading earlier raises ConnectionError)
                started.append(True)
                self._tasks.append(asyncio.ensure_future(pump()))
            deliver, data = await queue.get()
            if data is None:
                queue.put_nowait((0.0, None))
                raise ConnectionError
            wait = deliver - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            return data

        return shaped

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
