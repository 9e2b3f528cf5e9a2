"""Outbound tracks: what the server sends to one participant (the "down track" or "consumer").

An :class:`OutboundTrack` is added once to a participant's peer connection and lives as long as it.
:meth:`OutboundTrack.connect` switches which partner's :class:`~sfu.media.source.Source` feeds it,
without renegotiation: items queued from the previous source are dropped at once, and items are
accepted only from the connected source (compared by :class:`~sfu.media.source.SourceId`), so after
a switch the participant never receives another frame from the old partner.

A video track can also be *hidden* (:meth:`OutboundVideoTrack.set_hidden`): it then sends the neutral
placeholder instead of its source's pictures, without disconnecting the source, and keeps what it
would need to resume at once when shown again (the latest picture, or the encoded frames since the
latest keyframe). Audio is never hidden.
"""

from __future__ import annotations

import asyncio
import fractions
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import av
import numpy
from aiortc import MediaStreamError, MediaStreamTrack, RTCRtpCodecParameters

from .source import Source, SourceId

VIDEO_CLOCK = 90000
VIDEO_TIME_BASE = fractions.Fraction(1, VIDEO_CLOCK)
#: How often the neutral placeholder picture is sent while the participant has no partner.
PLACEHOLDER_INTERVAL = 0.5
PLACEHOLDER_SIZE = (320, 240)
PLACEHOLDER_GREY = 48


class OutboundTrack(MediaStreamTrack):
    """A switchable track with a small drop-oldest queue; a :class:`~sfu.media.source.Sink`."""

    #: Largest backlog before the oldest item is dropped.
    capacity = 2
    #: Whether :meth:`connect`'s ``hidden`` applies (video) or is ignored (audio).
    hideable = False

    def __init__(self) -> None:
        super().__init__()
        self._source: Source | None = None
        self._switches = 0  #: counts connects, so a waiting recv() notices a switch
        self._items: deque[Any] = deque()
        self._wake = asyncio.Event()
        self._t0 = time.monotonic()
        #: Called after every switch (e.g. to force a keyframe on the encoder).
        self.on_switch: Callable[[], None] | None = None
        #: Called when the first item from a newly connected source is handed to the sender.
        self.on_first_item: Callable[[], None] | None = None
        self._first_pending = False
        self._hidden = False
        self.items_in = 0
        self.items_dropped = 0

    @property
    def source(self) -> Source | None:
        """The source connected to this track (``None``: nobody's media)."""
        return self._source

    @property
    def mode(self) -> str | None:
        """How this track forwards while connected (``None``: not known until the first item)."""
        return "transcode"

    @property
    def direction(self) -> str:
        """``idle`` (no source), ``starting`` (mode not known yet), ``passthrough`` or ``transcode``."""
        if self._source is None:
            return "idle"
        return self.mode or "starting"

    @property
    def hidden(self) -> bool:
        """True while the source's pictures are replaced by the placeholder (video only)."""
        return self._hidden

    def connect(self, source: Source | None, *, hidden: bool = False) -> None:
        """Send ``source``'s media from now on (``None``: nobody's), shown or ``hidden`` (video
        only: the placeholder is sent until :meth:`set_hidden` shows it). The same source (by id)
        only updates ``hidden``."""
        current = self._source
        if (source.id if source is not None else None) == (current.id if current is not None else None):
            self.set_hidden(hidden)
            return
        if current is not None:
            current.detach(self)
        self._source = source
        self._switches += 1
        self._items.clear()
        self._first_pending = source is not None
        self._hidden = hidden and self.hideable
        self._switched()
        if source is not None:
            source.attach(self)
        if self.on_switch is not None:
            self.on_switch()
        self._wake.set()

    def _switched(self) -> None:
        """Hook for subclasses: reset per-source state."""

    def set_hidden(self, hidden: bool) -> None:
        """Hide or show the connected source's media without disconnecting it (video only)."""

    def accepts(self, codec: RTCRtpCodecParameters) -> bool:
        """Whether encoded frames of ``codec`` go out as they are; this track encodes pictures."""
        return False

    def _connected_to(self, source: SourceId) -> bool:
        if self._source is None or self.readyState != "live":
            return False
        connected = self._source.id
        return connected is source or connected == source  # equal values; usually the same object

    def deliver(self, source: SourceId, item: Any) -> None:
        """An item from ``source``; dropped unless it is the connected source."""
        if not self._connected_to(source):
            return
        self.items_in += 1
        if len(self._items) >= self.capacity:
            self._items.popleft()
            self.items_dropped += 1
        self._items.append(item)
        self._wake.set()

    def stop(self) -> None:
        if self._source is not None:
            self._source.detach(self)
            self._source = None
            self._switches += 1
        super().stop()
        self._wake.set()

    async def _next_item(self, timeout: float | None) -> Any | None:
        """The next queued item; ``None`` after ``timeout`` seconds without one or on a switch."""
        switches = self._switches
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            if self.readyState != "live":
                raise MediaStreamError
            if self._items:
                if self._first_pending:
                    self._first_pending = False
                    if self.on_first_item is not None:
                        self.on_first_item()
                return self._items.popleft()
            if self._switches != switches:
                return None
            self._wake.clear()
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return None
            try:
                await asyncio.wait_for(self._wake.wait(), remaining)
            except asyncio.TimeoutError:
                return None

    def _elapsed(self) -> float:
        return time.monotonic() - self._t0


class OutboundVideoTrack(OutboundTrack):
    """Decoded video frames from the partner, re-stamped on this track's own clock.

    While there is no partner it sends a neutral grey picture twice a second, so the participant's
    screen never keeps showing a previous partner.
    """

    kind = "video"
    hideable = True
    #: Smallest pts step between two frames sent.
    min_pts_step = 1

    def __init__(self) -> None:
        super().__init__()
        #: While hidden: what resumes the picture at once when shown again.
        self._held: deque[Any] = deque()
        self._last_pts = -1
        width, height = PLACEHOLDER_SIZE
        self._placeholder = numpy.full((height * 3 // 2, width), PLACEHOLDER_GREY, numpy.uint8)
        self._placeholder[height:] = 128  # neutral chroma
        self._placeholder_now = False

    def placeholder_frame(self) -> av.VideoFrame:
        return av.VideoFrame.from_ndarray(self._placeholder, format="yuv420p")

    def _pts(self) -> int:
        pts = max(int(self._elapsed() * VIDEO_CLOCK), self._last_pts + self.min_pts_step)
        self._last_pts = pts
        return pts

    def _stamp(self, frame: av.VideoFrame) -> av.VideoFrame:
        """Put a picture on this track's clock."""
        frame.pts = self._pts()
        frame.time_base = VIDEO_TIME_BASE
        return frame

    def _switched(self) -> None:
        # Show the placeholder at once when the partner goes, not one interval later. A source
        # connected hidden gets it one interval later: it is usually shown before that.
        self._placeholder_now = self._source is None
        self._held.clear()

    def _showing(self) -> bool:
        return self._source is not None and not self._hidden

    def set_hidden(self, hidden: bool) -> None:
        """Send the placeholder instead of the source's pictures from now on (``True``; the picture
        on the participant's screen is replaced at once), or resume the source (``False``; with
        what was held back, so without waiting for a new keyframe when possible)."""
        if hidden == self._hidden:
            return
        self._hidden = hidden
        if hidden:
            for item in self._items:
                self._hold(item)
            self._items.clear()
            self._placeholder_now = self._source is not None
        else:
            self._items.extend(self._release())
        self._switches += 1  # a waiting recv() looks again
        if self.on_switch is not None:
            self.on_switch()
        self._wake.set()

    def deliver(self, source: SourceId, item: Any) -> None:
        if self._hidden:
            if self._connected_to(source):
                self.items_in += 1
                self._hold(item)
            return
        super().deliver(source, item)

    def _hold(self, item: Any) -> None:
        """Keep ``item`` while hidden: decoded pictures need only the latest."""
        self._held.clear()
        self._held.append(item)

    def _release(self) -> list[Any]:
        """What to send first when shown again (and forget the rest)."""
        held = list(self._held)[-1:]
        self._held.clear()
        return held

    def _placeholder_timeout(self) -> float:
        if self._placeholder_now:
            self._placeholder_now = False
            return 0.0
        return PLACEHOLDER_INTERVAL

    async def recv(self) -> av.VideoFrame:
        while True:
            timeout = None if self._showing() else self._placeholder_timeout()
            item = await self._next_item(timeout)
            if item is None:
                if self._showing():
                    continue  # a partner arrived (or was shown) while we waited
                return self._stamp(self.placeholder_frame())
            return self._stamp(item)


class OutboundAudioTrack(OutboundTrack):
    """Decoded audio frames from the partner, with continuous timestamps; silent while unpaired."""

    kind = "audio"
    capacity = 10  # 200 ms of 20 ms frames

    def __init__(self) -> None:
        super().__init__()
        self._next_pts: int | None = None  #: where the next frame continues the last one
        self._last_pts: int | None = None
        self._time_base = fractions.Fraction(1, 48000)

    def _time_base_for(self, rate: int) -> fractions.Fraction:
        if self._time_base.denominator != rate:
            self._time_base = fractions.Fraction(1, rate)
        return self._time_base

    def _stamp(self, frame: av.AudioFrame) -> av.AudioFrame:
        """Put decoded audio on this track's clock: continuous, and after a gap (no partner, lost
        packets) on the wall clock; never before what was sent last."""
        rate = frame.sample_rate
        wall = int(self._elapsed() * rate)
        floor = 0 if self._last_pts is None else self._last_pts + 1
        if self._next_pts is None or wall - self._next_pts > rate // 10 or self._next_pts < floor:
            pts = max(wall, floor)
        else:
            pts = self._next_pts
        self._next_pts = pts + frame.samples
        self._last_pts = pts
        frame.pts = pts
        frame.time_base = self._time_base_for(rate)
        return frame

    async def recv(self) -> av.AudioFrame:
        frame = None
        while frame is None:
            frame = await self._next_item(None)
        return self._stamp(frame)
