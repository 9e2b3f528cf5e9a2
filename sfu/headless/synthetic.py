"""Synthetic media tracks for headless test clients.

``StampedVideoTrack`` sends frames carrying a :class:`~sfu.headless.stamp.Stamp` (sender id, frame
counter, wall clock) so the receiving client can tell whose video it gets, count lost frames and
measure latency. ``ToneAudioTrack`` sends a continuous sine tone.

Both tracks pace themselves in real time from a monotonic clock, like aiortc's own
``VideoStreamTrack``/``AudioStreamTrack``, and raise ``MediaStreamError`` from ``recv()`` once
``stop()`` has been called. If the event loop falls behind by more than a few frames (an overloaded
load-test host) they skip the missed slots instead of bursting to catch up, as a real camera or
microphone would; pts keep following real time, and the stamp's frame counter counts the frames
actually produced, so gaps seen by a receiver mean frames lost after the sender.
"""

from __future__ import annotations

import asyncio
import fractions
import math
import time

import av
import numpy as np
from aiortc import MediaStreamError, MediaStreamTrack

from .stamp import Stamp, make_background, make_frame

__all__ = ["FACE_BOX", "StampedVideoTrack", "ToneAudioTrack"]

VIDEO_CLOCK_RATE = 90000
VIDEO_TIME_BASE = fractions.Fraction(1, VIDEO_CLOCK_RATE)

#: Where :meth:`StampedVideoTrack.show` draws the stand-in for a face (fractions: left, top, right,
#: bottom), inside the marker's area (the marker still covers enough of the picture around it).
FACE_BOX = (0.3, 0.35, 0.7, 0.7)

_MAX_LAG_SLOTS = 3
"""Slots a track may fall behind real time before it skips ahead rather than bursting."""


class _Pacer:
    """Real-time slot scheduler shared by the tracks: slot k is due at ``start + k * period``."""

    def __init__(self, period: float) -> None:
        self.period = period
        self.start: float | None = None
        self.slot = -1

    async def next_slot(self) -> int:
        """Wait for the next slot and return its index (0 for the first call, immediately)."""
        now = time.monotonic()
        if self.start is None:
            self.start = now
            self.slot = 0
            return 0
        self.slot += 1
        due = self.start + self.slot * self.period
        if now - due > _MAX_LAG_SLOTS * self.period:
            # Far behind: drop the missed slots, keep the schedule aligned to real time.
            self.slot = int((now - self.start) / self.period)
            return self.slot
        if due > now:
            await asyncio.sleep(due - now)
        return self.slot


class StampedVideoTrack(MediaStreamTrack):
    """Video track of yuv420p frames carrying a stamp with ``sender_id``."""

    kind = "video"

    def __init__(self, sender_id: int, width: int = 640, height: int = 480, fps: float = 30) -> None:
        super().__init__()
        if not 0 <= sender_id <= 0xFFFF:
            raise ValueError(f"sender_id out of range: {sender_id}")
        if fps <= 0:
            raise ValueError(f"fps must be positive: {fps}")
        self.sender_id = sender_id
        self.width = width
        self.height = height
        self.fps = fps
        self.frames_sent = 0
        """Frames returned by ``recv()`` so far (the next stamp's frame counter, before wrap)."""
        self._plain = make_background(width, height)
        self._background = self._plain
        self.marker = False
        self.face = False
        self._pacer = _Pacer(1.0 / fps)

    def show(self, *, marker: bool | None = None, face: bool | None = None) -> None:
        """Draw (or stop drawing) the test classifier's marker (a large magenta area, "flag this")
        and its stand-in for a face (a cyan area) under the stamp, from the next frame on."""
        from ..moderation.classifiers.marker import FACE_COLOUR, MARKER_COLOUR, paint_yuv420p  # tests only

        if marker is not None:
            self.marker = marker
        if face is not None:
            self.face = face
        background = self._plain.copy()
        if self.marker:
            paint_yuv420p(background, self.width, self.height, MARKER_COLOUR)
        if self.face:
            paint_yuv420p(background, self.width, self.height, FACE_COLOUR, FACE_BOX)
        self._background = background

    async def recv(self) -> av.VideoFrame:
        if self.readyState != "live":
            raise MediaStreamError
        slot = await self._pacer.next_slot()
        if self.readyState != "live":  # stopped while waiting
            raise MediaStreamError
        stamp = Stamp(
            self.sender_id,
            self.frames_sent % 65536,
            int(time.time() * 1000) % 2**32,
        )
        frame = make_frame(stamp, self.width, self.height, self._background)
        frame.pts = round(slot * VIDEO_CLOCK_RATE / self.fps)
        frame.time_base = VIDEO_TIME_BASE
        self.frames_sent += 1
        return frame


class ToneAudioTrack(MediaStreamTrack):
    """Audio track of s16 mono frames of a sine tone.

    The tone is precomputed as a buffer holding a whole number of periods, so the frequency is
    rounded to the nearest 1 Hz (the buffer is at most one second long).
    """

    kind = "audio"

    def __init__(
        self,
        frequency_hz: float = 440.0,
        sample_rate: int = 48000,
        ptime: float = 0.02,
        amplitude: float = 0.25,
    ) -> None:
        super().__init__()
        samples = round(ptime * sample_rate)
        if sample_rate <= 0 or samples <= 0:
            raise ValueError(f"bad sample_rate/ptime: {sample_rate}/{ptime}")
        cycles_per_second = max(1, round(frequency_hz))
        if cycles_per_second * 2 > sample_rate:
            raise ValueError(f"frequency {frequency_hz} Hz is above Nyquist for {sample_rate} Hz")
        self.frequency_hz = float(cycles_per_second)
        self.sample_rate = sample_rate
        self.samples = samples
        self.frames_sent = 0
        # Shortest buffer holding a whole number of periods, extended by one frame so that every
        # frame is a plain slice (no wrap-around at read time).
        self._loop_len = sample_rate // math.gcd(sample_rate, cycles_per_second)
        n = np.arange(self._loop_len + samples)
        tone = amplitude * 32767 * np.sin(2 * np.pi * cycles_per_second * n / sample_rate)
        self._tone = np.round(tone).astype(np.int16)
        self._time_base = fractions.Fraction(1, sample_rate)
        self._pacer = _Pacer(samples / sample_rate)

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        slot = await self._pacer.next_slot()
        if self.readyState != "live":  # stopped while waiting
            raise MediaStreamError
        pts = slot * self.samples
        offset = pts % self._loop_len
        chunk = self._tone[offset : offset + self.samples]
        frame = av.AudioFrame.from_ndarray(chunk.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = self.sample_rate
        frame.pts = pts
        frame.time_base = self._time_base
        self.frames_sent += 1
        return frame
