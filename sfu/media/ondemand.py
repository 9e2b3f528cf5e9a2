"""Decoding on demand: for a watcher whose leg negotiated a different codec than its partner sends.

An encoded feed decodes nothing while its frames are forwarded as they are. Only when its watcher
needs pictures (codec mismatch) does it start an :class:`OnDemandDecoder`, which decodes in a worker
thread with a small bounded backlog: when the backlog is full, it drops everything and waits for the
next keyframe rather than decode a stream with a hole in it.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import av

from .aiortc_hooks.server import Decode, decoder_for
from .encoded import EncodedFrame, mime

log = logging.getLogger(__name__)

#: Encoded frames waiting to be decoded before the backlog is dropped.
BACKLOG = 4


class OnDemandDecoder:
    def __init__(self, on_frame: Callable[[av.frame.Frame], None], request_keyframe: Callable[[], None]) -> None:
        self._on_frame = on_frame
        self._request_keyframe = request_keyframe
        self._queue: deque[EncodedFrame] = deque()
        self._wake = asyncio.Event()
        self._need_keyframe = True
        self._decoder: Decode | None = None
        self._codec_name: str | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ondemand-decode")
        self._task = asyncio.ensure_future(self._run())
        self.decoded = 0
        self.dropped = 0

    def submit(self, frame: EncodedFrame) -> None:
        if self._need_keyframe and not frame.keyframe:
            self.dropped += 1
            self._request_keyframe()
            return
        self._need_keyframe = False
        if len(self._queue) >= BACKLOG:
            self.dropped += len(self._queue) + 1
            self._queue.clear()
            self._need_keyframe = True
            self._request_keyframe()
            return
        self._queue.append(frame)
        self._wake.set()

    def restart(self) -> None:
        """Forget the backlog; the next decoded frame must start at a keyframe."""
        self._queue.clear()
        self._need_keyframe = True

    def _decode(self, frame: EncodedFrame) -> list[av.frame.Frame]:
        if self._decoder is None or self._codec_name != mime(frame.codec):
            self._decoder = decoder_for(frame.codec)
            self._codec_name = mime(frame.codec)
        return self._decoder(frame.data, frame.timestamp)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            while not self._queue:
                self._wake.clear()
                await self._wake.wait()
            frame = self._queue.popleft()
            try:
                frames = await loop.run_in_executor(self._executor, self._decode, frame)
            except Exception as exc:  # a corrupt frame: start again at a keyframe
                log.debug("on-demand decode failed: %r", exc)
                self.restart()
                self._request_keyframe()
                continue
            for decoded in frames:
                self.decoded += 1
                self._on_frame(decoded)

    async def close(self) -> None:
        self._task.cancel()
        try:
            await self._task
        except asyncio.CancelledError:
            pass
        self._executor.shutdown(wait=False)
