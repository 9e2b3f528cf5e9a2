"""Feeds: local sources, each one participant's inbound track offered to at most one sink.

:class:`Feed` is the bookkeeping every local :class:`~sfu.media.source.Source` shares; subclasses
decide what they hand over. Draining never stops, even with no sink attached, so aiortc's unbounded
receive queues never grow.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import av
from aiortc import MediaStreamError, MediaStreamTrack, RTCRtpCodecParameters

from .aiortc_hooks.server import negotiated_codecs
from .source import Sink, SourceId

if TYPE_CHECKING:
    from aiortc import RTCRtpTransceiver

log = logging.getLogger(__name__)


class Feed:
    """A local source with one sink at a time (1:1 chat): the base of every feed."""

    def __init__(self, source_id: SourceId) -> None:
        self.id = source_id
        self.sink: Sink | None = None
        self.items = 0
        #: ``time.monotonic()`` when the publisher's media last arrived (``None``: never).
        self.last_media_at: float | None = None
        self._waiters: list[asyncio.Future[av.VideoFrame | None]] = []
        self._media_listeners: list[Callable[[], None]] = []

    @property
    def kind(self) -> str:
        return self.id.kind

    @property
    def codec(self) -> RTCRtpCodecParameters | None:
        return None

    def attach(self, sink: Sink) -> None:
        self.sink = sink
        self.on_attach()

    def detach(self, sink: Sink) -> None:
        if self.sink is sink:
            self.sink = None
            self.on_detach()

    def on_attach(self) -> None:
        """Hook: a new sink follows this feed (e.g. request a keyframe upstream)."""

    def on_detach(self) -> None:
        """Hook: the sink stopped following this feed."""

    def request_keyframe(self) -> None:
        """Nothing to ask by default: the sink receives decoded pictures."""

    def set_bitrate_cap(self, bps: int | None) -> None:
        """Nothing to cap by default: aiortc's receiver estimates the publisher's rate itself."""

    def when_media(self, listener: Callable[[], None]) -> Callable[[], None]:
        """Call ``listener`` once, when the publisher's media next arrives; returns a function that
        cancels it."""
        self._media_listeners.append(listener)

        def cancel() -> None:
            if listener in self._media_listeners:
                self._media_listeners.remove(listener)

        return cancel

    def _media_arrived(self, now: float) -> None:
        self.last_media_at = now
        if self._media_listeners:
            listeners, self._media_listeners = self._media_listeners, []
            for listener in listeners:
                listener()

    def publish(self, item: object) -> None:
        self.items += 1
        sink = self.sink
        if sink is not None:
            sink.deliver(self.id, item)

    async def picture(self, timeout: float) -> av.VideoFrame | None:
        return None

    async def _next_picture(self, timeout: float) -> av.VideoFrame | None:
        """Wait up to ``timeout`` s for a picture passed to :meth:`_picture_ready`."""
        waiter: asyncio.Future[av.VideoFrame | None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            return await asyncio.wait_for(waiter, timeout)
        except asyncio.TimeoutError:
            return None
        finally:
            if waiter in self._waiters:
                self._waiters.remove(waiter)

    def _picture_ready(self, frame: av.VideoFrame) -> None:
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(frame)

    async def close(self) -> None:
        self.sink = None
        self._media_listeners.clear()
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:  # nobody waits for a picture that will never come
            if not waiter.done():
                waiter.set_result(None)


class DecodedFeed(Feed):
    """Pulls decoded frames from an aiortc remote track (aiortc decodes in its own thread)."""

    def __init__(
        self, source_id: SourceId, track: MediaStreamTrack, transceiver: RTCRtpTransceiver
    ) -> None:
        super().__init__(source_id)
        self._track = track
        self._transceiver = transceiver
        self._latest: av.VideoFrame | None = None
        self._task = asyncio.ensure_future(self._run())

    @property
    def codec(self) -> RTCRtpCodecParameters | None:
        codecs = negotiated_codecs(self._transceiver)
        return codecs[0] if codecs else None

    async def picture(self, timeout: float) -> av.VideoFrame | None:
        """The latest decoded picture (waiting up to ``timeout`` s for the first)."""
        if self.kind != "video":
            return None
        if self._latest is not None:
            return self._latest
        return await self._next_picture(timeout)

    async def _run(self) -> None:
        try:
            while True:
                frame = await self._track.recv()
                self._media_arrived(time.monotonic())
                if isinstance(frame, av.VideoFrame):
                    self._latest = frame
                    if self._waiters:
                        self._picture_ready(frame)
                self.publish(frame)
        except MediaStreamError:
            pass

    async def close(self) -> None:
        await super().close()
        self._task.cancel()
        try:
            await self._task
        except asyncio.CancelledError:
            pass
