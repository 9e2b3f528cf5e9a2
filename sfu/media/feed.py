"""Feeds: one participant's inbound track, drained continuously and offered to one subscriber.

Draining never stops, even with nobody subscribed, so aiortc's unbounded receive queues never grow.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Optional

from aiortc import MediaStreamTrack
from aiortc.mediastreams import MediaStreamError

from .outbound import OutboundTrack

log = logging.getLogger(__name__)


class Feed:
    """Base feed: keeps the current subscriber (at most one in 1:1 chat)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.subscriber: Optional[OutboundTrack] = None
        self.items = 0

    def subscribe(self, sink: OutboundTrack) -> None:
        self.subscriber = sink
        self.on_subscribe()

    def unsubscribe(self, sink: OutboundTrack) -> None:
        if self.subscriber is sink:
            self.subscriber = None

    def on_subscribe(self) -> None:
        """Hook: a new receiver follows this feed (e.g. request a keyframe upstream)."""

    def publish(self, item: object) -> None:
        self.items += 1
        sink = self.subscriber
        if sink is not None:
            sink.push(self, item)

    async def close(self) -> None:
        self.subscriber = None


class DecodedFeed(Feed):
    """Pulls decoded frames from an aiortc remote track (aiortc decodes in its own thread)."""

    def __init__(self, track: MediaStreamTrack) -> None:
        super().__init__(track.kind)
        self._track = track
        self._task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        try:
            while True:
                self.publish(await self._track.recv())
        except MediaStreamError:
            pass

    async def close(self) -> None:
        await super().close()
        self._task.cancel()
        try:
            await self._task
        except asyncio.CancelledError:
            pass
